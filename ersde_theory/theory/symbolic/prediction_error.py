"""One-step prediction errors, their series in Δ, the ordering result and the gain r (docs/theory.md §4,
eqs. (17)–(18)).

Remainder of the k-th order Taylor solution (x_θ(σ) replaced by its Taylor polynomial at σ_s):

    R_k = φ_t ∫_{σ_t}^{σ_s} φ'/φ² [x_θ(σ) − Σ_{n<k} x_θ^(n)(σ_s)(σ − σ_s)^n/n!] dσ = Σ_{n≥k} C_n x_θ^(n)(σ_s),

led by C_k x_θ^(k) with C_n = (−1)^n (φ'_s/φ_s) Δ^{n+1}/(n+1)! + O(Δ^{n+2}), Δ = σ_s − σ_t.

Ordering: with G(σ) = φ_t/φ(σ), C_n = −∫ (1 − G)(σ − σ_s)^{n−1}/(n−1)! dσ (n ≥ 1) and admissibility gives
σ G(σ)/σ_t = exp(−∫_{σ_t}^{σ} h̃²(u)/u du) ≤ 1, i.e. 1 − G ≥ 1 − σ_t/σ = 1 − G_ODE, so
|C_n^φ| ≥ |C_n^ODE| for every n ≥ 1, and the gain r = G(σ_s) ≤ σ_t/σ_s = r_ODE.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp

from .latex import Derivation
from .numeric import mp_step_coefficients
from .sde import h2_f, h_tilde_sq
from .symbols import SIGMA, Delta, as_phi, p, phi_f, sigma_s, sigma_t, x_theta_f
from .taylor import _v


def gain(phi=None) -> sp.Expr:
    """The gain r = φ_t/φ_s (eq. (7)) on the state (and on every past error) of one step σ_s → σ_t."""
    ph = as_phi(phi)
    return ph.subs(SIGMA, sigma_t) / ph.subs(SIGMA, sigma_s)


def x_derivative(n: int) -> sp.Expr:
    """x_θ^(n)(σ_s) as a sympy object."""
    f = x_theta_f(sigma_s)
    return f if n == 0 else sp.Derivative(f, (sigma_s, n))


@cache
def _general_series(n: int, order: int) -> sp.Expr:
    """C_n through Δ^order for the general φ, in the Taylor data D_j = φ^(j)(σ_s) (plain symbols)."""
    D = sp.symbols(f"D0:{order + 2}")
    u = sp.Symbol("u", positive=True)
    m = order - n
    P = sum(D[j] * (-u) ** j / sp.factorial(j) for j in range(m + 1))  # φ(σ_s − u)
    Q = sum(D[j + 1] * (-u) ** j / sp.factorial(j) for j in range(m))  # φ'(σ_s − u)
    integrand = sp.series(Q / P**2, u, 0, max(order - n, 1)).removeO() * (-u) ** n / sp.factorial(n)
    inner = sp.integrate(sp.expand(integrand), (u, 0, Delta))
    series = sp.expand(P.subs(u, Delta) * inner)
    return sum(series.coeff(Delta, j) * Delta**j for j in range(order + 1)), D


def coefficient_series(phi=None, n: int = 1, order: int = 4) -> sp.Expr:
    """C_n(σ_s, σ_s − Δ) of eq. (12) expanded in Δ through Δ^order (the first term is Δ^{n+1}); coefficients are
    functions of σ_s (for the general φ: of φ(σ_s), φ'(σ_s), …)."""
    if order < n + 1:
        return sp.Integer(0)
    series, D = _general_series(n, order)
    ph = as_phi(phi)
    derivs = {D[j]: sp.diff(ph, SIGMA, j).subs(SIGMA, sigma_s) for j in range(len(D))}
    return series.subs(derivs)


def remainder_series(phi=None, k: int = 1, order: int = 4) -> sp.Expr:
    """R_k of eq. (17) through Δ^order: Σ_{n=k}^{order−1} (series of C_n) x_θ^(n)(σ_s)."""
    return sp.Add(*[coefficient_series(phi, n, order) * x_derivative(n) for n in range(k, order)])


def leading_term(phi=None, k: int = 1) -> sp.Expr:
    """The leading term of R_k (eq. (17)): (−1)^k (φ'_s/φ_s) Δ^{k+1}/(k+1)! x_θ^(k)(σ_s)."""
    ph = as_phi(phi)
    a = (sp.diff(ph, SIGMA) / ph).subs(SIGMA, sigma_s)
    return (-1) ** k * a * Delta ** (k + 1) / sp.factorial(k + 1) * x_derivative(k)


@cache
def series_derivation(order: int = 4) -> Derivation:
    """The leading terms: C_n = (−1)^n (φ'/φ)(σ_s) Δ^{n+1}/(n+1)! + O(Δ^{n+2}) for the general φ; with
    φ'/φ = (1 + h̃²)/σ the ODE has the smallest leading term."""
    d = Derivation(f"Series of C_n in Delta (through Delta^{order})")
    ph = phi_f(sigma_s)
    for n in range(order):
        s = coefficient_series(None, n, order)
        lead = (-1) ** n * sp.diff(ph, sigma_s) / ph * Delta ** (n + 1) / sp.factorial(n + 1)
        d.add(f"C_{n} lead", sp.expand(s).coeff(Delta, n + 1) * Delta ** (n + 1), lead)
        d.add(f"C_{n} series", sp.Symbol(f"C_{n}"), s, check=False)
    return d


@cache
def ordering_derivation() -> Derivation:
    """Eq. (18): |C_n^φ| ≥ |C_n^ODE| (n ≥ 1) and r^φ ≤ r^ODE for every admissible φ (general φ, through G)."""
    ph = phi_f(SIGMA)
    pt = ph.subs(SIGMA, sigma_t)
    G = pt / ph
    n = sp.Symbol("n", integer=True, positive=True)
    poly = (SIGMA - sigma_s) ** n / sp.factorial(n)
    I = sp.Symbol("I", nonnegative=True)  # ∫_{σ_t}^{σ} h̃²(u)/u du ≥ 0 for admissible φ
    w = sp.Symbol("w", nonnegative=True)
    u = sp.Dummy("u", positive=True)
    d = Derivation("Ordering: ODE minimises every |C_n|; SDE-like phi has the smaller gain r")
    d.add("kernel = -G'", pt * sp.diff(ph, SIGMA) / ph**2, -sp.Derivative(G, SIGMA))
    d.add(
        "by parts",
        -sp.Derivative(G, SIGMA) * poly,
        sp.Derivative((1 - G) * poly, SIGMA) - (1 - G) * (SIGMA - sigma_s) ** (n - 1) / sp.factorial(n - 1),
    )
    d.add("boundary at sigma_t", sp.Subs((1 - G) * poly, SIGMA, sigma_t), 0, "G(sigma_t) = 1")
    d.add("boundary at sigma_s", sp.Subs((1 - G) * poly, SIGMA, sigma_s), 0, "(sigma_s - sigma_s)^n = 0")
    # admissibility in integrated form: d/dσ log(σ G/σ_t) = −h̃²/σ, zero at σ_t
    h2 = h_tilde_sq(None)
    d.add("log(sigma G/sigma_t)'", sp.Derivative(sp.log(SIGMA * G / sigma_t), SIGMA), -h2 / SIGMA)
    d.add("log(sigma G/sigma_t) at sigma_t", sp.Subs(sp.log(SIGMA * G / sigma_t), SIGMA, sigma_t), 0)
    d.add(
        "integrated",
        sp.Derivative(sp.Integral(-h2_f(u) / u, (u, sigma_t, SIGMA)), SIGMA),
        -h2_f(SIGMA) / SIGMA,
        "so log(sigma G/sigma_t) = -I(sigma)",
    )
    gap = (1 - sigma_t / SIGMA * sp.exp(-I)) - (1 - sigma_t / SIGMA)
    d.add("1 - G minus 1 - G_ODE", gap, sigma_t / SIGMA * (1 - sp.exp(-I)))
    d.add("1 - exp(-I) at I = 0", sp.Subs(1 - sp.exp(-w), w, 0), 0)
    d.add("(1 - exp(-I))' > 0", sp.Derivative(1 - sp.exp(-w), w), 0, "so 1 - exp(-I) >= 0 for I >= 0", rel=">")
    d.add("sigma_t/sigma > 0", sigma_t / SIGMA, 0, rel=">")
    d.add(
        "|sigma - sigma_s|^(n-1)/(n-1)! >= 0",
        (sigma_s - SIGMA) ** (n - 1) / sp.factorial(n - 1),
        0,
        "on [sigma_t, sigma_s]",
        check=False,
        rel=">=",
    )
    d.add(
        "gain",
        sigma_t / sigma_s - sigma_t / sigma_s * sp.exp(-I),
        sigma_t / sigma_s * (1 - sp.exp(-I)),
        "r_ODE - r = (sigma_t/sigma_s)(1 - exp(-I(sigma_s))) >= 0",
    )
    return d


@cache
def power_family_ordering() -> Derivation:
    """Eq. (18) for φ = σ^p (v = log(σ/σ_t) ≥ 0): 1 − G = 1 − e^{−pv} increases with p, so |C_n| increases and
    r = e^{−pL} decreases with p; p = 1 (ODE) is the minimum over the admissible p ≥ 1."""
    L = sp.Symbol("L", positive=True)
    d = Derivation("Ordering in the power family phi = sigma^p")
    d.add(
        "1 - G",
        1 - (sigma_t / SIGMA) ** p,
        (1 - sp.exp(-p * _v)).subs(_v, sp.log(SIGMA / sigma_t)),
        "v = log(sigma/sigma_t)",
    )
    d.add("d(1 - G)/dp >= 0", sp.Derivative(1 - sp.exp(-p * _v), p), 0, rel=">=")
    d.add("dr/dp <= 0", -sp.Derivative(sp.exp(-p * L), p), 0, "r = exp(-p L)", rel=">")
    return d


def prediction_error_weights(phi, s, t, k: int = 3, dps: int = 30) -> dict:
    """Numbers to evaluate and plot: the gain r and |C_1| … |C_{k−1}| (the one-step prediction-error
    weights) for arrays of steps s → t, from the symbolic expressions (mpmath, see :mod:`.numeric`)."""
    vals = [mp_step_coefficients(phi, a, b, k, dps) for a, b in zip(np.atleast_1d(s), np.atleast_1d(t))]
    out = dict(r=np.array([float(v["r"]) for v in vals]))
    for n in range(1, k):
        out[f"C{n}"] = np.array([float(abs(v["c"][n])) for v in vals])
    return out
