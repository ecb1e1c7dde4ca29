"""Toys layer, the exact flow velocity of the Gaussian mixtures (docs/theory.md eq. (44)): against the VE denoiser
of x/α at λ = σ/α, its values at σ = 1 and σ = 0, the posterior identity x = α E[x_0|x] + σ E[ε|x], a Monte-Carlo
check of E[ε − x_0 | x] for a 1-D Gaussian, and the timestep scale."""

from __future__ import annotations

import pytest
import torch

from ersde_theory import GaussianMixture, flow_velocity, image_like_64d, ring_2d


@pytest.mark.parametrize("make", [ring_2d, image_like_64d])
@pytest.mark.parametrize("sigma", [0.05, 0.5, 0.97])
def test_velocity_equals_ve_denoiser_form(make, sigma):
    """v = (x − (α + σ) x_θ(x/α, σ/α))/σ with the VE denoiser (Tweedie's formula), to 1e-12."""
    gm = make()
    x = torch.randn(9, gm.D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = 1.0 - sigma
    v = flow_velocity(gm)(x, torch.full((9,), sigma, dtype=torch.float64))
    d = gm(x / a, torch.full((9,), sigma / a, dtype=torch.float64))
    torch.testing.assert_close(v, (x - d) / sigma, rtol=0, atol=1e-12)


def test_velocity_at_the_ends():
    """σ = 1 (α = 0): v = x − E[x_0]; σ = 0: v = −x (E[ε | x_0] = 0)."""
    gm = ring_2d()
    x = torch.randn(5, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    vel = flow_velocity(gm)
    torch.testing.assert_close(vel(x, torch.ones(5, dtype=torch.float64)), x - gm.mean(), rtol=0, atol=1e-14)
    torch.testing.assert_close(vel(x, torch.zeros(5, dtype=torch.float64)), -x, rtol=0, atol=1e-14)


def test_posterior_reconstructs_x():
    gm = image_like_64d()
    x = torch.randn(4, gm.D, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    for a, s in [(0.3, 0.7), (0.0, 1.0), (0.8, 0.6), (1.0, 0.0)]:
        x0, eps = gm.posterior(x, a, s)
        torch.testing.assert_close(a * x0 + s * eps, x, rtol=0, atol=1e-12)


def test_velocity_monte_carlo_1d_gaussian():
    """For N(0.5, 0.3²) data, E[ε − x_0 | x_σ ∈ bin] from 400k joint draws matches the exact v within 3 SE
    (v ≈ −0.2 here; SE ≈ 0.007)."""
    gm = GaussianMixture([1.0], [[0.5]], [[0.09]])
    g = torch.Generator().manual_seed(3)
    n, sigma = 400_000, 0.6
    x0 = 0.5 + 0.3 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    eps = torch.randn(n, 1, generator=g, dtype=torch.float64)
    x = (1 - sigma) * x0 + sigma * eps
    sel = (x[:, 0] - 0.4).abs() < 0.01
    target = (eps - x0)[sel]
    v = flow_velocity(gm)(torch.tensor([[0.4]], dtype=torch.float64), torch.tensor([sigma], dtype=torch.float64))
    se = target.std() / target.numel() ** 0.5
    assert abs(target.mean() - v[0, 0]) < 3 * se + 1e-3  # 1e-3: the bin width's bias


def test_timestep_scale_and_bad_scale():
    gm = ring_2d()
    x = torch.randn(3, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    a = flow_velocity(gm, 1000.0)(x, torch.full((3,), 300.0, dtype=torch.float64))
    b = flow_velocity(gm)(x, torch.full((3,), 0.3, dtype=torch.float64))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-14)
    with pytest.raises(ValueError, match="timestep_scale"):
        flow_velocity(gm, 0.0)
