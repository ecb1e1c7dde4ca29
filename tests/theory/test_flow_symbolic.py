"""Theory layer, the symbolic flow derivations of docs/theory.md §9: the velocity map (eq. (35)), the limits of the
first step at λ = ∞ for every registry NSF admissible there (eqs. (37)–(40)), the classification of the registry
(eq. (39)), flow Euler = ER-SDE-1 with φ = λ (eq. (41)), DPM-Solver++ at h = ∞ (eq. (43)) and the Gaussian
posterior in flow variables (eq. (44))."""

from __future__ import annotations

import math

import pytest
import sympy as sp

from ersde_theory.theory.symbolic.flow import (
    dpmpp_start_derivation,
    flow_euler_derivation,
    flow_map_derivation,
    flow_posterior_derivation,
    start_limit_derivation,
    start_limits_table,
)
from ersde_theory.theory.symbolic.symbols import alpha_t, lambda_t, sigma_s


@pytest.mark.parametrize(
    "derivation", [flow_map_derivation, flow_euler_derivation, dpmpp_start_derivation, flow_posterior_derivation]
)
def test_derivations_verify(derivation):
    d = derivation()
    assert d.failures() == [] and len(d.steps) >= 2


@pytest.mark.parametrize("name", ["ode", "sde", "er_sde_1", "er_sde_2", "er_sde_3", "er_sde_5"])
def test_start_limits(name):
    """Every step of the limit derivation verifies; lim C_1/(λ_t − λ_s) = 1 and the data weight is 1 for all."""
    d = start_limit_derivation(name)
    assert d.failures() == []
    assert d.results["c1_ratio"] == 1 and d.results["data_weight"] == 1


def test_registry_classification():
    """Eq. (39): L = 1 (ode), 1/11 (er_sde_1), 0 (sde, er_sde_2, er_sde_3, er_sde_5); er_sde_4 has h̃² → −1/10."""
    t = start_limits_table()
    assert {k: v["L"] for k, v in t.items() if v["admissible_at_infinity"]} == {
        "ode": 1,
        "er_sde_1": sp.Rational(1, 11),
        "sde": 0,
        "er_sde_2": 0,
        "er_sde_3": 0,
        "er_sde_5": 0,
    }
    assert not t["er_sde_4"]["admissible_at_infinity"] and t["er_sde_4"]["h2_at_infinity"] == sp.Rational(-1, 10)


def test_er_sde_1_gain_value():
    """The er_sde_1 gain α_t φ(λ_t)/(11 σ_s) evaluated at a point equals (σ_t/σ_s)(e^{−1/λ_t} + 10)/11."""
    g = start_limit_derivation("er_sde_1").results["gain"]
    val = float(g.subs({alpha_t: 0.4, lambda_t: 1.5, sigma_s: 1.0}))
    assert val == pytest.approx(0.6 * (math.exp(-1 / 1.5) + 10) / 11, rel=1e-15)


# ---------------------------------------------------------------- the flow expansion, eqs. (53)–(57)
@pytest.mark.parametrize("phi", [None, "ode", "sde"])
def test_flow_expansion_derivation_verifies(phi):
    """Change of variables λ = s/(1 − s), the by-parts identity in s (general φ); closed-form c_1, c_2 for φ = λ, λ²
    and, for the ODE on α = 1 − σ, α_t c_n = C_n(σ_s, σ_t) (eq. (57))."""
    from ersde_theory.theory.symbolic.flow import flow_expansion_derivation

    d = flow_expansion_derivation(phi)
    assert d.failures() == [] and len(d.steps) >= 6


@pytest.mark.parametrize("name", ["ode", "sde"])
def test_flow_closed_forms_equal_the_three_integral_forms(name):
    """The closed forms c_1, c_2 equal the λ-integral of eq. (54), its s form and the sign-definite form (eq. (55)),
    by mpmath quadrature at a finite step and from s_s = 1 (λ_s = ∞), to 1e-25 at 40 digits."""
    import mpmath as mp

    from ersde_theory.theory.symbolic.flow import (
        LAMBDA,
        S_FLOW,
        flow_expansion_weights,
        flow_weight_closed_forms,
        s_s,
        s_t,
    )

    closed = flow_weight_closed_forms(name, 3)
    with mp.workdps(40):
        for ss, st in ((mp.mpf("0.8"), mp.mpf("0.55")), (mp.mpf(1), mp.mpf("0.9"))):
            for form in ("lambda_integral", "s_integral", "sign_definite"):
                ws = flow_expansion_weights(name, 3, form)
                for n in (1, 2):
                    integral = ws[n].subs({s_s: ss, s_t: st})
                    f, (var, lo, hi) = integral.function, integral.limits[0]
                    fn = sp.lambdify(var, f, modules="mpmath")
                    lo, hi = mp.mpf(sp.N(lo, 50)), (mp.inf if hi in (sp.oo, sp.zoo) else mp.mpf(sp.N(hi, 50)))
                    if var == LAMBDA and ss == 1:
                        hi = mp.inf  # λ_s = ∞
                    got = mp.quad(fn, [lo, hi])
                    want = sp.lambdify((s_s, s_t), closed[n], modules="mpmath")(ss, st)
                    assert abs(got - want) <= 1e-25 * abs(want), (form, n, ss, got, want)
            assert S_FLOW not in closed[1].free_symbols


def test_flow_weight_density_table():
    """Eq. (56): the s-density of the weights at s = 1 is (1 + h̃²(∞)) L_φ: 1 (ode), 1/11 (er_sde_1), 0 (sde,
    er_sde_2, er_sde_3, er_sde_5); er_sde_4 is not admissible up to λ = ∞ (its density diverges)."""
    from ersde_theory.theory.symbolic.flow import flow_weight_density_table

    t = flow_weight_density_table()
    assert {k: v["density_at_s_1"] for k, v in t.items()} == {
        "ode": 1,
        "sde": 0,
        "er_sde_1": sp.Rational(1, 11),
        "er_sde_2": 0,
        "er_sde_3": 0,
        "er_sde_4": sp.oo,
        "er_sde_5": 0,
    }
    assert [k for k, v in t.items() if not v["finite_weights"]] == ["er_sde_4"]
