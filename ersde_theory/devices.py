"""The one device resolver (CLI and library) and the one thread setting. Depends on torch only."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto", local_rank: int | None = None) -> torch.device:
    """Device name -> torch.device.

    "auto" is cuda when torch.cuda.is_available(), else cpu; "cpu", "cuda", "cuda:N" and torch.device pass
    through. With ``local_rank`` (one GPU per process under torchrun), a cuda device without an index becomes
    cuda:local_rank. Raises ValueError for an unknown name or for cuda when no GPU is available.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} requested but torch.cuda.is_available() is False")
        if dev.index is None and local_rank is not None:
            dev = torch.device("cuda", local_rank)
    return dev


def set_threads(threads: int | None) -> None:
    """torch CPU threads: a positive count sets torch.set_num_threads; 0 or None leaves torch's default."""
    if threads:
        torch.set_num_threads(threads)
