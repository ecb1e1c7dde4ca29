"""Coefficients layer, ersde_coefficients: the exact step coefficients r, noise std, C_1, C_2 (docs/theory.md
eqs. (9), (12)–(14)) against 30-digit mpmath, the power-family closed forms (eq. (15)) against the quadrature
path, the official and ComfyUI left Riemann sums (ComfyUI's at its float32 points), the official variance clip,
zero-length steps and bad schedules."""

import math

import numpy as np
import pytest
import torch

from ersde_theory import NSF_NAMES, ersde_coefficients, get_sigmas_karras, get_sigmas_loguniform, power_nsf, resolve_nsf
from ersde_theory.studies.reference_coefficients import mp_step_coefficients


@pytest.mark.parametrize("n", [5, 37, 200, 1000])
@pytest.mark.parametrize("name", NSF_NAMES)
def test_exact_coefficients_match_mpmath(name, n):
    sig = get_sigmas_karras(n, 0.002, 80.0).numpy()
    c = ersde_coefficients(sig, name)
    for i in np.unique(np.linspace(0, n - 2, 5).astype(int)):
        ref = mp_step_coefficients(name, sig[i], sig[i + 1], dps=30)
        assert c.r[i] == pytest.approx(ref["r"], rel=1e-12)
        assert abs(c.noise_std[i] - ref["std"]) <= 1e-12 * sig[i + 1]
        assert c.c1[i] == pytest.approx(ref["c1"], rel=1e-12)
        assert c.c2[i] == pytest.approx(ref["c2"], rel=1e-12)
    assert c.r[-1] == 0 and c.noise_std[-1] == 0  # the step to σ = 0


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
def test_power_closed_form_equals_quadrature_path(p):
    sig = get_sigmas_loguniform(300, 0.002, 80.0)
    closed = ersde_coefficients(sig, power_nsf(p))
    quad = ersde_coefficients(sig, resolve_nsf(lambda s: 3.0 * s**p))  # callable: no closed form
    np.testing.assert_allclose(closed.c1, quad.c1, rtol=1e-11)
    np.testing.assert_allclose(closed.c2, quad.c2, rtol=1e-11)
    np.testing.assert_allclose(closed.r, quad.r, rtol=1e-12)


def _left_riemann(phi, s, t, n):
    """Plain per-step loop of the official sums (points σ_t + k(σ_s − σ_t)/n, k = 0…n−1)."""
    h = (s - t) / n
    s_int = sum(1 / phi(t + k * h) * h for k in range(n))
    s_d_int = sum((t + k * h - s) / phi(t + k * h) * h for k in range(n))
    return (t - s) + s_int * phi(t), (t - s) ** 2 / 2 + s_d_int * phi(t)


@pytest.mark.parametrize("mode,n", [("official", 100), ("comfyui_f64", 200)])
@pytest.mark.parametrize("name", ["ode", "er_sde_5", "er_sde_4"])
def test_riemann_modes_equal_left_riemann_sums(mode, n, name):
    sig = get_sigmas_karras(12, 0.002, 80.0).numpy()
    phi = resolve_nsf(name)
    c = ersde_coefficients(sig, name, mode)
    for i in range(11):
        c1, c2 = _left_riemann(lambda v: float(phi(v)), sig[i], sig[i + 1], n)
        assert c.c1[i] == pytest.approx(c1, rel=1e-12)
        assert c.c2[i] == pytest.approx(c2, rel=1e-10, abs=1e-14)


