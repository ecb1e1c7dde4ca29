"""Evaluation layer, quality metrics (evaluation/quality.py) against closed forms and Monte-Carlo replicates:
FD (docs/theory.md eq. (31)) with its delta-method standard error, sliced W2, exact projected quantile blocks,
mode TV, Gaussian interval log-probabilities, histogram KL, paired differences, and the noise floor (eq. (32))."""

import mpmath
import numpy as np
import pytest
import torch

from ersde_theory import GaussianMixture, ring_2d
from ersde_theory.evaluation.frechet import frechet_distance
from ersde_theory.evaluation.quality import (
    QualityReference,
    fd_metric,
    gaussian_interval_logprob,
    hist_kl_metric,
    mode_tv_metric,
    paired_difference,
    projected_quantile_blocks,
    sliced_w2_metric,
    unit_directions,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _gauss(n, mean, cov, seed):
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal(mean, cov, size=n)


def test_fd_metric_of_two_gaussians_and_its_standard_error():
    mu1, c1 = np.array([0.2, -0.1, 0.0]), np.diag([1.0, 0.5, 2.0])
    mu2, c2 = np.zeros(3), np.array([[1.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.5]])
    exact = frechet_distance(mu1, c1, mu2, c2)
    vals, ses = [], []
    for r in range(30):
        m = fd_metric(_gauss(4000, mu1, c1, r), mu2, c2)
        vals.append(m.value)
        ses.append(m.se)
    sd = np.std(vals, ddof=1)
    assert abs(np.mean(vals) - exact) < 4 * sd / np.sqrt(30) + 3 * 3 / 4000  # + O(d/n) bias
    assert 0.7 < np.mean(ses) / sd < 1.4  # delta-method SE is right


def test_sliced_w2_of_two_gaussians():
    """SW2² between N(μ1, Σ1) samples and the exact N(μ2, Σ2) → mean_θ (θ·Δμ)² + (√θᵀΣ1θ − √θᵀΣ2θ)²."""
    mu1, c1 = np.array([0.3, -0.2]), np.array([[1.0, 0.4], [0.4, 0.8]])
    mu2, c2 = np.zeros(2), np.diag([0.5, 1.5])
    dirs = unit_directions(2, 16)
    exact = np.mean([(th @ (mu1 - mu2)) ** 2 + (np.sqrt(th @ c1 @ th) - np.sqrt(th @ c2 @ th)) ** 2 for th in dirs.T])
    n = 20000
    blocks = [projected_quantile_blocks([1.0], [th @ mu2], [np.sqrt(th @ c2 @ th)], n) for th in dirs.T]
    vals, ses = [], []
    for r in range(12):
        m = sliced_w2_metric(_gauss(n, mu1, c1, r), blocks, dirs)
        vals.append(m.value)
        ses.append(m.se)
    sd = np.std(vals, ddof=1)
    assert abs(np.mean(vals) - exact) < 4 * sd / np.sqrt(12) + 2e-3 * exact, (np.mean(vals), exact)
    assert 0.6 < np.mean(ses) / sd < 1.6


def test_quantile_blocks_are_exact_on_a_sharp_mixture():
    gm = ring_2d()
    th = np.array([np.cos(0.3), np.sin(0.3)])
    w, m, sd = gm.weights.numpy(), gm.means.numpy() @ th, np.sqrt(gm.evals.numpy() @ th**2)
    n = 5000
    q, c, v = projected_quantile_blocks(w, m, sd, n)
    cdf = lambda y: sum(wk * mpmath.ncdf((y - mk) / sk) for wk, mk, sk in zip(w, m, sd))  # noqa: E731
    for k in (1, 700, 2500, 4321, n - 1):
        assert abs(float(cdf(q[k - 1])) - k / n) < 1e-11
    # block means are the exact conditional means: Σ c_k / n = E[Y], and V + Σ c_k²/n = E[Y²]
    assert np.mean(c) == pytest.approx(w @ m, abs=1e-12)
    assert v + np.mean(c**2) == pytest.approx(w @ (m**2 + sd**2), rel=1e-12)
    assert 0 < v < 1e-3


def test_mode_tv_against_the_weight_difference():
    gm = ring_2d()
    other = GaussianMixture(np.arange(1, 9, dtype=float), gm.means, gm.evals)  # same modes, other weights
    x = other.sample(40000, generator=torch.Generator().manual_seed(0))
    m = mode_tv_metric(gm.mode_of(x).numpy(), gm.weights.numpy())
    exact = 0.5 * np.abs(other.weights.numpy() - gm.weights.numpy()).sum()
    assert abs(m.value - exact) < 4 * m.se


def test_gaussian_interval_logprob_in_both_tails():
    for lo, hi in ((-1.0, 0.5), (3.0, 3.1), (30.0, 31.0), (-45.0, -44.0), (-0.5, 40.0)):
        with mpmath.workdps(500):
            ref = mpmath.log(mpmath.ncdf(hi) - mpmath.ncdf(lo))
        assert float(gaussian_interval_logprob(lo, hi)) == pytest.approx(float(ref), rel=1e-12)


def test_histogram_kl_against_the_binned_closed_form():
    """Bin probabilities sum to one and the plug-in KL of samples of another mixture converges to the KL of
    the two binned laws (both computed from the exact bin probabilities)."""
    from ersde_theory.evaluation.quality import _hist_logp

    gm = ring_2d()
    edges = np.linspace(-2.6, 2.6, 53)
    logp, lout = _hist_logp(gm, edges)
    assert np.exp(logp).sum() + np.exp(lout) == pytest.approx(1.0, abs=1e-12)
    other = ring_2d(std=0.08)
    logq, qout = _hist_logp(other, edges)
    lq, lp = np.append(logq.ravel(), qout), np.append(logp.ravel(), lout)
    exact = float(np.sum(np.exp(lq) * (lq - lp)))
    x = other.sample(100000, generator=torch.Generator().manual_seed(1))
    m = hist_kl_metric(x.numpy(), logp, lout, edges)
    occupied = np.sum(np.exp(lq) > 1e-6)
    assert abs(m.value - exact) < 4 * m.se + occupied / (2 * 100000), (m.value, exact)


def test_paired_difference_standard_error_against_replicates():
    """Two 'samplers' (scalings of the same exact draws): the paired SE matches the replicate sd."""
    gm = ring_2d()
    ref = QualityReference(gm, 3000, floor_reps=2)
    diffs, ses = {k: [] for k in ref.names}, {k: [] for k in ref.names}
    g = torch.Generator().manual_seed(3)
    for _ in range(25):
        x = gm.sample(3000, generator=g)
        a, b = ref.raw(1.1 * x), ref.raw(1.2 * x + 0.05)
        for k in ("fd", "sw2", "hist_kl"):
            d, se = paired_difference(a[k], b[k])
            diffs[k].append(d)
            ses[k].append(se)
    for k in ("fd", "sw2", "hist_kl"):
        ratio = np.mean(ses[k]) / np.std(diffs[k], ddof=1)
        assert 0.6 < ratio < 1.6, (k, ratio)


def test_floor_is_reached_by_exact_samples_and_missed_by_biased_ones():
    gm = ring_2d()
    ref = QualityReference(gm, 4000, floor_reps=4)
    s, _ = ref.evaluate(gm.sample(4000, generator=torch.Generator().manual_seed(9)))
    for k in ref.names:
        assert s[k]["ci"][0] <= s[k]["floor"] + 3 * s[k]["floor_sd"]
    bad, _ = ref.evaluate(gm.sample(4000, generator=torch.Generator().manual_seed(9)) * 1.15)
    for k in ("fd", "sw2", "hist_kl"):
        assert bad[k]["ci"][0] > bad[k]["floor"] + 3 * bad[k]["floor_sd"]
