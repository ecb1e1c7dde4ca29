"""Taylor (approximate) ER-SDE solutions of any order (docs/theory.md §3, eqs. (12)–(16)).

Freezing x_θ to its Taylor polynomial at σ_s in the exact solution (eq. (7), solution.py) gives

    x_t ≈ r x_s + Σ_{n<k} C_n x_θ^(n)(σ_s) + sqrt(σ_t² − σ_s² r²) z,
    C_n = φ_t ∫_{σ_t}^{σ_s} φ'(σ)/φ(σ)² (σ − σ_s)^n/n! dσ                                      (definition)
        = (σ_t − σ_s)^n/n! + φ_t ∫_{σ_t}^{σ_s} (σ − σ_s)^{n−1}/((n−1)! φ) dσ,   n ≥ 1          (by parts; official code)
        = −∫_{σ_t}^{σ_s} (1 − G(σ)) (σ − σ_s)^{n−1}/(n−1)! dσ,  G = φ_t/φ(σ)               (sign-definite; our numerics)

with C_0 = 1 − r. VP: the same in λ = σ/α, times α_t. For φ = σ^p, with L = log(σ_s/σ_t) and
ψ(c, L) = ∫_0^L e^{cv} dv, the sign-definite form is a finite sum of ψ's (the closed forms of
``coefficients/ersde.py``).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from .calculus import definite, has_closed_forms
from .latex import Derivation
from .symbols import LAMBDA, SIGMA, alpha_t, as_phi, lambda_s, lambda_t, p, phi_f, sigma_s, sigma_t

FORMS = ("definition", "by_parts", "sign_definite")
L_sym = sp.Symbol("L", positive=True)  # log(σ_s/σ_t)
_v = sp.Symbol("v", nonnegative=True)  # log(σ/σ_t)


def _integrand(ph, n: int, form: str, var, s, t):
    """The integrand of C_n over [t, s] in the given form (None for C_0 in the non-definition forms)."""
    pt = ph.subs(var, t)
    if form == "definition":
        return pt * sp.diff(ph, var) / ph**2 * (var - s) ** n / sp.factorial(n)
    if n == 0:
        return None
    if form == "by_parts":
        return pt * (var - s) ** (n - 1) / (sp.factorial(n - 1) * ph)
    return -(1 - pt / ph) * (var - s) ** (n - 1) / sp.factorial(n - 1)


def _coefficient(ph, n, form, var, s, t, closed):
    integrand = _integrand(ph, n, form, var, s, t)
    if integrand is None:  # C_0 = 1 − r in the by-parts forms
        return 1 - ph.subs(var, t) / ph.subs(var, s)
    closed = closed and has_closed_forms(ph, var)
    pt = ph.subs(var, t)
    if form == "sign_definite":
        return definite(integrand, var, t, s, ph) if closed else sp.Integral(integrand, (var, t, s))
    head = (t - s) ** n / sp.factorial(n) if form == "by_parts" else 0
    inner = integrand / pt  # φ_t stays outside the integral
    return head + pt * (definite(sp.simplify(inner), var, t, s, ph) if closed else sp.Integral(inner, (var, t, s)))


@cache
def _taylor(phi_expr, k, form, var, s, t, closed):
    return tuple(_coefficient(phi_expr, n, form, var, s, t, closed) for n in range(k))


def taylor_coefficients(
    phi=None,
    k: int = 3,
    *,
    form: str = "definition",
    closed_form: bool = True,
    var: sp.Symbol = SIGMA,
    s: sp.Symbol = sigma_s,
    t: sp.Symbol = sigma_t,
) -> list:
    """[C_0, …, C_{k−1}] of eq. (12) for the step ``s`` → ``t`` (default σ_s → σ_t) as sympy expressions.

    ``phi``: None (general φ, unevaluated integrals), a registry name or an expression in sigma.
    ``form``: "definition" (φ_t ∫ φ'/φ² (σ−σ_s)^n/n!), "by_parts" (the official code's form) or
    "sign_definite" (−∫ (1 − G)(σ−σ_s)^{n−1}/(n−1)!; eqs. (13), (14)). Closed forms where sympy finds them (φ = σ, σ^p),
    otherwise ``sp.Integral`` objects that evaluate numerically (``.evalf()``, or :mod:`.numeric`).
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if not (isinstance(k, int) and k >= 1):
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    return list(_taylor(as_phi(phi, var), k, form, var, s, t, closed_form and phi is not None))


