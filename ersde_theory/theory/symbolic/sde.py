"""The extended reverse-time (ER) SDE and the noise scale function, symbolically (docs/theory.md §1).

Forward dx = f x dt + g dw; ER SDE for any h ≥ 0 (eq. (2)):

    dx = [ f x − (g² + h²)/2 · ∇log p_t(x) ] dt + h dw̄.

VE: f = 0, g² = d(σ²)/dt, score (x_θ − x)/σ² (eq. (1)). VP: f = α'/α, g² = d(σ²)/dt − 2 f σ², score
(α x_θ − x)/σ². The NSF φ and the relative noise level h̃ = h/g are tied by eq. (4),

    h̃² = σ φ'/φ − 1   ⇔   φ(σ) = σ exp( ∫_{σ_0}^{σ} h̃²(u)/u du )   (φ up to a constant factor),

and φ is admissible when h̃² ≥ 0 ⇔ (φ/σ)' = φ h̃²/σ² ≥ 0 (eq. (5)).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from .latex import Derivation
from .symbols import SIGMA, as_phi, p, t, x, x_theta

sigma_of_t = sp.Function("sigma", positive=True)(t)
alpha_of_t = sp.Function("alpha", positive=True)(t)
h2_f = sp.Function(r"\tilde{h}^{2}", nonnegative=True)  # a general h̃²(σ)


def h_tilde_sq(phi=None, var: sp.Symbol = SIGMA) -> sp.Expr:
    """h̃² = σ φ'(σ)/φ(σ) − 1 (eq. (4)), in ``var``."""
    ph = as_phi(phi, var)
    return sp.simplify(var * sp.diff(ph, var) / ph - 1)


def ell(phi=None, var: sp.Symbol = SIGMA) -> sp.Expr:
    """ℓ = log(φ(σ)/σ) with the logarithm expanded (eq. (9): dℓ/dσ = h̃²/σ, so Δℓ = ∫ h̃² dσ/σ ≥ 0)."""
    return sp.expand_log(sp.log(as_phi(phi, var) / var), force=True)


def phi_from_h_tilde_sq(h2, var: sp.Symbol = SIGMA, ref=1, evaluate: bool = True) -> sp.Expr:
    """φ(σ) = σ exp(∫_ref^σ h̃²(u)/u du) (eq. (4) inverted; normalised by φ(ref) = ref). ``h2`` is an expression in
    ``var`` (or a constant). With ``evaluate=False`` (or when sympy finds no antiderivative) the integral
    stays unevaluated; it still differentiates exactly (Leibniz rule)."""
    u = sp.Dummy("u", positive=True)
    integral = sp.Integral(sp.sympify(h2).subs(var, u) / u, (u, ref, var))
    if not evaluate:
        return var * sp.exp(integral)
    return sp.simplify(var * sp.exp(integral.doit()))


def h_from_phi(phi, g, var: sp.Symbol = SIGMA) -> sp.Expr:
    """h = g · sqrt(h̃²): the ER-SDE diffusion for diffusion coefficient g of the forward SDE."""
    return g * sp.sqrt(h_tilde_sq(phi, var))


def phi_from_h(h, g, var: sp.Symbol = SIGMA, ref=1) -> sp.Expr:
    """φ from the ER-SDE diffusion h and the forward g (both expressions in ``var``): h̃² = h²/g²."""
    return phi_from_h_tilde_sq(sp.simplify(h**2 / g**2), var, ref)


def er_sde(f, g2, h2, score) -> tuple[sp.Expr, sp.Expr]:
    """(drift, diffusion²) of the ER SDE, eq. (2), in forward time t (the reverse direction has dt < 0)."""
    return f * x - (g2 + h2) / 2 * score, h2


def ve_er_sde(phi=None) -> dict:
    """VE ER SDE in t for a noise level σ(t): f = 0, g² = (σ²)', h² = h̃²(σ) g², score (x_θ − x)/σ²."""
    g2 = sp.diff(sigma_of_t**2, t)
    h2 = h_tilde_sq(phi, SIGMA).subs(SIGMA, sigma_of_t) * g2
    drift, diff2 = er_sde(0, g2, h2, (x_theta - x) / sigma_of_t**2)
    return dict(f=sp.Integer(0), g2=g2, h2=h2, drift=drift, diffusion2=diff2)


