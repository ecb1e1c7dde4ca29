"""Multistep derivative estimates of ER-SDE-Solver-k on non-uniform grids and their errors
(docs/theory.md §6, eqs. (23)–(28)): the one derivation of them.

One step runs from σ_s = σ_i down to σ_t = σ_{i+1} = σ_i − h. Along the exact solution the denoiser output is
a function f(σ) = x_θ(x_σ, σ), smooth when h̃ = 0. Taylor expansion inside the exact step (eq. (7)) gives
eq. (12),

    x_t = r x_s + Σ_{n≥0} C_n f^{(n)}(σ_i),   C_n = φ_t ∫_{σ_t}^{σ_i} φ'(σ)/φ(σ)² (σ − σ_i)^n/n! dσ,

and ER-SDE-Solver-k (eq. (16)) keeps n < k with f^{(n)} replaced by estimates from the stored outputs
f_i = f(σ_i), f_{i−1} = f(σ_i + a h), f_{i−2} = f(σ_i + (a + b) h) (σ descends, so earlier σ are larger;
a, b > 0 are the step ratios of a non-uniform grid: h1 = σ_{i−1} − σ_i = a h, h2 = σ_{i−2} − σ_{i−1} = b h):

    published (eq. (23)):  D1 = (f_i − f_{i−1})/(σ_i − σ_{i−1}),  D2 = 2 (D1 − D1_prev)/(σ_i − σ_{i−2})
    corrected (eq. (25)):  p'(σ_i), p''(σ_i) of the quadratic p through the three stored outputs
                           = D1 − (σ_{i−1} − σ_i)/2 · D2  and  D2.

Their series (:func:`estimate_series`, :func:`truncation_error`) give eq. (24):

    D1 = f' + (h1/2) f'' + (h1²/6) f^{(3)} + …                (the derivative at the midpoint: first order)
    D2 = f'' + ((2 h1 + h2)/3) f^{(3)} + …                    (first order)
    corrected D1 = f' − (h1 (h1 + h2)/6) f^{(3)} + …          (second order)

(:func:`divided_difference_derivation` states them as identities in h1, h2; :func:`grid_errors` measures them
on a numeric grid). The C_n series come from :func:`.prediction_error.coefficient_series` (h is its Δ, σ_i its
σ_s), the published D1/D2 from :func:`.official.official_derivative_estimates`.

The local truncation error τ = (eq. (12)) − (scheme) with exact stored outputs is expanded in h (eq. (17));
τ = O(h^q) gives global order q − 1 for the repeated step, while each of the finitely many start steps
contributes its own O(h^{q_start}) to the global error, so the global order is min(q − 1, q_start).
C_n = O(h^{n+1}), so an estimate of f^{(n)} with error O(h^e) costs O(h^{n+1+e}) locally: D1 is the derivative
at the midpoint (e = 1), which leaves O(h³) in ER-SDE-3 and makes it globally second order; the corrected
estimates (eq. (25)) and the corrected start (eq. (26)) restore third order.

For h̃ > 0 the path x_σ is rough and f is not smooth in σ; this expansion then describes only the
deterministic part: measure strong and weak orders instead (:mod:`ersde_theory.studies.third_order`).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp

from .latex import Derivation
from .official import official_derivative_estimates
from .prediction_error import coefficient_series
from .symbols import SIGMA, Delta, sigma_s

__all__ = [
    "s",
    "h",
    "a",
    "b",
    "F",
    "h1",
    "h2",
    "grid",
    "taylor_values",
    "newton_divided_differences",
    "lagrange_derivative",
    "published_estimates",
    "corrected_estimates",
    "corrected_identity",
    "estimate_series",
    "truncation_error",
    "leading_term",
    "step_coefficient_series",
    "local_error",
    "start_local_error",
    "stored_output_weights",
    "implied_orders",
    "derivation_rows",
    "derivation_markdown",
    "multistep_derivation",
    "divided_difference_derivation",
    "grid_errors",
]

s = sigma_s  # current noise level σ_i (the symbolic layer's σ_s)
h = Delta  # next step: σ_{i+1} = σ_i − h
a = sp.Symbol("a", positive=True)  # σ_{i−1} − σ_i = a h
b = sp.Symbol("b", positive=True)  # σ_{i−2} − σ_{i−1} = b h
h1, h2 = sp.symbols("h_1 h_2", positive=True)  # the steps themselves: h1 = a h, h2 = b h
MAX_DERIV = 7
F = tuple(sp.Symbol(f"f^{{({k})}}") for k in range(MAX_DERIV + 1))  # f^{(k)}(σ_i)
DEFAULT_ORDER = 5  # series kept up to h^5


def grid() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    """(σ_i, σ_{i−1}, σ_{i−2}) = (σ_i, σ_i + a h, σ_i + (a + b) h)."""
    return s, s + a * h, s + (a + b) * h


def taylor_values(offsets, order: int = MAX_DERIV) -> list[sp.Expr]:
    """f(σ_i + δ) = Σ_{k≤order} f^{(k)} δ^k/k! for each offset δ."""
    return [sum(F[k] * d**k / sp.factorial(k) for k in range(order + 1)) for d in offsets]


def newton_divided_differences(xs, ys) -> list[sp.Expr]:
    """Newton's divided differences f[x_0], f[x_0, x_1], …, f[x_0, …, x_m] (any, non-uniform nodes)."""
    table = list(ys)
    out = [table[0]]
    for level in range(1, len(xs)):
        table = [(table[j + 1] - table[j]) / (xs[j + level] - xs[j]) for j in range(len(table) - 1)]
        out.append(table[0])
    return out


