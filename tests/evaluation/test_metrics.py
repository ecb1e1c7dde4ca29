"""Evaluation layer: the Fréchet distance against closed forms (docs/theory.md eq. (31)), the FD noise floor
(eq. (32)), confidence intervals with exact quantiles (eq. (33)), order fits (eq. (34)), and the sampler
registry's NFE rules."""

import math

import numpy as np
import pytest
import torch

from ersde_theory import ring_2d
from ersde_theory.evaluation import fd_noise_floor, frechet_distance, frechet_to_moments
from ersde_theory.evaluation.intervals import t_interval


def test_frechet_distance_closed_forms():
    # 1-D: (m1 − m2)² + (s1 − s2)²
    assert frechet_distance([1.0], [[4.0]], [-1.0], [[1.0]]) == pytest.approx(4 + 1, rel=1e-12)
    # commuting (diagonal) covariances: |Δμ|² + Σ (sqrt a − sqrt b)²
    a, b = np.array([1.0, 9.0, 0.25]), np.array([4.0, 1.0, 0.25])
    fd = frechet_distance(np.zeros(3), np.diag(a), np.ones(3), np.diag(b))
    assert fd == pytest.approx(3 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2), rel=1e-10)
    # rotation invariance with a full covariance
    q = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
    assert frechet_distance(np.zeros(3), q @ np.diag(a) @ q.T, np.ones(3) @ q.T, q @ np.diag(b) @ q.T) == pytest.approx(
        fd, rel=1e-8
    )


def test_noise_floor_scales_like_one_over_n():
    gm = ring_2d()
    m1, _ = fd_noise_floor(gm, 2000, reps=40, seed=0)
    m2, _ = fd_noise_floor(gm, 8000, reps=40, seed=1)
    assert 2.5 < m1 / m2 < 6.5  # E FD ≈ c/n for an unbiased sampler
    shifted = gm.sample(8000, generator=torch.Generator().manual_seed(2)) + 0.1
    assert frechet_to_moments(shifted, gm.mean().numpy(), gm.cov().numpy()) > 10 * m2


def test_intervals_use_exact_quantiles():
    import scipy.stats

    from ersde_theory.evaluation import normal_interval, paired_t_interval, percentile_interval, t_interval

    v = np.array([1.0, 2.0, 4.0, 7.0])
    m, h = t_interval(v)
    assert m == pytest.approx(3.5) and h == pytest.approx(scipy.stats.t.ppf(0.975, 3) * v.std(ddof=1) / 2)
    assert paired_t_interval(v, v - 1.0)[0] == pytest.approx(1.0) and paired_t_interval(v, v - 1.0)[1] == 0.0
    assert np.isnan(t_interval([1.0])[1])
    lo, hi = normal_interval(2.0, 0.5)
    assert hi - 2.0 == pytest.approx(0.5 * scipy.stats.norm.ppf(0.975), rel=1e-15) and lo + hi == pytest.approx(4.0)
    np.testing.assert_array_equal(percentile_interval(np.arange(101.0)), [2.5, 97.5])


def test_order_fits():
    from ersde_theory.evaluation import finest_window, fit_order, pairwise_orders, window_between

    ns = np.array([10, 20, 40, 80])
    errs = 3.0 * ns**-2.0
    assert fit_order(ns, errs) == pytest.approx(2.0, rel=1e-12)
    np.testing.assert_allclose(pairwise_orders(ns, errs), 2.0, rtol=1e-12)
    np.testing.assert_array_equal(window_between(ns, 20, 40), [1, 2])
    np.testing.assert_array_equal(finest_window(ns, [True, True, True, False], 10, 2), [False, True, True, False])


def test_sampler_registry_rules():
    from ersde_theory.solvers.registry import SAMPLERS, available_samplers, schedule_for, steps_for_nfe

    assert steps_for_nfe("heun", 10) == 5 and SAMPLERS["heun"].nfe(10) == 9 and steps_for_nfe("er_sde_3", 10) == 10
    assert len(schedule_for("heun", 9)) == 6 and schedule_for("euler", 7)[-1] == 0
    names = available_samplers()
    assert names[0] == "er_sde" and names[1:] == sorted(names[1:]) and "heun" in names and "er_sde_3" not in names


def test_t_interval_is_the_student_t_interval():
    m, h = t_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.30265273 / math.sqrt(3), rel=1e-8)


def test_frechet_covariances_are_the_unbiased_ones():
    """ddof = 1 pinned (eq. 31): in 1-D the distance is (m1 − m2)² + (s1 − s2)² with the n − 1 sample variances;
    the n-divisor variances give another number for these 4 points."""
    from ersde_theory.evaluation import frechet_distance, gaussian_moments

    a, b = np.array([0.0, 1.0, 2.0, 5.0]), np.array([1.0, 1.5, 4.0, 4.5])
    m1, c1 = gaussian_moments(a[:, None])
    m2, c2 = gaussian_moments(b[:, None])
    assert c1[0, 0] == pytest.approx(np.var(a, ddof=1), rel=1e-15)
    want = (a.mean() - b.mean()) ** 2 + (np.std(a, ddof=1) - np.std(b, ddof=1)) ** 2
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(want, rel=1e-12)
    biased = (a.mean() - b.mean()) ** 2 + (np.std(a) - np.std(b)) ** 2
    assert abs(want - biased) > 1e-3


def test_residual_bootstrap_uses_leverage_corrected_residuals():
    """An independent implementation of eq. (34)'s residual bootstrap: residuals r_i/√(1 − h_i), centred,
    resampled with the same generator; its percentile interval must be the function's."""
    from ersde_theory.evaluation.orders import fit_order_residual_bootstrap

    ns = np.array([8, 16, 32, 64, 128, 256])
    errs = 3.0 * ns**-2.0 * (1 + 0.5 * np.sin(ns)) + 1e-9
    p, lo, hi = fit_order_residual_bootstrap(ns, errs, np.ones(ns.size, bool), reps=500, seed=3)
    x, y = np.log(ns), np.log(errs)
    xc = x - x.mean()
    slope = xc @ (y - y.mean()) / (xc @ xc)
    fit = y.mean() + slope * xc
    h = 1 / x.size + xc**2 / (xc @ xc)
    r = (y - fit) / np.sqrt(1 - h)
    r -= r.mean()
    ystar = fit + r[np.random.default_rng(3).integers(0, r.size, size=(500, r.size))]
    orders = -((ystar - ystar.mean(1, keepdims=True)) @ xc) / (xc @ xc)
    assert p == pytest.approx(-slope, rel=1e-12)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(orders, [2.5, 97.5])), rel=1e-12)
    r0 = (y - fit) - (y - fit).mean()  # without the correction the interval is narrower
    ystar0 = fit + r0[np.random.default_rng(3).integers(0, r0.size, size=(500, r0.size))]
    o0 = -((ystar0 - ystar0.mean(1, keepdims=True)) @ xc) / (xc @ xc)
    assert np.percentile(o0, 97.5) - np.percentile(o0, 2.5) < 0.95 * (hi - lo)