def vp_er_sde(phi=None) -> dict:
    """VP ER SDE in t for x_t = α x_0 + σ ε: f = α'/α, g² = (σ²)' − 2 f σ², h² = h̃²(λ) g² with λ = σ/α,
    score (α x_θ − x)/σ²."""
    f = sp.diff(alpha_of_t, t) / alpha_of_t
    g2 = sp.diff(sigma_of_t**2, t) - 2 * f * sigma_of_t**2
    h2 = h_tilde_sq(phi, SIGMA).subs(SIGMA, sigma_of_t / alpha_of_t) * g2
    drift, diff2 = er_sde(f, g2, h2, (alpha_of_t * x_theta - x) / sigma_of_t**2)
    return dict(f=f, g2=g2, h2=h2, drift=drift, diffusion2=diff2, lam=sigma_of_t / alpha_of_t)


def ve_er_sde_sigma_time(phi=None, var: sp.Symbol = SIGMA) -> dict:
    """The VE ER SDE with σ as time, eq. (3): dx = (1 + h̃²)(x − x_θ)/σ dσ + sqrt(2σ h̃²) dW̄_σ."""
    h2 = h_tilde_sq(phi, var)
    return dict(drift=(1 + h2) * (x - x_theta) / var, diffusion2=2 * var * h2, h2=h2)


@cache
def er_sde_derivation(phi=None) -> Derivation:
    """The VE ER SDE in σ-time (eq. (3)), h ↔ φ both ways (eq. (4)), admissibility (eq. (5)); all verified
    identities."""
    ph = as_phi(phi)
    h2 = h_tilde_sq(phi)
    ve, sig = ve_er_sde(phi), ve_er_sde_sigma_time(phi)
    dsig = sp.diff(sigma_of_t, t)
    d = Derivation("The ER SDE and the noise scale function")
    d.add("NSF", sp.Symbol(r"\tilde h^2"), h2, "definition (NSF)", check=False)
    d.add(
        "sigma-time drift",
        ve["drift"],
        sig["drift"].subs(SIGMA, sigma_of_t) * dsig,
        "VE drift in t = drift in sigma times dsigma/dt",
    )
    d.add(
        "sigma-time diffusion",
        ve["diffusion2"],
        sig["diffusion2"].subs(SIGMA, sigma_of_t) * dsig,
        "h^2 dt = 2 sigma h~^2 dsigma",
    )
    gen = h2_f(SIGMA)
    phi_hat = phi_from_h_tilde_sq(gen, evaluate=False)  # σ φ'/φ − 1 = σ (log φ)' − 1
    d.add("phi from h~^2, then h~^2", SIGMA * sp.Derivative(sp.log(phi_hat), SIGMA) - 1, gen, "any h~^2(sigma)")
    d.add(
        "h~^2 from phi, then phi",
        sp.Derivative(sp.log(ph / phi_from_h_tilde_sq(h2, evaluate=False)), SIGMA),
        0,
        "phi recovered up to a constant factor",
    )
    d.add("admissibility", sp.Derivative(ph / SIGMA, SIGMA), ph * h2 / SIGMA**2, "(phi/sigma)' >= 0 iff h~^2 >= 0")
    d.results.update(h_tilde_sq=h2, drift_sigma=sig["drift"], diffusion2_sigma=sig["diffusion2"])
    return d


def power_family_admissible_set() -> sp.Set:
    """The exponents p > 0 for which φ = σ^p is admissible (eq. (5); sympy solves h̃² = p − 1 ≥ 0): [1, ∞)."""
    cond = h_tilde_sq(SIGMA**p)
    return sp.solveset(sp.Ge(cond, 0), p, sp.Interval.open(0, sp.oo))


def power_exponent(phi) -> float | None:
    """p when φ = c σ^p with a positive constant c (then h̃² = p − 1 and the coefficients have the closed
    forms of eq. (15)), else None."""
    coeff, rest = as_phi(phi).as_coeff_Mul()
    if not coeff.is_positive:
        return None
    if rest == SIGMA:
        return 1.0
    if rest.is_Pow and rest.base == SIGMA and rest.exp.is_number:
        return float(rest.exp)
    return None
