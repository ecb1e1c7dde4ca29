"""Coefficients layer against the symbolic derivation: the float64 step coefficients of ersde_coefficients
(r, noise std, C_1, C_2 of docs/theory.md eqs. (9), (12)–(14)) equal the lambdified derivation to 1e-12 on VE
and VP schedules, the power-family closed forms (eq. (15)) equal the symbolic ψ forms, the VP weights are α_t
times the VE ones on λ (eq. (20)), and the ordering |C_n^φ| ≥ |C_n^ODE|, r^φ ≤ r^ODE (eq. (18)) holds on dense
real schedules."""

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from ersde_theory import NSF_NAMES, ersde_coefficients, get_sigmas_karras, get_sigmas_loguniform, get_vp_schedule
from ersde_theory.coefficients.ersde import _power_c1_c2
from ersde_theory.theory import symbolic as S
from ersde_theory.theory.symbolic.symbols import sigma_t
from ersde_theory.theory.symbolic.taylor import L_sym


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 2.5, 3.7])
def test_numeric_power_closed_forms_equal_symbolic_psi_forms(p):
    """coefficients/ersde.py's ψ closed forms (with their cancellation-free series) = the symbolic ψ forms."""
    cs = S.power_family_coefficients(3, p)
    f = sp.lambdify((sigma_t, L_sym), [cs[1], cs[2]], modules="mpmath")
    sig = get_sigmas_karras(200, 0.002, 80.0).numpy()[:-1]
    s, t = np.r_[sig[:-1], 80.0, 1.0], np.r_[sig[1:], 0.002, 1.0 - 1e-7]
    c1, c2 = _power_c1_c2(p, t, s)
    with mp.workdps(40):
        for j in range(s.size):
            r1, r2 = f(mp.mpf(t[j]), mp.log(mp.mpf(s[j]) / mp.mpf(t[j])))
            assert abs(c1[j] - r1) <= 1e-12 * abs(r1) and abs(c2[j] - r2) <= 1e-12 * abs(r2), (p, j)


def _dense_schedules():
    out = [get_sigmas_karras(n, 0.002, 80.0, rho).numpy() for n in (5, 10, 20, 50, 200, 1000) for rho in (3.0, 7.0)]
    out += [get_sigmas_loguniform(n, 0.002, 80.0).numpy() for n in (2, 3, 7, 30, 300, 3000)]
    return out


def test_ordering_inequality_on_dense_grids():
    """|C_n^φ| ≥ |C_n^ODE| (n = 1, 2) and r^φ ≤ r^ODE for the seven NSFs over dense real schedules."""
    for sig in _dense_schedules():
        ode = ersde_coefficients(sig, "ode")
        reg = sig[1:] > 0
        for name in NSF_NAMES:
            c = ersde_coefficients(sig, name)
            assert np.all(c.r[reg] <= ode.r[reg] * (1 + 1e-14))
            assert np.all(np.abs(c.c1[reg]) >= np.abs(ode.c1[reg]) * (1 - 1e-12))
            assert np.all(np.abs(c.c2[reg]) >= np.abs(ode.c2[reg]) * (1 - 1e-12))
    # strict for the SDE-like power family: r = (σ_t/σ_s)^p
    sig = get_sigmas_karras(20, 0.002, 80.0).numpy()
    for a, b in [("ode", "er_sde_2"), ("er_sde_2", "sde"), ("sde", "er_sde_3")]:
        ca, cb = ersde_coefficients(sig, a), ersde_coefficients(sig, b)
        assert np.all(cb.r[:-1] < ca.r[:-1]) and np.all(np.abs(cb.c1[:-1]) > np.abs(ca.c1[:-1]))


def _schedules():
    out = [(f"karras{n}", get_sigmas_karras(n, 0.002, 80.0).numpy()) for n in (5, 10, 20, 50, 100, 200, 500, 1000)]
    out += [(f"loguniform{n}", get_sigmas_loguniform(n, 0.002, 80.0).numpy()) for n in (5, 50, 1000)]
    for kind in ("linear", "cosine"):
        for spacing in ("time", "logsnr"):
            for n in (10, 1000):
                a, s, _ = get_vp_schedule(n, kind, spacing)
                out.append((f"vp-{kind}-{spacing}{n}", (s / a).numpy()))
    return out


def _max_errors(name, sig, n_steps=5):
    pos = np.flatnonzero(sig[1:] > 0)
    idx = np.unique(pos[np.linspace(0, pos.size - 1, n_steps).astype(int)])
    num = ersde_coefficients(sig, name)
    ref = S.step_coefficients_array(name, sig, 3, steps=idx)
    t = sig[idx + 1]
    return dict(
        r=np.max(np.abs(num.r[idx] / ref["r"] - 1)),
        std=np.max(np.abs(num.noise_std[idx] - ref["std"]) / t),
        c1=np.max(np.abs(num.c1[idx] / ref["c"][1] - 1)),
        c2=np.max(np.abs(num.c2[idx] / ref["c"][2] - 1)),
    )


@pytest.mark.parametrize("name", NSF_NAMES)
def test_solver_coefficients_equal_lambdified_derivation(name):
    worst = {}
    for label, sig in _schedules():
        if name == "er_sde_4" and "cosine" in label:  # λ reaches ~2e4, beyond er_sde_4's admissible range
            with pytest.raises(ValueError, match="not admissible"):
                ersde_coefficients(sig, name)
            continue
        for k, v in _max_errors(name, sig).items():
            worst[k] = max(worst.get(k, 0.0), v)
    assert max(worst.values()) < 1e-12, worst


def test_vp_solver_weights_equal_symbolic_vp_weights():
    """α_t × solver coefficients on λ = the symbolic VP weights α_t C_n(λ), and the VP gain."""
    a, s, _ = get_vp_schedule(12, "linear", "logsnr")
    a, s = a.numpy(), s.numpy()
    lam = s / a
    num = ersde_coefficients(lam, "er_sde_5")
    vp = S.vp_exact_step("er_sde_5")
    gain = sp.lambdify((S.alpha_s, S.alpha_t, S.lambda_s, S.lambda_t), vp["gain"], "mpmath")
    var = sp.lambdify((S.alpha_s, S.alpha_t, S.lambda_s, S.lambda_t), vp["variance"], "mpmath")
    for i in (0, 5, 10):
        ref = S.mp_step_coefficients("er_sde_5", lam[i], lam[i + 1])
        g = gain(a[i], a[i + 1], lam[i], lam[i + 1])
        assert abs(a[i + 1] / a[i] * num.r[i] - g) <= 1e-13 * g
        assert abs(a[i + 1] * num.c2[i] - a[i + 1] * ref["c"][2]) <= 1e-12 * abs(a[i + 1] * ref["c"][2])
        assert (
            abs((a[i + 1] * num.noise_std[i]) ** 2 - var(a[i], a[i + 1], lam[i], lam[i + 1])) <= 1e-13 * lam[i + 1] ** 2
        )
