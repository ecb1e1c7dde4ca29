"""Coefficients layer, the start at α = 0 (λ = ∞) of docs/theory.md eqs. (37)–(40): ℓ(∞) against sympy's limit,
the first-step gain, noise and weights against their closed forms, continuity with a start just below σ = 1,
the VP-variable coefficients (eq. (36)) against α-scaled λ-space coefficients, and the inadmissible-NSF error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from ersde_theory import SIGMA, ersde_coefficients, get_flow_schedule, vp_step_coefficients
from ersde_theory.coefficients.ersde import delta_ell_to_infinity, ell_at_infinity
from ersde_theory.theory.symbolic.flow import ell_at_infinity as symbolic_ell_at_infinity

ADMISSIBLE_AT_INFINITY = ["ode", "sde", "er_sde_1", "er_sde_2", "er_sde_3", "er_sde_5"]


@pytest.mark.parametrize("name", ADMISSIBLE_AT_INFINITY)
def test_ell_at_infinity_matches_sympy(name):
    """The numeric ℓ(∞) (IEEE evaluation of the generated closed forms) equals sympy's limit (eq. (37))."""
    want = symbolic_ell_at_infinity(name)
    got = ell_at_infinity(name)
    assert (math.isinf(got) and want == sp.oo) or got == pytest.approx(float(want), rel=1e-15, abs=1e-15)


def test_ell_at_infinity_of_expressions_and_callables():
    """An expression whose ℓ is indeterminate at ∞ in IEEE arithmetic goes through sympy (here ℓ(∞) = log 3);
    a callable φ cannot be taken to the limit: a ValueError says what to do."""
    expr = SIGMA * (2 + SIGMA / (SIGMA + 1))
    assert ell_at_infinity(expr) == pytest.approx(math.log(3.0), rel=1e-15)
    with pytest.raises(ValueError, match="sympy expression"):
        ell_at_infinity(lambda s: s * (2 + s / (s + 1)))
    s = np.array([1.0, 0.5, 0.0])
    with pytest.raises(ValueError, match="sympy expression"):
        vp_step_coefficients(1 - s, s, lambda s: s * (2 + s / (s + 1)))


def test_delta_ell_closed_forms():
    """Δℓ(λ_t, ∞) = ℓ(∞) − ℓ(λ_t): 0 for φ = λ, log(11) − log(e^{−1/λ} + 10) for er_sde_1, ∞ for φ = λ²."""
    assert delta_ell_to_infinity("ode", 3.0) == 0.0
    assert delta_ell_to_infinity("er_sde_1", 0.7) == pytest.approx(math.log(11) - math.log(math.exp(-1 / 0.7) + 10))
    assert math.isinf(delta_ell_to_infinity("sde", 3.0)) and math.isinf(delta_ell_to_infinity("er_sde_5", 3.0))


@pytest.mark.parametrize("nsf", ["ode", "er_sde_1", "sde", "er_sde_5"])
def test_first_step_from_sigma_1_closed_forms(nsf):
    """Eqs. (37)–(40) on a flow schedule from σ_0 = 1: gain g_0 = α_1 φ(λ_1) L_φ/σ_0 with L_φ = 1, 1/11, 0, 0; noise
    std sqrt(σ_1² − g_0²); data weight α_1; step 1's weight of D_0 is 0; the third-order start weight is α_1."""
    a, s, _ = (v.numpy() for v in get_flow_schedule(6, shift=3.0))
    c = vp_step_coefficients(a, s, nsf, order=3, derivatives="corrected")
    lam1 = s[1] / a[1]
    phi1 = {"ode": lam1, "er_sde_1": lam1 * (math.exp(-1 / lam1) + 10), "sde": lam1**2, "er_sde_5": 0.0}[nsf]
    L = {"ode": 1.0, "er_sde_1": 1 / 11, "sde": 0.0, "er_sde_5": 0.0}[nsf]
    g0 = a[1] * phi1 * L / s[0]
    assert c.gain[0] == pytest.approx(g0, rel=1e-14, abs=0)
    assert c.noise_std[0] == pytest.approx(math.sqrt(s[1] ** 2 - g0**2), rel=1e-14, abs=1e-300)
    np.testing.assert_array_equal(c.weights[0], [a[1], 0.0, 0.0])
    assert c.weights[1, 1] == 0.0 and c.weights[2, 2] == 0.0  # eq. (40): multistep weights of D_0 vanish
    assert c.start_weight == a[1]
    assert np.isinf(c.lambdas[0]) and np.all(np.isfinite(c.weights))


