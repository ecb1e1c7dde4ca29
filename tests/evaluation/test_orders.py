"""Evaluation layer, order fits (docs/theory.md eq. (34)): no order through a sign change or where the error
stops decreasing, the window found automatically, and, for deterministic errors, intervals (eq. 50) that cover
the true order wherever they are given."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from ersde_theory.evaluation.orders import (
    asymptotic_window,
    extrapolated_order,
    fit_order,
    fit_order_residual_bootstrap,
    keeps_sign,
    pairwise_orders,
)

NS = np.array([10, 20, 40, 80, 160, 320, 640, 1280])


def _crossing():
    """e(N) = 10 N⁻³ − 1000 N⁻⁴: order 3, but the error changes sign at N = 100 and |e| keeps decreasing
    through the crossing (−4.9e-6 at N = 80, +9.2e-7 at N = 160)."""
    return 10.0 * NS**-3.0 - 1000.0 * NS**-4.0


def test_window_stops_at_a_sign_change():
    e = _crossing()
    sign = np.sign(e)
    assert sign.tolist() == [-1] * 4 + [1] * 4 and np.all(np.diff(np.abs(e)) < 0)
    mask = asymptotic_window(NS, np.abs(e), same_sign=keeps_sign(sign))
    assert NS[mask].tolist() == [160, 320, 640, 1280]
    p = fit_order(NS[mask], np.abs(e[mask]))
    assert 2.4 < p < 3.0, p  # approaches 3 from below: (1 − 100/N) grows
    assert asymptotic_window(NS, np.abs(e)).all()  # |e| alone hides the crossing: the signs are needed


def test_window_without_signs_still_needs_a_decrease():
    e = np.array([1e-1, 1e-2, 1e-3, 1e-8, 1e-7, 1e-8, 1e-9, 1e-10])  # dips through 0 between N = 40 and 80
    mask = asymptotic_window(NS, e)
    assert NS[mask].tolist() == [160, 320, 640, 1280]
    assert asymptotic_window(NS, e, max_points=2).sum() == 2
    resolved = np.ones(8, bool)
    resolved[-1] = False  # the finest point sits on a floor: the window ends before it
    assert NS[asymptotic_window(NS, e, resolved=resolved)].tolist() == [160, 320, 640]


def test_keeps_sign_from_signs_and_from_paths():
    assert keeps_sign([-1, -1, 1, 1]).tolist() == [True, False, True]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2))
    c = np.array([-1e-1, -1e-2, 1e-4, 1e-5])  # per-path errors c(N)·x
    paths = c[:, None, None] * x[None]
    assert keeps_sign(path_errors=paths).tolist() == [True, False, True]
    with pytest.raises(ValueError):
        keeps_sign()


def _families():
    """Errors with a known order p: e = N^{−p}(1 + D N^{−q} + E N^{−2q}) on geometric N from 10 to 40960,
    positive and decreasing (the asymptotic regime eq. (50) assumes, q ≥ 1)."""
    for p, q, d, e2, start, points in itertools.product(
        [0.5, 1, 2, 3, 4], [1, 2, 3], np.linspace(-30, 30, 13), [-10, 0, 10], [10, 40, 160, 640], [5, 7]
    ):
        ns = start * 2.0 ** np.arange(points)
        err = ns**-p * (1 + d * ns**-q + e2 * ns ** (-2 * q))
        if np.all(err > 0) and np.all(np.diff(err) < 0):
            yield p, ns, err


def test_extrapolated_order_covers_the_true_order_wherever_it_gives_an_interval():
    given = total = 0
    for p, ns, err in _families():
        total += 1
        r = extrapolated_order(ns, err)
        if r.order is None:
            continue
        given += 1
        assert r.lo <= p <= r.hi, (p, ns[0], r)
        assert r.lo <= r.order <= r.hi
    assert total > 2000 and given > 0.9 * total, (given, total)  # and it does give one almost everywhere


def test_extrapolated_order_of_a_lower_order_term_not_yet_dominant():
    """e = N^{−3} + b N^{−2} (a third-order scheme with a second-order start, b small): while the N^{−3} term
    dominates, the pairwise orders move away from 3 towards 2; an interval is given only once they contract
    towards 2, and then it covers 2."""
    given = 0
    for b, start in itertools.product([1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0], 10 * 2 ** np.arange(10)):
        ns = start * 2.0 ** np.arange(6)
        r = extrapolated_order(ns, ns**-3.0 + b * ns**-2.0)
        if r.order is not None:
            given += 1
            assert r.lo <= 2.0 <= r.hi, (b, start, r)
    assert given > 10


def test_extrapolated_order_would_fail_with_a_wrong_bound():
    """The bound is needed: the last pairwise order or the Aitken value alone would exclude the truth."""
    ns = 20 * 2.0 ** np.arange(5)
    err = ns**-3.0 * (1 + 5 * ns**-1.0)
    r = extrapolated_order(ns, err)
    assert r.lo <= 3.0 <= r.hi
    assert abs(r.pairwise[-1] - 3.0) > 0.02 and abs(r.order - 3.0) > 1e-3  # neither alone covers 3
    assert r.hi - r.lo < 0.05  # and it is informative


def test_residual_bootstrap_interval_covers_scatter_not_curvature():
    """The residual bootstrap (eq. 34) is an interval for errors that scatter about a power law; on a
    deterministic pre-asymptotic error it excludes the true order, where eq. (50)'s bound does not."""
    rng = np.random.default_rng(1)
    ns = NS[2:]
    e = 3.0 * ns**-3.0 * np.exp(0.05 * rng.normal(size=ns.size))
    p, lo, hi = fit_order_residual_bootstrap(ns, e, np.ones(ns.size, bool))
    assert lo < 3.0 < hi and hi - lo > 0.01
    curved = ns**-3.0 * (1 + 5 * ns**-1.0)
    p, lo, hi = fit_order_residual_bootstrap(ns, curved, np.ones(ns.size, bool))
    assert not lo <= 3.0 <= hi
    r = extrapolated_order(ns, curved)
    assert r.lo <= 3.0 <= r.hi
    assert fit_order_residual_bootstrap(ns[:2], curved[:2], np.ones(2, bool)) == (None, None, None)


