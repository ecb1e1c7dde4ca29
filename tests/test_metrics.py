import numpy as np
import pytest
import torch

from ersde_theory import ring_2d
from ersde_theory.studies.metrics import fd_noise_floor, frechet_distance, frechet_to_moments


def test_frechet_distance_closed_forms():
    # 1-D: (m1 − m2)² + (s1 − s2)²
    assert frechet_distance([1.0], [[4.0]], [-1.0], [[1.0]]) == pytest.approx(4 + 1, rel=1e-12)
    # commuting (diagonal) covariances: |Δμ|² + Σ (sqrt a − sqrt b)²
    a, b = np.array([1.0, 9.0, 0.25]), np.array([4.0, 1.0, 0.25])
    fd = frechet_distance(np.zeros(3), np.diag(a), np.ones(3), np.diag(b))
    assert fd == pytest.approx(3 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rel=1e-10)
    # rotation invariance with a full covariance
    q = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    assert frechet_distance(np.zeros(3), q @ np.diag(a) @ q.T, np.ones(3) @ q.T, q @ np.diag(b) @ q.T) == pytest.approx(
        fd, rel=1e-8
    )


def test_noise_floor_scales_like_one_over_n():
    gm = ring_2d()
    m1, _ = fd_noise_floor(gm, 2000, reps=40, seed=0)
    m2, _ = fd_noise_floor(gm, 8000, reps=40, seed=1)
    assert 2.5 < m1 / m2 < 6.5  # E FD ≈ c/n for an unbiased sampler
    shifted = gm.sample(8000, generator=torch.Generator().manual_seed(2)) + 0.1
    assert frechet_to_moments(shifted, gm.mean().numpy(), gm.cov().numpy()) > 10 * m2
