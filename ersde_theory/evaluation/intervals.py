"""Confidence intervals, docs/theory.md eq. (33). Quantiles come from ``scipy.stats`` (no rounded constants).

* replicates v_1…v_m (or paired differences): v̄ ± t_{(1+level)/2, m−1} s/√m (:func:`t_interval`);
* a large-sample statistic with a delta-method standard error se: v ± z_{(1+level)/2} se
  (:func:`normal_interval`);
* bootstrap replicates of a statistic: the percentile interval (:func:`percentile_interval`).
"""

from __future__ import annotations

import numpy as np
import scipy.stats

__all__ = ["z_quantile", "t_quantile", "t_interval", "paired_t_interval", "normal_interval", "percentile_interval"]


def z_quantile(level: float = 0.95) -> float:
    """z_{(1+level)/2}, the two-sided normal quantile (eq. 33)."""
    return float(scipy.stats.norm.ppf(0.5 + level / 2))


def t_quantile(m: int, level: float = 0.95) -> float:
    """t_{(1+level)/2, m−1}, the two-sided Student-t quantile for m replicates (eq. 33)."""
    return float(scipy.stats.t.ppf(0.5 + level / 2, m - 1))


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """Eq. (33): mean and half-width t_{(1+level)/2, m−1} s/√m of m independent replicates (s: ddof=1).
    The half-width is nan for fewer than 2 replicates."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float(v.mean()), float("nan")
    return float(v.mean()), float(t_quantile(v.size, level) * v.std(ddof=1) / np.sqrt(v.size))


def paired_t_interval(a, b, level: float = 0.95) -> tuple[float, float]:
    """Eq. (33) for the paired differences a_r − b_r (replicate r of both shares its seed)."""
    return t_interval(np.subtract(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)), level)


def normal_interval(value: float, se: float, level: float = 0.95) -> list[float]:
    """Eq. (33) for a delta-method standard error: [v − z se, v + z se]."""
    half = z_quantile(level) * se
    return [value - half, value + half]


def percentile_interval(samples, level: float = 0.95, axis=None) -> np.ndarray:
    """The bootstrap percentile interval: the (1 − level)/2 and (1 + level)/2 quantiles of ``samples``
    (along ``axis``), stacked first."""
    return np.percentile(samples, [50 - 50 * level, 50 + 50 * level], axis=axis)
