"""Convergence orders, docs/theory.md eqs. (34) and (50): an error e(N) ≈ c N^{−p} on N steps has the order estimate p,
the least-squares slope of log e against log N over a window of resolved step counts, and pairwise orders
p_j = −log(e_{j+1}/e_j)/log(N_{j+1}/N_j).

An order is only an order where the error keeps its sign and decreases: through a sign change |e| dips
towards 0 and the slope means nothing. :func:`asymptotic_window` finds the finest run of step counts where the
error keeps its sign and decreases. For a deterministic error a least-squares slope has no sampling error to
make an interval from; :func:`extrapolated_order` (eq. 50) extrapolates the pairwise orders there and bounds
the asymptotic order by their trend, or says why it cannot. :func:`fit_order_bootstrap` resamples paths
(Monte-Carlo errors)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from .intervals import percentile_interval

__all__ = [
    "fit_orders",
    "fit_order",
    "pairwise_orders",
    "window_between",
    "finest_window",
    "fit_order_bootstrap",
    "asymptotic_window",
    "keeps_sign",
    "fit_order_residual_bootstrap",
    "ExtrapolatedOrder",
    "extrapolated_order",
    "EXTRAPOLATION_POINTS",
]


def fit_orders(ns, errs) -> np.ndarray:
    """Eq. (34), vectorised: −(least-squares slope of log e against log N) for errors ``errs`` (n_N, ...),
    one order per trailing index. Errors are floored at 1e-300 before the logarithm."""
    x = np.log(np.asarray(ns, dtype=np.float64))
    xc = x - x.mean()
    y = np.log(np.maximum(np.asarray(errs, dtype=np.float64), 1e-300))
    return -np.tensordot(xc, y - y.mean(0), axes=(0, 0)) / np.sum(xc**2)


def fit_order(ns, errs) -> float:
    """Eq. (34): the order p of log e = c − p log N (least squares over all given points)."""
    return float(fit_orders(ns, errs))


def pairwise_orders(ns, errs) -> list[float]:
    """Eq. (34): p_j = −log(e_{j+1}/e_j)/log(N_{j+1}/N_j) between consecutive step counts."""
    ns = np.asarray(ns, dtype=np.float64)
    e = np.maximum(np.asarray(errs, dtype=np.float64), 1e-300)
    return (-np.diff(np.log(e)) / np.diff(np.log(ns))).tolist()


def window_between(ns, lo, hi) -> np.ndarray:
    """Indices of the step counts lo ≤ N ≤ hi (a fixed fit window)."""
    ns = np.asarray(ns)
    return np.flatnonzero((ns >= lo) & (ns <= hi))


def finest_window(ns, resolved, min_steps: int, points: int) -> np.ndarray:
    """Boolean mask of the fit window of eq. (34): the finest ``points`` step counts with N ≥ ``min_steps``
    whose errors are ``resolved`` (above the reference's and the Monte-Carlo noise)."""
    ok = (np.asarray(ns) >= min_steps) & np.asarray(resolved, dtype=bool)
    keep = np.flatnonzero(ok)[-points:]
    mask = np.zeros(len(ns), dtype=bool)
    mask[keep] = True
    return mask


def fit_order_bootstrap(
    ns,
    values: torch.Tensor,
    statistic: Callable[[torch.Tensor], torch.Tensor],
    mask,
    *,
    reps: int = 400,
    seed: int = 0,
    level: float = 0.95,
    min_points: int = 3,
):
    """Eq. (34) on the window ``mask`` with a bootstrap percentile interval over paths.

    ``values`` (n_N, M) are per-path quantities and ``statistic`` reduces their last axis to the error (e.g.
    the RMS of squared errors). The paths are resampled jointly for all N (``reps`` resamples, a torch
    generator seeded with ``seed``). Returns (order, lo, hi), or (None, None, None) with fewer than
    ``min_points`` points in the window."""
    mask = np.asarray(mask, dtype=bool)
    if mask.sum() < min_points:
        return None, None, None
    ns_w = np.asarray(ns, dtype=np.float64)[mask]
    v = values[torch.from_numpy(mask)]
    order = float(fit_orders(ns_w, statistic(v).numpy()))
    g = torch.Generator().manual_seed(seed)
    boots = []
    for chunk in range(0, reps, 100):
        b = min(100, reps - chunk)
        idx = torch.randint(0, v.shape[1], (b, v.shape[1]), generator=g)
        boots.append(fit_orders(ns_w, statistic(v[:, idx]).numpy()))  # (n_window, b) -> (b,)
    lo, hi = percentile_interval(np.concatenate(boots), level)
    return order, float(lo), float(hi)


def keeps_sign(signs=None, path_errors=None) -> np.ndarray:
    """(n − 1,) booleans: does the error keep its sign from step count j to j + 1?

    ``signs`` (n,): the signs of a deterministic error. ``path_errors`` (n, M[, D]): per-path errors; the
    error "keeps its sign" when the paths' errors at j and j + 1 point the same way on average,
    mean_paths ⟨e_j, e_{j+1}⟩ > 0 (for an error c(N)·(x − m) this is sign c(N_j) = sign c(N_{j+1}))."""
    if (signs is None) == (path_errors is None):
        raise ValueError("give exactly one of signs and path_errors")
    if signs is not None:
        s = np.sign(np.asarray(signs, dtype=np.float64))
        return (s[1:] == s[:-1]) & (s[1:] != 0)
    e = np.asarray(path_errors, dtype=np.float64)
    e = e.reshape(e.shape[0], e.shape[1], -1)
    return np.einsum("jmd,jmd->j", e[:-1], e[1:]) / e.shape[1] > 0


def asymptotic_window(ns, errs, *, same_sign=None, resolved=None, min_steps: int = 0, max_points=None) -> np.ndarray:
    """Boolean mask of the fit window of eq. (34): the finest contiguous run of step counts (ending at the
    finest ``resolved`` one, N ≥ ``min_steps``) over which |e| strictly decreases and, where ``same_sign``
    ((n − 1,) booleans, :func:`keeps_sign`) is given, the error keeps its sign. ``max_points`` keeps only
    the finest points of that run. A window of one point means there is no order to fit there."""
    ns = np.asarray(ns, dtype=np.float64)
    e = np.abs(np.asarray(errs, dtype=np.float64))
    ok = np.isfinite(e) & (e > 0) & (ns >= min_steps)
    if resolved is not None:
        ok &= np.asarray(resolved, dtype=bool)
    same = np.ones(len(ns) - 1, dtype=bool) if same_sign is None else np.asarray(same_sign, dtype=bool)
    mask = np.zeros(len(ns), dtype=bool)
    idx = np.flatnonzero(ok)
    if idx.size == 0:
        return mask
    j = idx[-1]
    mask[j] = True
    while j > 0 and ok[j - 1] and same[j - 1] and e[j - 1] > e[j]:
        j -= 1
        mask[j] = True
    if max_points is not None:
        keep = np.flatnonzero(mask)[-max_points:]
        mask[:] = False
        mask[keep] = True
    return mask


def fit_order_residual_bootstrap(
    ns, errs, mask=None, *, reps: int = 2000, seed: int = 0, level: float = 0.95, min_points: int = 3
):
    """Eq. (34) on the window ``mask`` (default: :func:`asymptotic_window` of |errs| without sign
    information), with a residual-bootstrap percentile interval: the log-log fit's residuals,
    leverage-corrected (r_i/√(1 − h_i)), are resampled and refitted ``reps`` times. Returns (order, lo, hi),
    or (None, None, None) with fewer than ``min_points`` points in the window.

    Not an interval for the asymptotic order of a deterministic error: it treats the curvature of log e
    against log N (the approach to the asymptotic order) as noise and excludes the truth wherever the window
    is pre-asymptotic (0.6.0 reported 2.78 [2.66, 2.91] for a third-order method). The reports use
    :func:`extrapolated_order` (eq. 50); this stays for errors that really scatter about a power law."""
    ns = np.asarray(ns, dtype=np.float64)
    e = np.abs(np.asarray(errs, dtype=np.float64))
    mask = asymptotic_window(ns, e) if mask is None else np.asarray(mask, dtype=bool)
    if mask.sum() < min_points:
        return None, None, None
    x, y = np.log(ns[mask]), np.log(e[mask])
    xc = x - x.mean()
    slope = float(xc @ (y - y.mean()) / (xc @ xc))
    fitted = y.mean() + slope * xc
    lev = 1.0 / x.size + xc**2 / (xc @ xc)
    r = (y - fitted) / np.sqrt(np.maximum(1.0 - lev, 1e-12))
    r = r - r.mean()
    rng = np.random.default_rng(seed)
    ystar = fitted[None, :] + r[rng.integers(0, r.size, size=(reps, r.size))]
    slopes = (ystar - ystar.mean(1, keepdims=True)) @ xc / (xc @ xc)
    lo, hi = percentile_interval(-slopes, level)
    return -slope, float(lo), float(hi)


class ExtrapolatedOrder(NamedTuple):
    """The result of :func:`extrapolated_order`: the Aitken-extrapolated order with its bound [lo, hi]
    (eq. 50), or ``order = lo = hi = None`` and the ``reason`` there is none; ``pairwise`` are the pairwise
    orders (eq. 34) over the window, reported either way."""

    order: float | None
    lo: float | None
    hi: float | None
    pairwise: list[float]
    reason: str = ""


EXTRAPOLATION_POINTS = 5  # eq. (50) reads the finest five step counts of a window (four pairwise orders)
# An absolute pad on the bound for the rounding of the pairwise orders themselves (errors of a float64 run).
ORDER_ROUNDING = 1e-6


def extrapolated_order(ns, errs, mask=None) -> ExtrapolatedOrder:
    """Eq. (50): the asymptotic order of a deterministic error from its pairwise orders p_j (eq. 34) on a
    geometric sequence of step counts, extrapolated by Aitken's Δ² and bounded by their trend.

    With e(N) = C N^{−p} (1 + D N^{−q} + O(N^{−2q})) the pairwise orders approach p geometrically,
    p_j − p ≈ K ρ^j with ρ = (N_j/N_{j+1})^q; the differences d_j = p_{j+1} − p_j keep their sign and shrink
    by ρ_j = d_{j+1}/d_j ≈ ρ. On the finest five step counts of the window ``mask`` (default
    :func:`asymptotic_window` of |errs|): p̂ = p_J − d_{J−1}²/(d_{J−1} − d_{J−2}) (Aitken, also one step
    earlier, p̂′); the truth lies at p_J + d_{J−1} ρ/(1 − ρ) for the remaining ratio ρ, which the bound takes
    over [min ρ_j − |Δρ|, max ρ_j + |Δρ|]; the interval is the hull of that range and p̂ ± 2|p̂ − p̂′|.

    An interval is returned only where this can hold; otherwise ``reason`` says why and only the pairwise
    orders are reported: fewer than five points, N not geometric, d_j changing sign (not monotone), a ratio
    ρ_j outside (0, 1) (not contracting: pre-asymptotic, e.g. a lower-order term not yet dominant), or a
    ratio range reaching 1. It assumes the leading correction dominates the next (q ≥ 1 in integer powers
    of 1/N, as for smooth step sequences); tests/evaluation/test_orders.py checks that every interval
    given covers p over 37,000 families e = N^{−p}(1 + D N^{−q} + E N^{−2q}) and mixtures a N^{−3} + b N^{−2},
    and the published solvers' known orders."""
    ns = np.asarray(ns, dtype=np.float64)
    e = np.abs(np.asarray(errs, dtype=np.float64))
    mask = asymptotic_window(ns, e) if mask is None else np.asarray(mask, dtype=bool)
    n_w, e_w = ns[mask], e[mask]
    pairwise = pairwise_orders(n_w, e_w) if n_w.size >= 2 else []

    def none(reason: str) -> ExtrapolatedOrder:
        return ExtrapolatedOrder(None, None, None, pairwise, reason)

    if n_w.size < EXTRAPOLATION_POINTS:
        return none(f"{n_w.size} points in the window ({EXTRAPOLATION_POINTS} needed)")
    ratio = n_w[1:] / n_w[:-1]
    if not np.allclose(ratio, ratio[0], rtol=1e-9):
        return none("step counts not geometric")
    p = np.asarray(pairwise[-(EXTRAPOLATION_POINTS - 1) :])
    d = np.diff(p)
    if not (np.all(d > 0) or np.all(d < 0)):
        return none("pairwise orders not monotone")
    rho = d[1:] / d[:-1]
    if not np.all((rho > 0) & (rho < 1)):
        return none("pairwise orders not contracting (ratios " + ", ".join(f"{r:.2f}" for r in rho) + ")")
    spread = abs(rho[1] - rho[0])
    r_lo, r_hi = max(rho.min() - spread, 0.0), rho.max() + spread
    if r_hi >= 1:
        return none("ratio of the pairwise differences may reach 1 (ratios " + ", ".join(f"{r:.2f}" for r in rho) + ")")
    aitken = p[2:] - d[1:] ** 2 / (d[1:] - d[:-1])
    change = abs(aitken[1] - aitken[0])
    tails = [p[-1] + d[-1] * r / (1 - r) for r in (r_lo, r_hi)]
    candidates = [p[-1], *tails, aitken[1] - 2 * change, aitken[1] + 2 * change]
    lo, hi = min(candidates) - ORDER_ROUNDING, max(candidates) + ORDER_ROUNDING
    return ExtrapolatedOrder(float(aitken[1]), float(lo), float(hi), pairwise)
