"""Measuring solvers (docs/theory.md §8): the Fréchet distance (eq. 31) and its extrapolation to n = ∞ (eqs. 51–52),
noise floors (eq. 32), confidence intervals (eq. 33), order fits (eq. 34), the sample-quality metrics of the toy
benchmarks, the image metrics (:mod:`.image_metrics`: FD_digits, Inception-FID) and the report writer
(:mod:`.reports`).

Sits above ``theory``, ``coefficients``, ``solvers``, ``toys``, ``references``, ``datasets`` and ``models`` and
below ``studies``, ``plots`` and the command line; it imports none of those.
"""

from .frechet import (
    frechet_distance,
    frechet_infinity,
    frechet_infinity_blocks,
    frechet_to_moments,
    gaussian_moments,
    infinity_valid,
)
from .intervals import normal_interval, paired_t_interval, percentile_interval, t_interval, t_quantile, z_quantile
from .noise_floor import fd_noise_floor, floor_summary, floor_values
from .orders import (
    ExtrapolatedOrder,
    asymptotic_window,
    extrapolated_order,
    finest_window,
    fit_order,
    fit_order_bootstrap,
    fit_order_residual_bootstrap,
    fit_orders,
    keeps_sign,
    pairwise_orders,
    window_between,
)
from .quality import Metric, QualityReference, paired_difference

__all__ = [
    "frechet_distance",
    "frechet_to_moments",
    "frechet_infinity",
    "frechet_infinity_blocks",
    "infinity_valid",
    "gaussian_moments",
    "fd_noise_floor",
    "floor_values",
    "floor_summary",
    "t_interval",
    "paired_t_interval",
    "normal_interval",
    "percentile_interval",
    "t_quantile",
    "z_quantile",
    "fit_order",
    "fit_orders",
    "pairwise_orders",
    "window_between",
    "finest_window",
    "fit_order_bootstrap",
    "ExtrapolatedOrder",
    "extrapolated_order",
    "fit_order_residual_bootstrap",
    "asymptotic_window",
    "keeps_sign",
    "Metric",
    "QualityReference",
    "paired_difference",
]
