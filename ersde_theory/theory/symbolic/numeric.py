"""Numbers from the symbolic expressions: lambdified to mpmath (high precision, for references and tests).

Each step coefficient is evaluated from its derivation: r and the variance (eqs. (7)–(8)) from
:func:`solution.ve_exact_step`, C_n (any n) by mpmath quadrature of the lambdified sign-definite integrand
(eq. (14)) of :func:`taylor.taylor_coefficients` (no cancellation), C_0 = 1 − r. Independent of the float64
code path in ``coefficients/ersde.py``.
"""

from __future__ import annotations

from functools import cache

import mpmath as mp
import numpy as np
import sympy as sp

from .solution import ve_exact_step
from .symbols import SIGMA, as_phi, sigma_s, sigma_t
from .taylor import taylor_coefficients


@cache
def _step_functions(phi_expr: sp.Expr, k: int):
    """mpmath callables (r, variance, [integrand_n(σ, σ_s, σ_t) for n = 1…k−1]) for one φ."""
    step = ve_exact_step(phi_expr)
    args = (sigma_s, sigma_t)
    r = sp.lambdify(args, step["gain"], modules="mpmath")
    var = sp.lambdify(args, step["variance"], modules="mpmath")
    cs = taylor_coefficients(phi_expr, k, form="sign_definite", closed_form=False)
    integrands = [sp.lambdify((SIGMA, sigma_s, sigma_t), c.function, modules="mpmath") for c in cs[1:]]
    return r, var, integrands


def mp_step_coefficients(phi, s, t, k: int = 3, dps: int = 30) -> dict:
    """r, std, [C_0 … C_{k−1}] of one VE step σ_s → σ_t > 0 at ``dps`` digits (mpmath numbers)."""
    r_f, var_f, integrands = _step_functions(as_phi(phi), k)
    with mp.workdps(dps):
        s_, t_ = mp.mpf(s), mp.mpf(t)
        r = r_f(s_, t_)
        c = [1 - r] + [mp.quad(lambda u, f=f: f(u, s_, t_), [t_, s_]) for f in integrands]
        var = var_f(s_, t_)
        return dict(r=r, std=mp.sqrt(max(var, 0)), c=c)


def step_coefficients_array(phi, sigmas, k: int = 3, dps: int = 30, steps=None) -> dict:
    """Float64 arrays r, std, c (k × steps) from :func:`mp_step_coefficients` for the steps of a decreasing
    schedule (``steps``: indices to evaluate; default all steps with σ_{i+1} > 0)."""
    sig = np.asarray(sigmas, dtype=np.float64)
    idx = [i for i in range(sig.size - 1) if sig[i + 1] > 0] if steps is None else list(steps)
    vals = [mp_step_coefficients(phi, sig[i], sig[i + 1], k, dps) for i in idx]
    return dict(
        steps=np.array(idx, dtype=int),
        r=np.array([float(v["r"]) for v in vals]),
        std=np.array([float(v["std"]) for v in vals]),
        c=np.array([[float(x) for x in v["c"]] for v in vals]).T.reshape(k, len(idx)),
    )


def mp_evaluate(expr: sp.Expr, values: dict, dps: int = 30):
    """Evaluate a symbolic expression (closed form or with unevaluated integrals, which become mpmath
    ``quad`` calls) at ``values`` = {symbol: number}, with ``dps`` digits."""
    syms = tuple(values)
    f = sp.lambdify(syms, expr, modules="mpmath")
    with mp.workdps(dps):
        return f(*(mp.mpf(values[s]) for s in syms))


@cache
def _flow_integrands(phi_expr: sp.Expr, k: int):
    """mpmath callables of the sign-definite integrands of c_1 … c_{k−1} of the flow expansion (eq. (55)), in
    (s, s_s, λ_t)."""
    from .flow import S_FLOW, _sign_definite_integrand, s_s
    from .symbols import lambda_t

    return [
        sp.lambdify((S_FLOW, s_s, lambda_t), _sign_definite_integrand(phi_expr, n), modules="mpmath")
        for n in range(1, k)
    ]


def mp_flow_coefficients(phi, lam_s, lam_t, k: int = 3, dps: int = 30) -> list:
    """[c_1 … c_{k−1}] of the flow expansion (eq. (55)) for one step λ_s → λ_t > 0 (λ_s = inf: from s = 1) at
    ``dps`` digits, by mpmath quadrature in s of the lambdified sign-definite integrand (independent of the float64
    Gauss–Legendre code in ``coefficients/ersde.py``)."""
    from .symbols import LAMBDA

    fs = _flow_integrands(as_phi(phi, LAMBDA).subs(LAMBDA, SIGMA), k)
    with mp.workdps(dps):
        lt = mp.mpf(lam_t)
        ss = mp.mpf(1) if mp.isinf(mp.mpf(lam_s)) else mp.mpf(lam_s) / (1 + mp.mpf(lam_s))
        st = lt / (1 + lt)
        pts = [st + (ss - st) * j / 4 for j in range(5)]
        return [mp.quad(lambda u, f=f: f(u, ss, lt), pts) for f in fs]