@pytest.mark.parametrize("n", [12, 100])
@pytest.mark.parametrize("name", ["er_sde_5", "er_sde_4"])
def test_comfyui_mode_sums_at_comfyuis_float32_points(name, n):
    """ComfyUI's points come from ``σ_t + arange(200, dtype=float32) · Δ`` with float64 σ_t and Δ = (σ_s − σ_t)/200:
    the float32 arange wins torch's type promotion, so the points, and σ_s − point in the second sum, are float32
    values. The sums over those values, here with math.fsum in float64, are the "comfyui" coefficients to 1e-12;
    they differ from the float64-points sums ("comfyui_f64")."""
    sig = get_sigmas_karras(n, 0.002, 80.0).numpy()
    phi = resolve_nsf(name)
    c32, c64 = ersde_coefficients(sig, name, "comfyui"), ersde_coefficients(sig, name, "comfyui_f64")
    k = torch.arange(0, 200.0, dtype=torch.float32)
    gap = 0.0
    for i in range(n - 1):
        s, t = torch.tensor(sig[i], dtype=torch.float64), torch.tensor(sig[i + 1], dtype=torch.float64)
        step = (s - t) / 200.0
        pts = t + k * step
        assert pts.dtype == torch.float32
        diffs = (pts - s).tolist()
        pts = pts.tolist()
        phi_t, dt = float(phi(sig[i + 1])), float(step)
        c1 = (sig[i + 1] - sig[i]) + math.fsum(1.0 / float(phi(p)) for p in pts) * dt * phi_t
        c2 = (sig[i + 1] - sig[i]) ** 2 / 2 + math.fsum(d / float(phi(p)) for p, d in zip(pts, diffs)) * dt * phi_t
        assert c32.c1[i] == pytest.approx(c1, rel=1e-12)
        assert c32.c2[i] == pytest.approx(c2, rel=1e-12, abs=1e-15)
        gap = max(gap, abs(c64.c1[i] / c1 - 1))
    assert gap > 1e-9
    np.testing.assert_array_equal(c32.r, c64.r)
    np.testing.assert_array_equal(c32.noise_std, c64.noise_std)


@pytest.mark.parametrize("quadrature", ["exact", "official", "comfyui", "comfyui_f64"])
@pytest.mark.parametrize("name", ["er_sde_5", "ode", lambda s: s * (np.exp(s**0.3) + 10.0)])
def test_a_repeated_sigma_is_a_zero_length_step(quadrature, name):
    """r = 1, std = C_1 = C_2 = 0 on the repeat; the other steps are those of the schedule without it."""
    sig = get_sigmas_karras(10, 0.002, 80.0).numpy()
    rep = np.concatenate([sig[:4], sig[3:]])
    a, b = ersde_coefficients(sig, name, quadrature), ersde_coefficients(rep, name, quadrature)
    assert (b.r[3], b.noise_std[3], b.c1[3], b.c2[3]) == (1.0, 0.0, 0.0, 0.0)
    for f in ("r", "noise_std", "c1", "c2"):
        np.testing.assert_array_equal(np.delete(getattr(b, f), 3), getattr(a, f))


def test_official_mode_clips_small_variances_to_zero():
    sig = get_sigmas_karras(20, 0.002, 80.0).numpy()
    ex, off = ersde_coefficients(sig, "er_sde_5"), ersde_coefficients(sig, "er_sde_5", "official")
    small = (ex.noise_std**2 < 1e-6) & (ex.noise_std > 0)
    assert small.sum() >= 1  # real noise the official code drops
    assert np.all(off.noise_std[small] == 0)
    np.testing.assert_allclose(off.noise_std[~small], ex.noise_std[~small], rtol=1e-9)
    assert ersde_coefficients(sig, "er_sde_5", "comfyui").noise_std[small].min() > 0


def test_bad_schedules_and_modes():
    for bad, msg in [
        ([[80.0, 1.0]], "1-D"),
        ([80.0], "at least 2"),
        ([80.0, np.nan, 0.0], "finite"),
        ([80.0, 1.0, -1.0], "non-negative"),
        ([1.0, 2.0, 0.0], "non-increasing"),
        ([1.0, 0.0, 0.0], "single trailing 0"),
    ]:
        with pytest.raises(ValueError, match=msg):
            ersde_coefficients(bad)
    with pytest.raises(ValueError, match="quadrature"):
        ersde_coefficients([1.0, 0.0], quadrature="simpson")
