"""Symbols, the registry NSFs as sympy expressions, and the φ resolver of the symbolic layer.

Every symbolic NSF is an expression in :data:`SIGMA`; a step runs from ``sigma_s`` down to ``sigma_t``
(VP: ``lambda_s`` → ``lambda_t`` with ``alpha_s``, ``alpha_t``; docs/theory.md eqs. (19)–(20));
``Delta = sigma_s − sigma_t`` is the step. ``phi=None`` everywhere means the general case: an undefined
function φ.

:data:`REGISTRY` holds the seven registry NSFs of docs/theory.md eq. (6) (names of the official code). It is
the one definition of them: the numeric registry (``theory/nsf.py``) uses the closed forms generated from
these expressions (:mod:`.codegen`).
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
x_theta_f = sp.Function("x_theta")  # x_θ(σ) along the path, for Taylor expansions

# docs/theory.md eq. (6): name → (φ(σ), description)
REGISTRY: dict[str, tuple[sp.Expr, str]] = {
    "ode": (SIGMA, "probability-flow ODE, h~ = 0"),
    "sde": (SIGMA**2, "reverse SDE, h~ = 1"),
    "er_sde_1": (SIGMA * (sp.exp(-1 / SIGMA) + 10), "nearly ODE"),
    "er_sde_2": (SIGMA ** sp.Rational(3, 2), "h~^2 = 0.5"),
    "er_sde_3": (SIGMA ** sp.Rational(5, 2), "h~^2 = 1.5"),
    "er_sde_4": (
        SIGMA ** sp.Rational(9, 10) * sp.log(1 + 100 * SIGMA ** sp.Rational(3, 2), 10),
        "admissible for sigma < ~1e3",
    ),
    "er_sde_5": (SIGMA * (sp.exp(SIGMA ** sp.Rational(3, 10)) + 10), "official default"),
}
NSF_NAMES: tuple[str, ...] = tuple(REGISTRY)


def registry_expr(name: str) -> sp.Expr:
    """φ(σ) of the registry NSF ``name`` (eq. (6))."""
    if name not in REGISTRY:
        raise ValueError(f"unknown noise scale function {name!r}; known: {', '.join(NSF_NAMES)}")
    return REGISTRY[name][0]


def as_phi(phi=None, var: sp.Symbol = SIGMA) -> sp.Expr:
    """φ as a sympy expression in ``var``: ``None`` → the undefined φ(var); a registry name (``"er_sde_5"``)
    → its expression of eq. (6); an object with a symbolic ``expr`` (a
    :class:`~ersde_theory.theory.nsf.NoiseScaleFunction`) → that expression; an expression in ``sigma``
    → itself (with ``sigma`` renamed to ``var``)."""
    if phi is None:
        return phi_f(var)
    if isinstance(phi, str):
        phi = registry_expr(phi)
    elif not isinstance(phi, sp.Basic) and hasattr(phi, "expr"):
        phi = phi.expr
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
