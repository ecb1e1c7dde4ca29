"""Evaluation layer, order fits (docs/theory.md eq. (34)): no order through a sign change or where the error
stops decreasing, the window found automatically, and intervals that mean something (residual bootstrap for
deterministic errors)."""

from __future__ import annotations

import numpy as np
import pytest

from ersde_theory.evaluation.orders import (
    asymptotic_window,
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


def test_residual_bootstrap_interval_covers_and_is_not_degenerate():
    rng = np.random.default_rng(1)
    ns = NS[2:]
    e = 3.0 * ns**-3.0 * np.exp(0.05 * rng.normal(size=ns.size))
    p, lo, hi = fit_order_residual_bootstrap(ns, e, np.ones(ns.size, bool))
    assert lo < p < hi and hi - lo > 0.01
    assert lo < 3.0 < hi
    exact = 3.0 * ns**-3.0  # a pure power law: the fit and its interval are the order itself
    p, lo, hi = fit_order_residual_bootstrap(ns, exact, np.ones(ns.size, bool))
    assert p == pytest.approx(3.0, abs=1e-12) and hi - lo < 1e-9
    assert fit_order_residual_bootstrap(ns[:2], exact[:2], np.ones(2, bool)) == (None, None, None)


def test_pairwise_orders_show_a_dip_through_zero():
    e = np.array([1e-1, 1e-2, 1e-3, 1e-8, 1e-7, 1e-8, 1e-9, 1e-10])
    p = pairwise_orders(NS, e)
    assert p[2] > 15 and p[3] < 0 and p[-1] == pytest.approx(np.log2(10))
