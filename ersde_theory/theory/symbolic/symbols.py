"""Symbols and the φ resolver shared by the symbolic layer.

Every symbolic NSF is an expression in :data:`SIGMA`; a step runs from ``sigma_s`` down to ``sigma_t``
(VP: ``lambda_s`` → ``lambda_t`` with ``alpha_s``, ``alpha_t``); ``Delta = sigma_s − sigma_t`` is the step.
``phi=None`` everywhere means the general case: an undefined function φ.
"""

from __future__ import annotations

import sympy as sp

SIGMA = sp.Symbol("sigma", positive=True)
sigma_s, sigma_t = sp.symbols("sigma_s sigma_t", positive=True)
lambda_s, lambda_t = sp.symbols("lambda_s lambda_t", positive=True)
alpha_s, alpha_t = sp.symbols("alpha_s alpha_t", positive=True)
Delta = sp.Symbol("Delta", positive=True)
LAMBDA = sp.Symbol("lambda", positive=True)
t = sp.Symbol("t", real=True)
x = sp.Symbol("x", real=True)
x_theta = sp.Symbol("x_theta", real=True)  # the data prediction x_θ, frozen where it is a symbol
p = sp.Symbol("p", positive=True)  # exponent of the power family φ = σ^p

phi_f = sp.Function("phi", positive=True)  # the general NSF φ
G_f = sp.Function("G", positive=True)  # G(σ) = φ_t/φ(σ)
x_theta_f = sp.Function("x_theta")  # x_θ(σ) along the path, for Taylor expansions


def as_phi(phi=None, var: sp.Symbol = SIGMA) -> sp.Expr:
    """φ as a sympy expression in ``var``: ``None`` → the undefined φ(var); a registry name (``"er_sde_5"``)
    or a :class:`~ersde_theory.theory.nsf.NoiseScaleFunction` → its expression; an expression in ``sigma``
    → itself (with ``sigma`` renamed to ``var``)."""
    if phi is None:
        return phi_f(var)
    if isinstance(phi, str) or hasattr(phi, "expr"):
        from ..nsf import resolve_nsf  # lazy: nsf.py imports this package

        phi = resolve_nsf(phi).expr
        if phi is None:
            raise ValueError("the symbolic layer needs a symbolic NSF (a name or a sympy expression)")
    expr = sp.sympify(phi)
    subs = {s: var for s in expr.free_symbols if s.name == "sigma"}
    expr = expr.subs(subs)
    extra = expr.free_symbols - {var, p}
    if extra:
        raise ValueError(
            f"phi may only depend on sigma (and the power-family exponent p), found {sorted(map(str, extra))}"
        )
    return expr


def at(expr: sp.Expr, var: sp.Symbol, value) -> sp.Expr:
    """expr with ``var`` replaced by ``value`` (also inside undefined functions)."""
    return expr.subs(var, value)
