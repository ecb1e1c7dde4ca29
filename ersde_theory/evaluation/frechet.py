"""The Fréchet distance between Gaussians, docs/theory.md eq. (31): the one definition every metric of the
project uses (toy moments, FD_digits, Inception-FID).

Sample covariances are the unbiased ones (divisor n − 1, ``np.cov``'s default ddof=1), everywhere.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

__all__ = ["frechet_distance", "gaussian_moments", "frechet_to_moments"]


def frechet_distance(mu1, cov1, mu2, cov2) -> float:
    """Eq. (31): the Fréchet (2-Wasserstein) distance between N(μ1, Σ1) and N(μ2, Σ2),
    |μ1 − μ2|² + tr(Σ1 + Σ2 − 2 (Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2})."""
    mu1, mu2 = (np.atleast_1d(np.asarray(m, dtype=np.float64)) for m in (mu1, mu2))
    c1, c2 = (np.atleast_2d(np.asarray(c, dtype=np.float64)) for c in (cov1, cov2))
    r1 = scipy.linalg.sqrtm(c1)
    cross = scipy.linalg.sqrtm(r1 @ c2 @ r1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * np.real(cross)))


def gaussian_moments(x) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (ddof=1, eq. 31) of n samples (n, ...) flattened to (n, D), float64."""
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, dtype=np.float64)
    x = x.reshape(x.shape[0], -1)
    return x.mean(0), np.atleast_2d(np.cov(x, rowvar=False))


def frechet_to_moments(samples, mean, cov) -> float:
    """Eq. (31) between the Gaussian fit of ``samples`` (n, D) and exact moments (μ, Σ)."""
    m, c = gaussian_moments(samples)
    return frechet_distance(m, c, np.asarray(mean), np.asarray(cov))
