"""Convergence orders, docs/theory.md eq. (34): an error e(N) ≈ c N^{−p} on N steps has the order estimate p,
the least-squares slope of log e against log N over a window of resolved step counts, and pairwise orders
p_j = −log(e_{j+1}/e_j)/log(N_{j+1}/N_j).

An order is only an order where the error keeps its sign and decreases: through a sign change |e| dips
towards 0 and the slope means nothing. :func:`asymptotic_window` finds the finest run of step counts where the
error keeps its sign and decreases; :func:`fit_order_residual_bootstrap` fits there with an interval from
the fit's residuals (for deterministic errors); :func:`fit_order_bootstrap` resamples paths (Monte-Carlo
errors)."""

from __future__ import annotations

from collections.abc import Callable

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
    """Eq. (34) for a deterministic error on the window ``mask`` (default: :func:`asymptotic_window` of
    |errs| without sign information), with a residual-bootstrap percentile interval: the log-log fit's
    residuals, leverage-corrected (r_i/√(1 − h_i)), are resampled and refitted ``reps`` times. Returns
    (order, lo, hi), or (None, None, None) with fewer than ``min_points`` points in the window."""
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