def lagrange_derivative(xs, ys, at, k: int) -> sp.Expr:
    """k-th derivative at ``at`` of the polynomial interpolating (xs, ys) (Lagrange form)."""
    x = sp.Dummy("x")
    p = sum(
        y * sp.prod([(x - xm) / (xj - xm) for m, xm in enumerate(xs) if m != j])
        for j, (xj, y) in enumerate(zip(xs, ys))
    )
    return sp.diff(p, x, k).subs(x, at)


def published_estimates(xs, ys) -> tuple[sp.Expr, sp.Expr]:
    """The paper's (D1, D2) of eq. (23) from (σ_i, σ_{i−1}, σ_{i−2}) and their outputs (the official formulas)."""
    return official_derivative_estimates({2: ys[0], 1: ys[1], 0: ys[2]}, {2: xs[0], 1: xs[1], 0: xs[2]}, 2)


def corrected_estimates(xs, ys) -> tuple[sp.Expr, sp.Expr]:
    """(p'(σ_i), p''(σ_i)) of the quadratic through the three stored outputs (eq. (25))."""
    return lagrange_derivative(xs, ys, xs[0], 1), lagrange_derivative(xs, ys, xs[0], 2)


def corrected_identity() -> dict[str, sp.Expr]:
    """Symbolic residuals on arbitrary nodes (all simplify to 0) of eq. (25): p'(σ_i) = D1 − (σ_{i−1} − σ_i)/2 · D2,
    p''(σ_i) = D2 and D2 = 2 f[σ_i, σ_{i−1}, σ_{i−2}] (Newton)."""
    xs = sp.symbols(r"\sigma_i \sigma_{i-1} \sigma_{i-2}")
    ys = sp.symbols("y_i y_{i-1} y_{i-2}")
    d1, d2 = published_estimates(xs, ys)
    p1, p2 = corrected_estimates(xs, ys)
    newton2 = newton_divided_differences(xs, ys)[2]
    return {
        "first": sp.simplify(p1 - (d1 - (xs[1] - xs[0]) / 2 * d2)),
        "second": sp.simplify(p2 - d2),
        "second_newton": sp.simplify(d2 - 2 * newton2),
    }


def _series(expr: sp.Expr, order: int) -> sp.Expr:
    """Truncation of ``expr``, a polynomial in h (after expansion), at h^order."""
    e = sp.expand(expr)
    if not e.is_polynomial(h):
        raise ValueError("expected a polynomial in h")
    return sp.Add(*[e.coeff(h, k) * h**k for k in range(order + 1)])