@pytest.mark.parametrize("nsf", ["ode", "er_sde_1", "er_sde_5"])
def test_coefficients_are_continuous_at_sigma_1(nsf):
    """The σ_0 = 1 coefficients are the limit of those from σ_0 = 1 − δ (δ = 1e-9: within 1e-7)."""
    a, s, _ = (v.numpy() for v in get_flow_schedule(8, shift=3.0))
    lim = vp_step_coefficients(a, s, nsf, order=3, derivatives="corrected")
    s2 = s.copy()
    s2[0] = 1.0 - 1e-9
    near = vp_step_coefficients(1 - s2, s2, nsf, order=3, derivatives="corrected")
    for f in ("gain", "noise_std", "weights"):
        np.testing.assert_allclose(getattr(near, f), getattr(lim, f), rtol=0, atol=1e-7, err_msg=f)
    assert near.start_weight == pytest.approx(lim.start_weight, abs=1e-7)


@pytest.mark.parametrize("nsf", ["er_sde_5", "sde", "ode"])
def test_vp_coefficients_are_alpha_scaled_lambda_coefficients(nsf):
    """Eq. (36) for α_0 > 0 against eqs. (9), (20) on λ: g_i = α_{i+1} r_i/α_i, noise α_{i+1} std_i, order-1 weight
    α_{i+1}(1 − r_i) = α_{i+1} − g_i α_i."""
    a, s, _ = (v.numpy()[1:] for v in get_flow_schedule(7, shift=2.0))
    c = vp_step_coefficients(a, s, nsf, order=1)
    ve = ersde_coefficients(s / a, nsf)
    reg = s[1:] > 0
    np.testing.assert_allclose(c.gain[reg], (a[1:] * ve.r / a[:-1])[reg], rtol=1e-14)
    np.testing.assert_allclose(c.noise_std, a[1:] * ve.noise_std, rtol=1e-14)
    np.testing.assert_allclose(c.weights[reg, 0], (a[1:] - c.gain * a[:-1])[reg], rtol=1e-13)


def test_inadmissible_nsf_names_lambda():
    """er_sde_4 (h̃² < 0 above λ ≈ 1e3) on a schedule from σ = 1: the error names the first failing λ and the σ_max
    to use instead; a schedule that stays below it works."""
    a, s, _ = (v.numpy() for v in get_flow_schedule(6))
    with pytest.raises(ValueError, match=r"lambda = sigma/alpha = 10\d\d.*sigma_max < 0\.999"):
        vp_step_coefficients(a, s, "er_sde_4")
    s2 = s * 0.99
    vp_step_coefficients(1 - s2, s2, "er_sde_4")  # λ_max = 99: admissible


# ---------------------------------------------------------------- the flow expansion, eqs. (53)–(57)
def _flow_lambdas(n, shift):
    a, s, _ = get_flow_schedule(n, shift=shift)
    a, s = a.numpy(), s.numpy()
    with np.errstate(divide="ignore"):
        return s / a, a


