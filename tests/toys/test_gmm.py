"""Toys layer, Gaussian mixtures (toys/gmm.py, toys/problems.py): the score is ∇ log p_σ and the denoiser the
posterior mean (docs/theory.md eq. (1)), densities normalise, full and diagonal covariances agree, sample
moments match the exact ones, the named problems, and bad input."""

import os

import pytest
import torch

from ersde_theory import GaussianMixture, bimodal_1d, get_problem, image_like_64d, ring_2d


def _full_2d():
    covs = torch.tensor([[[0.5, 0.2], [0.2, 0.3]], [[0.1, -0.05], [-0.05, 0.2]], [[0.3, 0.0], [0.0, 0.3]]])
    return GaussianMixture([0.2, 0.5, 0.3], [[0.0, 1.0], [1.5, -0.5], [-1.0, -1.0]], covs)


@pytest.mark.parametrize("sigma", [0.0, 0.05, 0.7, 5.0])
def test_score_is_gradient_of_log_prob(sigma):
    gm = _full_2d()
    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64).requires_grad_()
    (g,) = torch.autograd.grad(gm.log_prob(x, sigma).sum(), x)
    torch.testing.assert_close(gm.score(x.detach(), sigma), g, rtol=1e-10, atol=1e-10)


def test_denoiser_is_posterior_mean_by_quadrature():
    """E[x0 | x_σ] by brute-force quadrature on a 1-D grid, independently of Tweedie."""
    gm = bimodal_1d()
    sigma = 0.8
    grid = torch.linspace(-6, 6, 200001, dtype=torch.float64)[:, None]
    prior = gm.log_prob(grid).exp()[:, 0] if gm.log_prob(grid).ndim > 1 else gm.log_prob(grid).exp()
    for xv in (-1.3, 0.1, 2.0):
        lik = torch.exp(-0.5 * (xv - grid[:, 0]) ** 2 / sigma**2)
        post = prior * lik
        mean = float((post * grid[:, 0]).sum() / post.sum())
        assert float(gm.denoise(torch.tensor([[xv]], dtype=torch.float64), sigma)) == pytest.approx(mean, abs=1e-9)


def test_log_prob_normalises_in_1d():
    gm = bimodal_1d()
    grid = torch.linspace(-10, 10, 400001, dtype=torch.float64)[:, None]
    for sigma in (0.0, 1.0):
        mass = float(gm.log_prob(grid, sigma).exp().sum() * (grid[1, 0] - grid[0, 0]))
        assert mass == pytest.approx(1.0, abs=1e-9)


def test_full_and_diagonal_covariances_agree():
    diag = torch.tensor([[0.3, 0.1], [0.2, 0.5]], dtype=torch.float64)
    a = GaussianMixture([0.4, 0.6], [[0.0, 0.0], [1.0, 2.0]], diag)
    b = GaussianMixture([0.4, 0.6], [[0.0, 0.0], [1.0, 2.0]], torch.diag_embed(diag))
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for s in (0.0, 0.3):
        torch.testing.assert_close(a.denoise(x, s), b.denoise(x, s), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(a.log_prob(x, s), b.log_prob(x, s), rtol=1e-12, atol=1e-12)


def test_per_sample_sigma_equals_scalar_sigma():
    gm = _full_2d()
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    sig = torch.tensor([0.0, 0.01, 0.3, 1.0, 4.0, 80.0], dtype=torch.float64)
    batched = gm.denoise(x, sig)
    for i in range(6):
        torch.testing.assert_close(batched[i : i + 1], gm.denoise(x[i : i + 1], float(sig[i])), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("make", [_full_2d, ring_2d, image_like_64d])
def test_sample_moments_match_exact_moments_within_mc_error(make):
    gm = make()
    n = 40000
    x = gm.sample(n, generator=torch.Generator().manual_seed(5))
    se = torch.sqrt(torch.diagonal(gm.cov()) / n)
    z = (x.mean(0) - gm.mean()).abs() / se
    assert float(z.max()) < 4.5  # max over ≤ 64 coordinates of |N(0,1)|
    emp = torch.cov(x.T)
    assert float((emp - gm.cov()).abs().max() / gm.cov().abs().max()) < 0.05
    noisy = gm.sample(n, generator=torch.Generator().manual_seed(6), sigma=2.0)
    assert float(torch.diagonal(torch.cov(noisy.T)).mean() / torch.diagonal(gm.cov(2.0)).mean()) == pytest.approx(
        1, abs=0.03
    )


def test_named_problems():
    assert get_problem("ring_2d").D == 2 and get_problem("image_like_64d").K == 10
    assert get_problem("image_like_64d").D == 64
    gm32 = get_problem("ring_2d", dtype=torch.float32)
    assert gm32.means.dtype == torch.float32
    with pytest.raises(ValueError):
        get_problem("swiss_roll")


def test_bad_mixture_input():
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]])
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture([1.0, -1.0], [[0.0], [1.0]], [[1.0], [1.0]])
    with pytest.raises(ValueError, match="x must have shape"):
        ring_2d().denoise(torch.zeros(3, 3), 1.0)


def test_samples_depend_only_on_the_seed_not_on_the_machine():
    """image_like_64d's covariances have a 56-fold eigenvalue, where an eigenbasis is any rotation: MKL's AVX2 and
    AVX-512 paths give different ones. Samples are drawn with the (unique) Cholesky factor: x = μ_k + L_k z, the
    same under both instruction sets (a sampler through the eigenbasis differs there by O(1))."""
    import subprocess
    import sys

    gm = image_like_64d()
    g = torch.Generator().manual_seed(3)
    comp = torch.multinomial(gm.weights, 500, replacement=True, generator=g)
    z = torch.randn(500, gm.D, dtype=torch.float64, generator=g)
    covs = gm.evecs @ torch.diag_embed(gm.evals) @ gm.evecs.transpose(-1, -2)  # the components' covariances
    expect = gm.means[comp] + torch.einsum("bij,bj->bi", torch.linalg.cholesky(covs)[comp], z)
    assert torch.allclose(gm.sample(500, torch.Generator().manual_seed(3)), expect, atol=1e-12)
    code = (
        "import torch; from ersde_theory.toys.problems import image_like_64d; "
        "print(repr(image_like_64d().sample(1000, torch.Generator().manual_seed(0)).sum().item()))"
    )
    run = lambda isa: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code], env=dict(os.environ, MKL_ENABLE_INSTRUCTIONS=isa), capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip
    assert abs(float(run("AVX2")) - float(run("AVX512"))) < 1e-8