def test_extrapolated_order_says_why_there_is_none():
    ns = NS[:5].astype(float)
    assert "5 needed" in extrapolated_order(ns[:4], ns[:4] ** -2.0).reason
    r = extrapolated_order(np.array([10, 20, 40, 100, 200.0]), np.array([10, 20, 40, 100, 200.0]) ** -2.0)
    assert r.order is None and "geometric" in r.reason
    wiggle = ns**-2.0 * (1 + 0.3 * np.array([1, -1, 1, -1, 1]) * ns**-0.5)
    assert "monotone" in extrapolated_order(ns, wiggle).reason
    growing = ns**-3.0 + 1e-4 * ns**-2.0  # pairwise orders falling faster and faster from 3 towards 2
    r = extrapolated_order(ns, growing)
    assert r.order is None and "contracting" in r.reason and len(r.pairwise) == 4
    exact = 3.0 * ns**-3.0  # a pure power law: the interval is the order itself, to the rounding pad
    r = extrapolated_order(ns, exact * (1 + 1e-3 * ns**-1.0))
    assert r.order == pytest.approx(3.0, abs=1e-9) and r.hi - r.lo < 1e-3


def test_pairwise_orders_show_a_dip_through_zero():
    e = np.array([1e-1, 1e-2, 1e-3, 1e-8, 1e-7, 1e-8, 1e-9, 1e-10])
    p = pairwise_orders(NS, e)
    assert p[2] > 15 and p[3] < 0 and p[-1] == pytest.approx(np.log2(10))