def leading_term(expr: sp.Expr) -> tuple[int | None, sp.Expr]:
    """(q, c) with expr = c h^q + higher powers; (None, 0) if expr is 0."""
    poly = sp.Poly(sp.expand(expr), h)
    if poly.is_zero:
        return None, sp.Integer(0)
    q = min(m[0] for m in poly.monoms())
    return q, sp.factor(poly.coeff_monomial(h**q))


def _estimates(variant: str):
    if variant not in ("published", "corrected"):
        raise ValueError(f"variant must be 'published' or 'corrected', got {variant!r}")
    xs = grid()
    ys = taylor_values([x - s for x in xs])
    est = (published_estimates if variant == "published" else corrected_estimates)(xs, ys)
    return tuple(sp.cancel(e) for e in est)  # polynomials in h


def _check_k(k: int) -> None:
    if k not in (1, 2):
        raise ValueError(f"k must be 1 or 2, got {k!r}")


@cache
def estimate_series(variant: str, k: int, order: int = 4) -> sp.Expr:
    """The estimate of f^{(k)} (eq. (23) or (25)) from exact stored outputs, expanded in h up to h^order."""
    _check_k(k)
    return _series(_estimates(variant)[k - 1], order)


@cache
def truncation_error(variant: str, k: int, order: int = 4) -> sp.Expr:
    """(estimate of f^{(k)}) − f^{(k)} expanded in h up to h^order, for exact stored outputs (eq. (24))."""
    _check_k(k)
    return _series(_estimates(variant)[k - 1] - F[k], order)


