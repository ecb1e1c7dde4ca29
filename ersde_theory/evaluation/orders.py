"""Convergence orders, docs/theory.md eq. (34): an error e(N) ≈ c N^{−p} on N steps has the order estimate p,
the least-squares slope of log e against log N over a window of resolved step counts, and pairwise orders
p_j = −log(e_{j+1}/e_j)/log(N_{j+1}/N_j)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .intervals import percentile_interval

__all__ = ["fit_orders", "fit_order", "pairwise_orders", "window_between", "finest_window", "fit_order_bootstrap"]


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