def taylor_coefficients_vp(phi=None, k: int = 3, *, form: str = "definition", closed_form: bool = True) -> list:
    """VP Taylor weights (eq. (20)): α_t C_n(λ_s, λ_t), the VE coefficients in λ = σ/α times α_t (x_θ expanded
    in λ)."""
    cs = taylor_coefficients(phi, k, form=form, closed_form=closed_form, var=LAMBDA, s=lambda_s, t=lambda_t)
    return [alpha_t * c for c in cs]


def _by_parts_step(n: int) -> tuple[sp.Expr, sp.Expr]:
    """(definition integrand, d/dσ[boundary] + by-parts integrand) for the general φ: the integration by
    parts of C_n as an identity between integrands (boundary B = −φ_t (σ−σ_s)^n/(n! φ))."""
    ph = phi_f(SIGMA)
    pt = ph.subs(SIGMA, sigma_t)
    lhs = _integrand(ph, n, "definition", SIGMA, sigma_s, sigma_t)
    boundary = -pt * (SIGMA - sigma_s) ** n / (sp.factorial(n) * ph)
    return lhs, sp.diff(boundary, SIGMA) + _integrand(ph, n, "by_parts", SIGMA, sigma_s, sigma_t)


@cache
def by_parts_derivation(k: int = 3) -> Derivation:
    """The three forms of C_n (eqs. (12)–(14)) agree, for a general φ: integrand identities plus the boundary
    terms."""
    ph = phi_f(SIGMA)
    pt = ph.subs(SIGMA, sigma_t)
    d = Derivation("Taylor coefficients: definition = by parts (official) = sign-definite")
    G = pt / ph
    for n in range(1, k):
        lhs, rhs = _by_parts_step(n)
        d.add(f"by parts n={n}", lhs, rhs, "phi' / phi^2 = -(1/phi)'")
        boundary = -pt * (SIGMA - sigma_s) ** n / (sp.factorial(n) * ph)
        d.add(
            f"boundary n={n}",
            boundary.subs(SIGMA, sigma_s) - boundary.subs(SIGMA, sigma_t),
            (sigma_t - sigma_s) ** n / sp.factorial(n),
            "the (sigma_t - sigma_s)^n/n! head",
        )
        sd = _integrand(ph, n, "sign_definite", SIGMA, sigma_s, sigma_t)
        head = sp.diff(-((SIGMA - sigma_s) ** n) / sp.factorial(n), SIGMA)  # ∫ of it gives the head
        d.add(
            f"sign-definite n={n}",
            _integrand(ph, n, "by_parts", SIGMA, sigma_s, sigma_t) + head,
            sd,
            "head written as an integral, combined with 1 - G",
        )
        d.add(
            f"head antiderivative n={n}",
            (-((SIGMA - sigma_s) ** n) / sp.factorial(n)).subs(SIGMA, sigma_s)
            - (-((SIGMA - sigma_s) ** n) / sp.factorial(n)).subs(SIGMA, sigma_t),
            (sigma_t - sigma_s) ** n / sp.factorial(n),
        )
    d.add("G at sigma_t", G.subs(SIGMA, sigma_t), 1)
    return d


def psi(c, L=L_sym) -> sp.Expr:
    """ψ(c, L) = ∫_0^L e^{cv} dv = (e^{cL} − 1)/c (L for c = 0)."""
    return L if c == 0 else (sp.exp(c * L) - 1) / c