@cache
def step_coefficient_series(n: int, order: int = DEFAULT_ORDER, phi=SIGMA) -> sp.Expr:
    """C_n(σ_i, σ_i − h) of eq. (12) expanded in h up to h^order (from :func:`.prediction_error.coefficient_series`).

    ``phi``: a sympy expression in :data:`SIGMA` (default φ = σ, the ODE), a registry name, or None for a
    generic φ (then written with the derivatives of φ at σ_i).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n!r}")
    return _series(sp.expand(coefficient_series(phi, n, order)), order)


def _scheme_terms(variant: str, k: int):
    if k not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {k!r}")
    d1, d2 = _estimates(variant)
    if k == 2:
        d1 = _estimates("published")[0]  # order 2: both variants use the plain D1
    return [d1, d2][: k - 1]


@cache
def local_error(variant: str, k: int, order: int = DEFAULT_ORDER, phi=SIGMA) -> sp.Expr:
    """τ = Σ_{n≥1} C_n f^{(n)} − Σ_{1≤n<k} C_n D_n (eq. (12) minus one ER-SDE-k step, eq. (16)), up to h^order."""
    exact = sum(step_coefficient_series(n, order, phi) * F[n] for n in range(1, order))
    approx = sum(step_coefficient_series(n + 1, order, phi) * d for n, d in enumerate(_scheme_terms(variant, k)))
    return _series(exact - approx, order)


@cache
def start_local_error(corrected: bool, order: int = DEFAULT_ORDER, phi=SIGMA) -> sp.Expr:
    """Local error of the first (Euler) step σ_0 → σ_1 = σ_0 − h, optionally with the corrected start
    x_1 += C_1 (f(σ_1) − f(σ_0))/(σ_1 − σ_0) (eq. (26)); σ_i plays σ_0 here."""
    tau = sum(step_coefficient_series(n, order, phi) * F[n] for n in range(1, order))
    if corrected:
        f1 = taylor_values([-h])[0]
        tau -= step_coefficient_series(1, order, phi) * (f1 - F[0]) / (-h)
    return _series(tau, order)


def stored_output_weights(variant: str, k: int, order: int = 3, phi=SIGMA) -> list[sp.Expr]:
    """Weights of the stored outputs (f_i, f_{i−1}, f_{i−2}) in one ER-SDE-k update C_0 f_i + Σ C_n D_n (eq. (27)),
    expanded up to h^order. All are O(h): an error ε in one stored output changes a step by O(h ε)."""
    ys = sp.symbols("y_i y_{i-1} y_{i-2}")
    xs = grid()
    est = published_estimates(xs, ys) if variant == "published" else corrected_estimates(xs, ys)
    if k == 2:
        est = (published_estimates(xs, ys)[0],)
    update = step_coefficient_series(0, order, phi) * ys[0] + sum(
        step_coefficient_series(n + 1, order, phi) * d for n, d in enumerate(est[: k - 1])
    )
    weights = [_series(sp.cancel(sp.diff(update, y)), order) for y in ys[:k]]
    return [sp.Add(*[sp.factor(w.coeff(h, j)) * h**j for j in range(order + 1)]) for w in weights]


def implied_orders(variant: str, k: int, phi=SIGMA) -> dict:
    """Local order q of the repeated step, local orders of the start steps, and the global order
    min(q − 1, start orders) for ER-SDE-k with exact stored outputs (h̃ = 0)."""
    q = leading_term(local_error(variant, k, phi=phi))[0]
    start = []
    if k >= 2:
        start.append(leading_term(start_local_error(variant == "corrected" and k >= 3, phi=phi))[0])
    if k >= 3:
        start.append(leading_term(local_error("published", 2, phi=phi))[0])
    return dict(variant=variant, order=k, local=q, start=start, global_order=min([q - 1] + start))


def _leading_terms(phi=SIGMA) -> list[tuple[str, str, sp.Expr, int]]:
    """(name, LaTeX name, leading term, power of h) of every quantity of the derivation."""
    out = []
    for n in range(3):
        q, c = leading_term(step_coefficient_series(n, phi=phi))
        out.append((f"C_{n}", f"C_{n}", c * h**q, q))
    for variant in ("published", "corrected"):
        for k in (1, 2):
            q, c = leading_term(truncation_error(variant, k))
            out.append((f"{variant} D{k} - f^({k})", rf"D_{k}^{{\rm {variant[:3]}}} - f^{{({k})}}", c * h**q, q))
    for variant, k in (("published", 2), ("published", 3), ("corrected", 3)):
        q, c = leading_term(local_error(variant, k, phi=phi))
        out.append((f"local error ER-SDE-{k} {variant}", rf"\tau_{k}^{{\rm {variant[:3]}}}", c * h**q, q))
    for corrected in (False, True):
        q, c = leading_term(start_local_error(corrected, phi=phi))
        name = "corrected" if corrected else "Euler"
        out.append((f"start step ({name})", rf"\tau_{{\rm start}}^{{\rm {name}}}", c * h**q, q))
    return out


def derivation_rows(phi=SIGMA) -> list[dict]:
    """The derivation as rows (name, LaTeX of the leading term, power of h), for tables."""
    return [dict(name=n, latex=sp.latex(e), power=q) for n, _, e, q in _leading_terms(phi)]


def derivation_markdown(phi=SIGMA) -> str:
    """Markdown table of :func:`derivation_rows` and :func:`implied_orders` (LaTeX in $…$)."""
    lines = ["| quantity | leading term | power of h |", "|---|---|---|"]
    lines += [f"| {r['name']} | ${r['latex']}$ | {r['power']} |" for r in derivation_rows(phi)]
    lines += ["", "| solver | local order of the step | start steps | implied global order |", "|---|---|---|---|"]
    for variant, k in (("published", 1), ("published", 2), ("published", 3), ("corrected", 3)):
        o = implied_orders(variant, k, phi)
        lines.append(f"| ER-SDE-{k} {variant} | h^{o['local']} | {o['start']} | {o['global_order']} |")
    return "\n".join(lines)


def multistep_derivation(phi=SIGMA) -> Derivation:
    """The derivation as a self-verifying :class:`.latex.Derivation`: the corrected estimates (eq. (25)) are the
    Lagrange derivatives (checked identities on arbitrary nodes), then the leading terms (results)."""
    xs = sp.symbols(r"\sigma_i \sigma_{i-1} \sigma_{i-2}")
    ys = sp.symbols("y_i y_{i-1} y_{i-2}")
    d1, d2 = published_estimates(xs, ys)
    p1, p2 = corrected_estimates(xs, ys)
    d = Derivation("ER-SDE-Solver-3: published vs corrected multistep estimates")
    d.add(
        "corrected D1", p1, d1 - (xs[1] - xs[0]) / 2 * d2, "first derivative at sigma_i of the interpolating quadratic"
    )
    d.add("corrected D2", p2, d2, "its second derivative: the published D2")
    for name, tex, expr, q in _leading_terms(phi):
        d.add(name, sp.Symbol(tex), expr + sp.Order(h ** (q + 1)), check=False)
    d.results.update(
        {
            f"ER-SDE-{k} {v}": implied_orders(v, k, phi)
            for v, k in (("published", 2), ("published", 3), ("corrected", 3))
        }
    )
    return d


def _in_steps(expr: sp.Expr) -> sp.Expr:
    """An expression in a h and b h, written in the steps h1 = a h and h2 = b h (factored)."""
    return sp.factor(sp.expand(expr).subs({a: h1 / h, b: h2 / h}))


@cache
def divided_difference_derivation(order: int = 5) -> Derivation:
    """Eq. (24): the leading errors of D1, D2 (eq. (23)) and of the corrected D1 (eq. (25)) on non-uniform
    grids, as identities in the steps h1 = σ_{i−1} − σ_i and h2 = σ_{i−2} − σ_{i−1} (from
    :func:`estimate_series`; ``order``: the power of h the series are kept to)."""
    est = dict(
        D1=estimate_series("published", 1, order),
        D2=estimate_series("published", 2, order),
        D1_corrected=estimate_series("corrected", 1, order),
    )
    lead = lambda name, j: _in_steps(sp.expand(est[name]).coeff(F[j]))  # noqa: E731
    d = Derivation("Multistep derivative estimates on non-uniform grids")
    d.add("D1: coefficient of X_1", lead("D1", 1), 1)
    d.add("D1: error term", lead("D1", 2), h1 / 2, "first order: derivative at the midpoint")
    d.add("D2: coefficient of X_2", lead("D2", 2), 1)
    d.add("D2: error term", lead("D2", 3), (2 * h1 + h2) / 3, "first order")
    d.add("corrected D1: X_2 term", lead("D1_corrected", 2), 0)
    d.add("corrected D1: error term", lead("D1_corrected", 3), -h1 * (h1 + h2) / 6, "second order")
    orders = {
        name: leading_term(truncation_error(variant, k, order))[0]
        for name, variant, k in (("D1", "published", 1), ("D2", "published", 2), ("D1_corrected", "corrected", 1))
    }
    d.results.update(orders=orders)
    return d


def grid_errors(sigmas, f, df, d2f, d3f=None) -> dict:
    """Actual errors of D1 (vs f'), corrected D1 (vs f') and D2 (vs f'') at σ_i on a decreasing numeric grid
    (the estimates of eqs. (23), (25) in float64), with the predicted leading terms of eq. (24):
    (h1/2) f'', ((2 h1 + h2)/3) f^{(3)} and −h1 (h1 + h2)/6 f^{(3)}."""
    sig = np.asarray(sigmas, dtype=np.float64)
    sig = sig[sig > 0]
    v = f(sig)
    i = np.arange(2, sig.size)
    d1, d2 = official_derivative_estimates(v, sig, i)
    s1, s2 = sig[i - 1] - sig[i], sig[i - 2] - sig[i - 1]  # the steps h1, h2
    out = dict(
        step=i,
        h1=s1,
        h2=s2,
        D1=d1 - df(sig[i]),
        D2=d2 - d2f(sig[i]),
        D1_corrected=d1 + (sig[i] - sig[i - 1]) / 2 * d2 - df(sig[i]),
        D1_lead=s1 / 2 * d2f(sig[i]),
    )
    if d3f is not None:
        out.update(D2_lead=(2 * s1 + s2) / 3 * d3f(sig[i]), D1_corrected_lead=-s1 * (s1 + s2) / 6 * d3f(sig[i]))
    return out