@pytest.mark.parametrize("nsf", ["ode", "er_sde_1", "er_sde_5", "sde", "er_sde_2"])
@pytest.mark.parametrize("n,shift", [(8, 1.0), (10, 3.0), (1000, 1.0), (1000, 3.0)])
def test_flow_expansion_weights_equal_the_derivation(nsf, n, shift):
    """c_1, c_2 of eq. (55) (float64 Gauss–Legendre in log λ, a truncated tail from λ = ∞) equal the mpmath
    quadrature of the sympy sign-definite integrand in s (``theory.symbolic.numeric.mp_flow_coefficients``) to
    1e-13 relative, on the first step from s = 1 and on steps near σ = 1, mid-way and at the small-σ end of flow
    grids (measured ≤ 4e-16 on the 8-step grid)."""
    from ersde_theory.coefficients.ersde import flow_expansion_coefficients
    from ersde_theory.theory.symbolic.numeric import mp_flow_coefficients

    lam, _ = _flow_lambdas(n, shift)
    c1, c2 = flow_expansion_coefficients(lam, nsf)
    last = lam.size - 3  # the last step to λ > 0
    for i in sorted({0, 1, 2, last // 2, last}):
        r1, r2 = mp_flow_coefficients(nsf, lam[i], lam[i + 1])
        assert abs(c1[i] - float(r1)) <= 1e-13 * abs(float(r1)), (i, c1[i], r1)
        assert abs(c2[i] - float(r2)) <= 1e-13 * abs(float(r2)), (i, c2[i], r2)
    assert c1[-1] == c2[-1] == 0.0  # the step to σ = 0


@pytest.mark.parametrize("name", ["ode", "sde"])
def test_flow_expansion_weights_equal_the_closed_forms(name):
    """φ = λ, λ²: the float64 c_n equal the sympy closed forms (eq. (55)) evaluated at 30 digits, to 1e-12 relative
    on every step of a 50-step grid (the closed forms cancel: evaluated in mpmath, not in float64)."""
    import mpmath as mp

    from ersde_theory.coefficients.ersde import flow_expansion_coefficients, flow_time
    from ersde_theory.theory.symbolic.flow import flow_weight_closed_forms, s_s, s_t

    lam, a = _flow_lambdas(50, 1.0)
    s = flow_time(a, 1 - a)
    c1, c2 = flow_expansion_coefficients(lam, name)
    fs = [sp.lambdify((s_s, s_t), c, modules="mpmath") for c in flow_weight_closed_forms(name, 3)[1:]]
    with mp.workdps(30):
        for i in range(lam.size - 2):
            for got, f in zip((c1[i], c2[i]), fs, strict=True):
                want = float(f(mp.mpf(s[i]), mp.mpf(s[i + 1])))
                assert abs(got - want) <= 1e-12 * abs(want), (name, i, got, want)


def test_flow_expansion_ode_weights_are_the_ve_weights_on_sigma():
    """Eq. (57): for φ = λ on α = 1 − σ, α_t c_n = C_n(σ_s, σ_t) of eq. (12) on σ, also from σ = 1 (measured ≤ 6e-15
    relative: s = σ/(α + σ) rounds on the float32-built grid), and the plan's weights are α_{i+1} times eq. (28) on
    the s-grid with these c_n: those of the VE plan on σ."""
    from ersde_theory.coefficients.ersde import flow_expansion_coefficients

    for shift in (1.0, 3.0):
        lam, a = _flow_lambdas(40, shift)
        sig = 1 - a
        c1, c2 = flow_expansion_coefficients(lam, "ode")
        ve = ersde_coefficients(sig, "ode")
        reg = sig[1:] > 0
        np.testing.assert_allclose(a[1:][reg] * c1[reg], ve.c1[reg], rtol=1e-13, atol=0)
        np.testing.assert_allclose(a[1:][reg] * c2[reg], ve.c2[reg], rtol=1e-13, atol=0)
        plan = vp_step_coefficients(a, sig, "ode", order=3, derivatives="corrected", expansion="flow")
        ve_plan = vp_step_coefficients(np.ones_like(sig), sig, "ode", order=3, derivatives="corrected")
        np.testing.assert_allclose(plan.weights, ve_plan.weights, rtol=0, atol=1e-13)
        np.testing.assert_allclose(plan.gain, ve_plan.gain, rtol=0, atol=1e-15)
        assert plan.start_weight == pytest.approx(ve_plan.start_weight, rel=1e-13)
        assert plan.expansion == "flow" and ve_plan.expansion == "lambda"


@pytest.mark.parametrize("nsf", ADMISSIBLE_AT_INFINITY)
def test_flow_expansion_plan_is_finite_from_sigma_1_and_bounded(nsf):
    """Eq. (56): the weights from s = 1 are finite for every NSF admissible up to λ = ∞, with
    0 ≤ −c_1 ≤ s_s − s_t and 0 ≤ c_2 ≤ (s_s − s_t)²/2; gain and noise are those of the λ expansion (eqs. (36)–(38)),
    and at step 1 the weight of D_0 is no longer 0 (the λ expansion's IEEE limit of eq. (40))."""
    from ersde_theory.coefficients.ersde import flow_expansion_coefficients, flow_time

    a, s, _ = get_flow_schedule(12, shift=3.0)
    a, s = a.numpy(), s.numpy()
    with np.errstate(divide="ignore"):
        lam = s / a
    c1, c2 = flow_expansion_coefficients(lam, nsf)
    u = flow_time(a, s)
    assert u[0] == 1.0
    h = u[:-1] - u[1:]
    assert np.all(np.isfinite(c1)) and np.all(np.isfinite(c2))
    assert np.all((-c1 >= 0) & (-c1 <= h * (1 + 1e-14))) and np.all((c2 >= 0) & (c2 <= h**2 / 2 * (1 + 1e-14)))
    flow = vp_step_coefficients(a, s, nsf, order=3, derivatives="corrected", expansion="flow")
    lam_plan = vp_step_coefficients(a, s, nsf, order=3, derivatives="corrected")
    np.testing.assert_array_equal(flow.gain, lam_plan.gain)
    np.testing.assert_array_equal(flow.noise_std, lam_plan.noise_std)
    assert lam_plan.weights[1, 1] == 0.0 and flow.weights[1, 1] != 0.0
