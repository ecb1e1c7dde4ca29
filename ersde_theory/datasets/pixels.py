"""The pixel convention of every image of the project: model space [−1, 1] ↔ uint8 0…255 (what a PNG holds),
x ↦ round(127.5 (x + 1)), clamped."""

from __future__ import annotations

import torch


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[−1, 1] images → uint8 0…255 (clamped), the values written to PNG."""
    return ((x.detach().to(torch.float64) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def from_uint8(u: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """uint8 0…255 → [−1, 1]."""
    return u.to(dtype) / 127.5 - 1.0
