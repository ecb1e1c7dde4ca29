"""Named toy problems with exact answers (deterministic constructions, no randomness at import)."""

from __future__ import annotations

import math

import numpy as np
import torch

from .gmm import GaussianMixture

__all__ = ["ring_2d", "image_like_64d", "bimodal_1d", "PROBLEMS", "get_problem"]


def ring_2d(n_modes: int = 8, radius: float = 2.0, std: float = 0.05) -> GaussianMixture:
    """Sharp modes on a circle: n_modes equal-weight isotropic Gaussians of std ``std``."""
    ang = 2 * math.pi * np.arange(n_modes) / n_modes
    means = radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    return GaussianMixture(np.ones(n_modes), means, np.full((n_modes, 2), std**2))


def image_like_64d(n_components: int = 10, dim: int = 64, rank: int = 8, seed: int = 0) -> GaussianMixture:
    """An "image-like" 8×8 mixture: 10 smooth mean images in [−1, 1], each with a low-rank-plus-isotropic
    covariance (rank-8 smooth directions of std ~0.3 plus 0.05² I), unequal weights."""
    rng = np.random.default_rng(seed)
    side = int(round(math.sqrt(dim)))
    g = np.linspace(-1, 1, side)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    means, covs = [], []
    for _ in range(n_components):
        c = rng.uniform(-0.6, 0.6, size=2)
        width = rng.uniform(0.25, 0.6)
        img = 2 * np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / (2 * width**2)) - 1
        means.append(img.reshape(-1)[:dim])
        basis = np.linalg.qr(rng.normal(size=(dim, rank)))[0] * 0.3  # orthonormal × std 0.3
        covs.append(basis @ basis.T * rng.uniform(0.5, 1.5) + 0.05**2 * np.eye(dim))
    w = rng.uniform(0.5, 1.5, size=n_components)
    return GaussianMixture(w, np.array(means), np.array(covs))


def bimodal_1d(separation: float = 2.0, std: float = 0.3) -> GaussianMixture:
    """Two unequal modes at ±separation/2 in 1-D (weights 0.3 and 0.7)."""
    return GaussianMixture([0.3, 0.7], [[-separation / 2], [separation / 2]], [[std**2], [std**2]])


PROBLEMS = {"ring_2d": ring_2d, "image_like_64d": image_like_64d, "bimodal_1d": bimodal_1d}


def get_problem(name: str, dtype=torch.float64, device=None) -> GaussianMixture:
    if name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; known: {', '.join(PROBLEMS)}")
    gm = PROBLEMS[name]()
    if device is not None or dtype != torch.float64:
        cov = gm.covariances
        gm = GaussianMixture(gm.weights, gm.means, cov, dtype=dtype, device=device)
    return gm
