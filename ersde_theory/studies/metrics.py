"""Distribution distances with Monte-Carlo error bars."""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

__all__ = ["frechet_distance", "frechet_to_moments", "fd_noise_floor"]


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Fréchet (2-Wasserstein) distance between N(μ1, Σ1) and N(μ2, Σ2):
    |μ1 − μ2|² + tr(Σ1 + Σ2 − 2 (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2})."""
    mu1, mu2 = (np.atleast_1d(np.asarray(m, dtype=np.float64)) for m in (mu1, mu2))
    c1, c2 = (np.atleast_2d(np.asarray(c, dtype=np.float64)) for c in (cov1, cov2))
    r1 = scipy.linalg.sqrtm(c1)
    cross = scipy.linalg.sqrtm(r1 @ c2 @ r1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * np.real(cross)))


def _moments(x) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    x = x.reshape(x.shape[0], -1)
    return x.mean(0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_to_moments(samples, mean, cov) -> float:
    """Fréchet distance between the empirical Gaussian fit of ``samples`` (n, D) and exact moments."""
    m, c = _moments(samples)
    return frechet_distance(m, c, np.asarray(mean), np.asarray(cov))


def fd_noise_floor(dist, n: int, reps: int = 20, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of the FD between ``n`` exact samples of ``dist`` and its exact moments,
    over ``reps`` independent sample sets: the value a perfect sampler reaches at sample size n."""
    g = torch.Generator().manual_seed(seed)
    mean, cov = dist.mean().cpu().numpy(), dist.cov().cpu().numpy()
    vals = np.array([frechet_to_moments(dist.sample(n, generator=g), mean, cov) for _ in range(reps)])
    return float(vals.mean()), float(vals.std(ddof=1))
