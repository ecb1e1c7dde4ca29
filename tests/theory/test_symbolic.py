"""Theory layer, the symbolic derivations (theory.symbolic): identities sympy must reduce to zero for the ER SDE
(docs/theory.md eqs. (3)–(5)), variation of constants (eqs. (7)–(8)), the Taylor weights C_n (eqs. (12)–(15)),
closed forms against mpmath, series residuals at the predicted power of Δ (eq. (17)), the ordering result
(eq. (18)), VP ≡ VE (eqs. (19)–(20)) and the LaTeX rendering. The multistep derivations are in test_multistep.py;
the float64 coefficients against the derivation in tests/coefficients/test_coefficients_vs_derivation.py."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from ersde_theory import NSF_NAMES, get_sigmas_karras
from ersde_theory.theory import symbolic as S
from ersde_theory.theory.symbolic.latex import latex_text, simplifies_to_zero
from ersde_theory.theory.symbolic.numeric import mp_evaluate
from ersde_theory.theory.symbolic.prediction_error import x_derivative
from ersde_theory.theory.symbolic.sde import ve_er_sde_sigma_time
from ersde_theory.theory.symbolic.solution import ito
from ersde_theory.theory.symbolic.symbols import SIGMA, Delta, as_phi, sigma_s, sigma_t, x, x_theta
from ersde_theory.theory.symbolic.taylor import FORMS, L_sym, power_series_derivation
from tests.helpers import fit_slope

PHIS = [None, *NSF_NAMES]
CLOSED = ["ode", "sde", "er_sde_2", "er_sde_3"]  # the power family members
OPEN = ["er_sde_1", "er_sde_4", "er_sde_5"]


# --- 1. the ER SDE, h ↔ φ, admissibility -------------------------------------------------------------
@pytest.mark.parametrize("phi", PHIS)
def test_er_sde_derivation_verifies(phi):
    assert S.er_sde_derivation(phi).failures() == []


def test_h_tilde_sq_of_the_power_family_and_admissible_set():
    p = sp.Symbol("p", positive=True)
    assert simplifies_to_zero(S.h_tilde_sq(SIGMA**p) - (p - 1))
    assert S.power_family_admissible_set() == sp.Interval(1, sp.oo)
    assert simplifies_to_zero(S.phi_from_h_tilde_sq(p - 1) - SIGMA**p)
    g = sp.Symbol("g", positive=True)  # h ↔ φ through h = g h̃
    assert simplifies_to_zero(S.phi_from_h(S.h_from_phi(SIGMA**3, g), g) - SIGMA**3)


# --- 2. variation of constants (Itô) -------------------------------------------------------------
@pytest.mark.parametrize("phi", PHIS)
def test_ito_verification_ve_and_vp(phi):
    assert S.ve_variation_of_constants(phi).failures() == []
    assert S.vp_variation_of_constants(phi).failures() == []


def test_ito_check_can_fail():
    """The wrong integrating factor (x/σ for φ = σ², the ODE's) leaves a linear drift."""
    sde = ve_er_sde_sigma_time("sde")
    Y = x / SIGMA
    drift, _ = ito(Y, -sp.diff(Y, SIGMA), -sde["drift"], sde["diffusion2"])
    assert not simplifies_to_zero(sp.diff(drift, x))
    assert not simplifies_to_zero(drift - sp.diff(SIGMA**2, SIGMA) / SIGMA**4 * x_theta)


@pytest.mark.parametrize("phi", NSF_NAMES)
def test_noise_variance_isometry(phi):
    """φ_t² ∫ 2σh̃²/φ² dσ = σ_t² − σ_s² r²: closed form by sympy for the power family, mpmath otherwise."""
    lhs, rhs = S.noise_variance(phi), S.ve_exact_step(phi)["variance"]
    if phi in CLOSED:
        assert not lhs.has(sp.Integral) and simplifies_to_zero(lhs - rhs)
    else:
        for s, t in [(80.0, 30.0), (1.3, 0.9), (0.01, 0.002)]:
            vals = {sigma_s: s, sigma_t: t}
            a, b = mp_evaluate(lhs, vals, 30), mp_evaluate(rhs, vals, 30)
            assert abs(a - b) <= 1e-20 * t * t


# --- 3. Taylor coefficients ----------------------------------------------------------------------
def test_by_parts_forms_agree_for_general_phi():
    assert S.by_parts_derivation(4).failures() == []


@pytest.mark.parametrize("phi", CLOSED)
def test_three_forms_agree_in_closed_form(phi):
    forms = [S.taylor_coefficients(phi, 4, form=f) for f in FORMS]
    for n in range(4):
        assert not any(c[n].has(sp.Integral) for c in forms)
        assert simplifies_to_zero(forms[0][n] - forms[1][n]) and simplifies_to_zero(forms[0][n] - forms[2][n])


def _mp_definition(phi, n, s, t):
    """Independent reference: φ_t ∫ φ'/φ² (σ − σ_s)^n/n! dσ with φ' by mpmath's numerical derivative."""
    f = sp.lambdify(SIGMA, as_phi(phi), modules="mpmath")
    s, t = mp.mpf(s), mp.mpf(t)
    return f(t) * mp.quad(lambda u: mp.diff(f, u) / f(u) ** 2 * (u - s) ** n / mp.factorial(n), [t, s])


@pytest.mark.parametrize("phi", NSF_NAMES)
def test_taylor_coefficients_against_mpmath(phi):
    """Closed forms (power family) and the unevaluated integrals (others), all three forms, C_0…C_3."""
    forms = {f: S.taylor_coefficients(phi, 4, form=f) for f in FORMS}
    for s, t in [(80.0, 20.0), (2.0, 1.7), (0.05, 0.002)]:
        with mp.workdps(30):
            for n in range(4):
                ref = _mp_definition(phi, n, s, t)
                for f, cs in forms.items():
                    val = mp_evaluate(cs[n], {sigma_s: s, sigma_t: t}, 30)
                    assert abs(val - ref) <= 1e-18 * abs(ref), (phi, f, n, s, t)
                assert mp.sign(ref) == (-1) ** n  # sign of C_n is (−1)^n


def test_power_family_psi_forms():
    """ψ closed forms (symbolic p) = sympy's integral of the sign-definite form, and their series in L are
    the cancellation-free series of the float64 code; for p = 1, 3/2, 2, 5/2 they equal the definition's
    closed forms."""
    assert S.power_family_derivation(4).failures() == []
    assert power_series_derivation(6).failures() == []
    for pv in (1, sp.Rational(3, 2), 2, sp.Rational(5, 2)):
        psi_forms = S.power_family_coefficients(4, pv)
        direct = S.taylor_coefficients(SIGMA**pv, 4)
        for a, b in zip(psi_forms, direct):
            b = b.subs(sigma_s, sigma_t * sp.exp(L_sym))
            for Lv in (0.01, 0.7, 3.0):  # generic values, 50 digits (simplification is slow)
                va, vb = (mp_evaluate(e, {L_sym: Lv, sigma_t: 0.375}, 50) for e in (a, b))
                assert abs(va - vb) <= 1e-30 * abs(vb)


def test_vp_taylor_is_alpha_times_ve_in_lambda():
    vp = S.taylor_coefficients_vp("er_sde_2", 3)
    ve = S.taylor_coefficients("er_sde_2", 3)
    sub = {sigma_s: S.lambda_s, sigma_t: S.lambda_t}
    for a, b in zip(vp, ve):
        assert simplifies_to_zero(a - S.alpha_t * b.subs(sub))


# --- 4. prediction errors ------------------------------------------------------------------------
def test_series_leading_terms_general_phi():
    assert S.series_derivation(4).failures() == []
    for k in range(1, 4):
        lead = S.remainder_series(None, k, k + 1)
        assert simplifies_to_zero(lead - S.leading_term(None, k))


@pytest.mark.parametrize("phi", ["ode", "er_sde_1", "er_sde_4", "er_sde_5"])
@pytest.mark.parametrize("n", [0, 1, 2])
def test_series_residual_shrinks_at_predicted_power(phi, n):
    """|C_n(Δ) − series through Δ^m| ∝ Δ^{m+1} (m = n + 2), fitted log-log slope within 0.15."""
    m, s = n + 2, 1.3
    series = sp.lambdify((sigma_s, Delta), S.coefficient_series(phi, n, m), modules="mpmath")
    ts = s - s * 2.0 ** -np.arange(4, 10)
    deltas = s - ts  # exact in float64 (Sterbenz)
    with mp.workdps(50):
        res = [
            abs(S.mp_step_coefficients(phi, s, t, k=n + 1, dps=50)["c"][n] - series(mp.mpf(s), mp.mpf(d)))
            for t, d in zip(ts, deltas)
        ]
    if phi == "ode" and n == 0:  # C_0 = 1 − σ_t/σ_s = Δ/σ_s: the series is exact
        assert max(res) < 1e-45
        return
    assert fit_slope(deltas, [float(r) for r in res]) == pytest.approx(m + 1, abs=0.15)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_remainder_series_against_finite_steps(k):
    """R_k for x_θ(σ) = 1/(1 + σ²) and φ = er_sde_5: exact remainder − its series through Δ^{k+2} ∝ Δ^{k+3}."""
    phi, s = "er_sde_5", 0.8
    xf = 1 / (1 + SIGMA**2)
    order = k + 2
    rs = S.remainder_series(phi, k, order)
    derivs = {x_derivative(n): sp.diff(xf, SIGMA, n).subs(SIGMA, sigma_s) for n in range(order)}
    f_series = sp.lambdify((sigma_s, Delta), rs.subs(derivs), modules="mpmath")
    ph = sp.lambdify(SIGMA, as_phi(phi), modules="mpmath")
    dph = sp.lambdify(SIGMA, sp.diff(as_phi(phi), SIGMA), modules="mpmath")
    taylor = sp.lambdify(
        (SIGMA, sigma_s),
        sum(sp.diff(xf, SIGMA, n).subs(SIGMA, sigma_s) * (SIGMA - sigma_s) ** n / sp.factorial(n) for n in range(k)),
        modules="mpmath",
    )
    xl = sp.lambdify(SIGMA, xf, modules="mpmath")
    deltas = s * 2.0 ** -np.arange(3, 8)
    res = []
    with mp.workdps(50):
        for d in deltas:
            t = mp.mpf(s) - mp.mpf(d)
            exact = ph(t) * mp.quad(lambda u: dph(u) / ph(u) ** 2 * (xl(u) - taylor(u, s)), [t, s])
            res.append(float(abs(exact - f_series(mp.mpf(s), mp.mpf(s) - t))))
    assert fit_slope(deltas, res) == pytest.approx(order + 1, abs=0.2)


def test_ordering_derivations_verify():
    assert S.ordering_derivation().failures() == []
    assert S.power_family_ordering().failures() == []


def test_ordering_for_c3_from_the_symbolic_layer():
    sig = get_sigmas_karras(8, 0.002, 80.0).numpy()
    s, t = sig[:-2], sig[1:-1]
    ode = S.prediction_error_weights("ode", s, t, k=4, dps=20)
    for name in NSF_NAMES[1:]:
        w = S.prediction_error_weights(name, s, t, k=4, dps=20)
        assert np.all(w["C3"] >= ode["C3"] * (1 - 1e-12)) and np.all(w["r"] <= ode["r"] * (1 + 1e-14))


# --- 5. VP ≡ VE ----------------------------------------------------------------------------------
@pytest.mark.parametrize("phi", [None, "ode", "er_sde_2"])
def test_vp_equals_ve(phi):
    assert S.vp_to_ve_derivation(phi).failures() == []
    assert S.vp_update_derivation(phi, 3).failures() == []


# --- 6. LaTeX ------------------------------------------------------------------------------------
def test_every_derivation_renders():
    ds = [
        S.er_sde_derivation(None),
        S.ve_variation_of_constants(None),
        S.vp_variation_of_constants(None),
        S.by_parts_derivation(3),
        S.power_family_derivation(3),
        S.series_derivation(3),
        S.ordering_derivation(),
        S.power_family_ordering(),
        S.vp_to_ve_derivation(None),
        S.vp_update_derivation(None, 3),
        S.divided_difference_derivation(),
    ]
    for d in ds:
        tex = d.latex()
        assert tex.startswith(r"\begin{aligned}") and tex.count("&") >= len(d.steps)
        assert latex_text(d.title) in d._repr_latex_()
    assert r"\geq" in S.ordering_derivation().latex() or ">" in S.ordering_derivation().latex()
    assert "C_{2}" in S.latex_list("C", S.taylor_coefficients("ode", 3))


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="form"):
        S.taylor_coefficients("ode", 2, form="nope")
    with pytest.raises(ValueError, match="k must be"):
        S.taylor_coefficients("ode", 0)
    with pytest.raises(ValueError, match="only depend on sigma"):
        S.taylor_coefficients(SIGMA * sp.Symbol("q"), 2)
    with pytest.raises(ValueError, match="unknown noise scale"):
        S.h_tilde_sq("nope")
    with pytest.raises(ValueError, match="rel must be"):
        S.Derivation("x").add("a", 1, 1, rel="<")
