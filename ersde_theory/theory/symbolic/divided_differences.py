"""Multistep derivative estimates on non-uniform grids (notes §3; overlaps issue 7).

With steps h1 = σ_{i−1} − σ_i and h2 = σ_{i−2} − σ_{i−1} and X_j = x_θ^(j)(σ_i):

    D1 = (x_i − x_{i−1})/(σ_i − σ_{i−1})          = X_1 + (h1/2) X_2 + (h1²/6) X_3 + …      (1st order in h)
    D2 = 2 (D1_i − D1_{i−1})/(σ_i − σ_{i−2})     = X_2 + ((2 h1 + h2)/3) X_3 + …            (1st order)
    D1 + (σ_i − σ_{i−1})/2 · D2  ("corrected")   = X_1 − (h1 (h1 + h2)/6) X_3 + …           (2nd order)

(the sign convention: σ decreases along the schedule, so σ_{i−1} = σ_i + h1). In the k-th order step the
estimates are multiplied by C_1 = O(Δ²) and C_2 = O(Δ³): the published D1 leaves a local error
C_1 · (h1/2) X_2 = O(h³), hence global order 2 for k = 3.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import sympy as sp

from .latex import Derivation
from .official import official_derivative_estimates

h1, h2, sigma_i = sp.symbols("h_1 h_2 sigma_i", positive=True)
_H = sp.Symbol("H", positive=True)  # common scale: h1 = H a, h2 = H b


def _taylor_values(order: int):
    X = sp.symbols(f"X0:{order + 1}")
    val = lambda dh: sum(X[j] * dh**j / sp.factorial(j) for j in range(order + 1))  # noqa: E731
    return X, [val(0), val(h1), val(h1 + h2)]  # x at σ_i, σ_{i−1} = σ_i + h1, σ_{i−2}


@cache
def estimates(order: int = 5) -> dict:
    """Series (through X_order) of D1, D2 and the corrected D1 in h1, h2 and X_j = x_θ^(j)(σ_i)."""
    X, x = _taylor_values(order)
    sig = [sigma_i, sigma_i + h1, sigma_i + h1 + h2]
    x0 = {0: x[2], 1: x[1], 2: x[0]}  # index 2 is step i, 1 is i−1, 0 is i−2
    s = {0: sig[2], 1: sig[1], 2: sig[0]}
    d1, d2 = official_derivative_estimates(x0, s, 2)
    d1, d2 = sp.expand(sp.cancel(d1)), sp.expand(sp.cancel(d2))
    corrected = sp.expand(d1 + (s[2] - s[1]) / 2 * d2)
    return dict(X=X, D1=d1, D2=d2, D1_corrected=corrected)


def truncation_order(estimate: sp.Expr, target: sp.Expr) -> int:
    """The power of the step scale H in the leading term of estimate − target (h1 = H a, h2 = H b)."""
    a, b = sp.symbols("a b", positive=True)
    err = sp.expand((estimate - target).subs({h1: _H * a, h2: _H * b}))
    if err == 0:
        return sp.oo
    return min(sp.Poly(err, _H).monoms())[0]


@cache
def divided_difference_derivation(order: int = 5) -> Derivation:
    """Leading errors of D1, D2 and the corrected D1 on non-uniform grids (identities in h1, h2)."""
    e = estimates(order)
    X = e["X"]
    lead = lambda expr, j: sp.factor(expr.coeff(X[j]))  # noqa: E731
    d = Derivation("Multistep derivative estimates on non-uniform grids")
    d.add("D1: coefficient of X_1", lead(e["D1"], 1), 1)
    d.add("D1: error term", lead(e["D1"], 2), h1 / 2, "first order: derivative at the midpoint")
    d.add("D2: coefficient of X_2", lead(e["D2"], 2), 1)
    d.add("D2: error term", lead(e["D2"], 3), (2 * h1 + h2) / 3, "first order")
    d.add("corrected D1: X_2 term", lead(e["D1_corrected"], 2), 0)
    d.add("corrected D1: error term", lead(e["D1_corrected"], 3), -h1 * (h1 + h2) / 6, "second order")
    d.results.update(
        orders=dict(
            D1=truncation_order(e["D1"], X[1]),
            D2=truncation_order(e["D2"], X[2]),
            D1_corrected=truncation_order(e["D1_corrected"], X[1]),
        )
    )
    return d


def grid_errors(sigmas, f, df, d2f, d3f=None) -> dict:
    """Actual errors of D1 (vs f'), corrected D1 (vs f') and D2 (vs f'') at σ_i on a decreasing grid,
    with the predicted leading terms (h1/2) f'', ((2h1+h2)/3) f''' and −h1(h1+h2)/6 f'''."""
    sig = np.asarray(sigmas, dtype=np.float64)
    sig = sig[sig > 0]
    v = f(sig)
    i = np.arange(2, sig.size)
    d1 = (v[i] - v[i - 1]) / (sig[i] - sig[i - 1])
    d1m = (v[i - 1] - v[i - 2]) / (sig[i - 1] - sig[i - 2])
    d2 = 2 * (d1 - d1m) / (sig[i] - sig[i - 2])
    a, b = sig[i - 1] - sig[i], sig[i - 2] - sig[i - 1]
    out = dict(
        step=i,
        h1=a,
        h2=b,
        D1=d1 - df(sig[i]),
        D2=d2 - d2f(sig[i]),
        D1_corrected=d1 + (sig[i] - sig[i - 1]) / 2 * d2 - df(sig[i]),
        D1_lead=a / 2 * d2f(sig[i]),
    )
    if d3f is not None:
        out.update(D2_lead=(2 * a + b) / 3 * d3f(sig[i]), D1_corrected_lead=-a * (a + b) / 6 * d3f(sig[i]))
    return out