@cache
def power_family_coefficients(k: int = 3, p_value=None) -> tuple:
    """C_n for φ = σ^p (eq. (15)) in σ_t, L = log(σ_s/σ_t) and ψ: with σ = σ_t e^v the sign-definite form is
    −σ_t^n/(n−1)! Σ_j binom(n−1, j) (−e^L)^{n−1−j} [ψ(j+1, L) − ψ(j+1−p, L)]; C_0 = 1 − e^{−pL}.

    ``p_value=None`` keeps p symbolic (valid for p ∉ {1, …, k−1}; those are the limits); a number gives
    the exact form for that p (ψ(0, L) = L where it occurs)."""
    pp = p if p_value is None else sp.nsimplify(p_value)
    out = [1 - sp.exp(-pp * L_sym)]
    for n in range(1, k):
        terms = [
            sp.binomial(n - 1, j) * (-sp.exp(L_sym)) ** (n - 1 - j) * (psi(j + 1) - psi(j + 1 - pp)) for j in range(n)
        ]
        out.append(-(sigma_t**n) / sp.factorial(n - 1) * sp.Add(*terms))
    return tuple(out)


def _v_integrand(n: int) -> sp.Expr:
    """The sign-definite integrand of C_n for φ = σ^p after σ = σ_t e^v, σ_s = σ_t e^L (dσ = σ_t e^v dv)."""
    sub = {SIGMA: sigma_t * sp.exp(_v), sigma_s: sigma_t * sp.exp(L_sym)}
    integrand = _integrand(SIGMA**p, n, "sign_definite", SIGMA, sigma_s, sigma_t)
    return sp.expand(sp.powsimp(integrand.subs(sub) * sigma_t * sp.exp(_v), force=True))


@cache
def power_family_derivation(k: int = 3) -> Derivation:
    """The ψ closed forms for φ = σ^p (symbolic p) are the sign-definite integrals: sympy integrates the
    v-integrand over [0, L] (generic p) and the difference to the ψ form simplifies to zero."""
    d = Derivation("Power family phi = sigma^p: closed forms through psi")
    cs = power_family_coefficients(k)
    d.add("C_0", cs[0], 1 - (sp.exp(-L_sym)) ** p, "r = (sigma_t/sigma_s)^p")
    for n in range(1, k):
        integral = sp.integrate(_v_integrand(n), (_v, 0, L_sym), conds="none")
        d.add(f"C_{n}", sp.Integral(_v_integrand(n), (_v, 0, L_sym)), cs[n], check=False)
        d.add(f"C_{n} integrated", integral, cs[n], "sympy integral = psi form (generic p)")
    return d


def power_family_series(order: int = 6) -> tuple:
    """The cancellation-free series of the ψ forms (eq. (15)) used by the float64 code for L < 1:
    −C_1/σ_t = Σ_{k≥2} L^k/k! (1 − (1−p)^{k−1}),  C_2/σ_t² = Σ_{k≥3} L^k/k! Σ_{j=1}^{k−2} (2^j − (2−p)^j),
    truncated below L^order."""
    k = range(order)
    s1 = sum(L_sym**n / sp.factorial(n) * (1 - (1 - p) ** (n - 1)) for n in k if n >= 2)
    s2 = sum(L_sym**n / sp.factorial(n) * sum(2**j - (2 - p) ** j for j in range(1, n - 1)) for n in k if n >= 3)
    return s1, s2


@cache
def power_series_derivation(order: int = 6) -> Derivation:
    """The series of :func:`power_family_series` are the Taylor series in L of the ψ forms (symbolic p)."""
    cs = power_family_coefficients(3)
    s1, s2 = power_family_series(order)
    d = Derivation(f"Power family: cancellation-free series in L (through L^{order - 1})")
    for label, expr, ser in (("-C_1/sigma_t", -cs[1] / sigma_t, s1), ("C_2/sigma_t^2", cs[2] / sigma_t**2, s2)):
        d.add(label, sp.series(sp.simplify(expr), L_sym, 0, order).removeO(), ser)
    return d
