"""Integration helpers: closed forms where sympy's rule-based integrator finds them, else unevaluated.

``manualintegrate`` is used (fast, deterministic); general ``integrate`` (Risch, Meijer G) can run for
minutes on the official NSFs and is never called on them. Whether φ has closed-form coefficients at all
is decided once per φ by :func:`has_closed_forms` (an antiderivative of 1/φ exists), and cached.
"""

from __future__ import annotations

from functools import cache

import sympy as sp
from sympy.integrals.manualintegrate import manualintegrate

from .symbols import SIGMA


@cache
def antiderivative(expr: sp.Expr, var: sp.Symbol = SIGMA) -> sp.Expr | None:
    """An antiderivative of ``expr`` in ``var`` by sympy's rule-based integrator, or None."""
    if expr.has(sp.core.function.AppliedUndef):
        return None
    res = manualintegrate(sp.expand(expr), var)
    return None if res.has(sp.Integral) else res


@cache
def has_closed_forms(phi: sp.Expr, var: sp.Symbol = SIGMA) -> bool:
    """True when sympy finds ∫ dσ/φ in closed form; then every C_n (a sum of ∫ σ^j/φ) has one too."""
    return antiderivative(1 / phi, var) is not None


def definite(expr: sp.Expr, var: sp.Symbol, lo, hi, phi: sp.Expr | None = None) -> sp.Expr:
    """∫_lo^hi expr d var: closed form when ``phi`` (the NSF the integrand is built from) has closed
    forms and sympy finds the antiderivative; otherwise the unevaluated ``sp.Integral``."""
    if phi is None or has_closed_forms(phi, var):
        F = antiderivative(expr, var)
        if F is not None:
            return F.subs(var, hi) - F.subs(var, lo)
    return sp.Integral(expr, (var, lo, hi))
