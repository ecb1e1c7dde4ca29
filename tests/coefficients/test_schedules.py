"""Coefficients layer, noise schedules: Karras/EDM and log-uniform σ grids, VP schedules (α, σ) with their
time or log-SNR spacing and λ = σ/α (docs/theory.md eqs. (19), (22)), and bad input."""

import numpy as np
import pytest
import torch

from ersde_theory import get_sigmas_karras, get_sigmas_loguniform, get_vp_schedule, vp_alphas_cumprod, vp_to_lambda


def test_karras_matches_edm_formula():
    n, lo, hi, rho = 18, 0.002, 80.0, 7.0
    s = get_sigmas_karras(n, lo, hi, rho)
    assert s.dtype == torch.float64 and s.shape == (n + 1,) and s[-1] == 0
    i = np.arange(n)
    ref = (hi ** (1 / rho) + i / (n - 1) * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    np.testing.assert_allclose(s[:-1].numpy(), ref, rtol=1e-14)
    assert s[0] == pytest.approx(hi, rel=1e-15) and s[-2] == pytest.approx(lo, rel=1e-14)


def test_loguniform_has_constant_ratio():
    s = get_sigmas_loguniform(10, 0.01, 10.0).numpy()
    ratios = s[1:-1] / s[:-2]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-13)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("spacing", ["time", "logsnr"])
def test_vp_schedule_is_variance_preserving_and_spaced(kind, spacing):
    a, s, t = get_vp_schedule(25, kind, spacing)
    assert all(v.dtype == torch.float64 and v.shape == (26,) for v in (a, s, t))
    np.testing.assert_allclose((a**2 + s**2).numpy(), 1.0, atol=1e-14)
    assert torch.all(torch.diff(s) < 0) and t[0] == 999
    gaps = np.diff(t.numpy() if spacing == "time" else np.log((a / s).numpy()))
    np.testing.assert_allclose(gaps, gaps[0], rtol=1e-10)
    lam = vp_to_lambda(a, s)
    np.testing.assert_allclose(lam.numpy(), (s / a).numpy())


def test_vp_linear_matches_ddpm_product_at_integer_times():
    ab = vp_alphas_cumprod("linear")
    betas = np.linspace(1e-4, 0.02, 1000)
    assert ab[499] == pytest.approx(np.prod(1 - betas[:500]), rel=1e-12)
    a, s, t = get_vp_schedule(9, "linear", "time", t_end=0.0)  # integer timesteps 999, 888, ...
    np.testing.assert_allclose(a.numpy() ** 2, ab[t.numpy().round().astype(int)], rtol=1e-12)


def test_vp_final_zero_and_bad_input():
    a, s, t = get_vp_schedule(5, final_zero=True)
    assert a[-1] == 1 and s[-1] == 0 and len(a) == 6
    with pytest.raises(ValueError):
        get_vp_schedule(5, "sigmoid")
    with pytest.raises(ValueError):
        get_vp_schedule(5, spacing="karras")
    with pytest.raises(ValueError):
        get_sigmas_karras(0, 0.1, 1)
    with pytest.raises(ValueError):
        get_sigmas_karras(5, 1.0, 0.1)


def test_karras_without_final_zero():
    for n in (1, 2, 9):
        full = get_sigmas_karras(n, 0.002, 80.0)
        assert torch.equal(get_sigmas_karras(n, 0.002, 80.0, final_zero=False), full[:-1]) and full[-1] == 0
