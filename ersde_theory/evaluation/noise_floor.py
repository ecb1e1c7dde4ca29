"""The noise floor of a metric, docs/theory.md eq. (32): the mean and standard deviation of the metric over
independent sample sets of size n drawn from the exact law. A finite exact sample does not score 0, and a
sampler whose value lies within the floor's spread of it cannot be ranked."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .frechet import frechet_to_moments

__all__ = ["floor_values", "floor_summary", "fd_noise_floor"]


def floor_values(draw: Callable[[], object], score: Callable[[object], object], reps: int) -> list:
    """``score(draw())`` for ``reps`` independent exact sample sets, drawn in order (eq. 32)."""
    return [score(draw()) for _ in range(reps)]


def floor_summary(values) -> tuple[float, float]:
    """(mean, sd) of floor values (eq. 32); sd with divisor m − 1, 0 for a single value."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def fd_noise_floor(dist, n: int, reps: int = 20, seed: int = 0) -> tuple[float, float]:
    """Eq. (32) for the Fréchet distance (31) to the exact moments of ``dist`` (a mixture with ``mean()``,
    ``cov()`` and ``sample(n, generator=)``): mean and sd over ``reps`` exact sample sets of size n."""
    g = torch.Generator().manual_seed(seed)
    mean, cov = dist.mean().cpu().numpy(), dist.cov().cpu().numpy()
    vals = floor_values(lambda: dist.sample(n, generator=g), lambda x: frechet_to_moments(x, mean, cov), reps)
    return floor_summary(vals)
