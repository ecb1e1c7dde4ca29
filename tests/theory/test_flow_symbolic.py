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
