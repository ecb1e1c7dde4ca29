"""Evaluation layer, the standard errors of the quality metrics (evaluation/quality.py) against Monte-Carlo
replicates, with tolerances from the replicates' own sampling error: the delta-method SE sd(IF)/√n of every
metric (FD, sliced W2², mode TV, histogram KL), single and paired, must match the sd of the metric over R
independent sample sets; at the noise floor (docs/theory.md eq. (32)), where the delta method fails, the
reported SE (delta ⊕ floor sd, as ``QualityReference.evaluate`` and ``bench quality`` report it) must still
cover the replicate spread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ersde_theory import ring_2d
from ersde_theory.evaluation.quality import QualityReference, fd_metric, paired_difference
from ersde_theory.studies.bench_quality import compare_cell
from ersde_theory.toys.gmm import GaussianMixture

GM = ring_2d()
N = 1000
R = 200  # replicates: the replicate sd has relative sampling error 1/√(2(R − 1)) = 5 %
TOL = 3.5 / np.sqrt(2 * (R - 1))  # ±3.5 of those (plus a small delta-method bias allowance below)
METRICS = ("fd", "sw2", "mode_tv", "hist_kl")


def _biased(scale: float, shift: float, reweight: float) -> GaussianMixture:
    """ring_2d with wider modes, moved outwards and off-centre, with unequal weights: far from the floor for every
    metric and away from the points where a metric is not differentiable (equal mode weights, equal means)."""
    w = GM.weights.numpy() * (1.0 + reweight * (-1.0) ** np.arange(8))  # every mode weight off by ≥ 4 sd
    means = GM.means.numpy() * (1.0 + shift) + np.array([0.15, -0.1])  # a mean offset: FD's mean term is not 0
    return GaussianMixture(w, means, GM.covariances.numpy() * scale**2)


@pytest.fixture(scope="module")
def ref():
    return QualityReference(GM, N, floor_reps=30)


@pytest.fixture(scope="module")
def replicates(ref):
    a, b = _biased(1.6, 0.04, 0.4), _biased(2.0, 0.08, 0.6)
    out = []
    for r in range(R):  # paired: both "samplers" draw from the same seed
        xa = a.sample(N, generator=torch.Generator().manual_seed(100 + r))
        xb = b.sample(N, generator=torch.Generator().manual_seed(100 + r))
        out.append((ref.raw(xa), ref.raw(xb)))
    return out


@pytest.mark.parametrize("metric", METRICS)
def test_delta_method_se_matches_replicate_sd(replicates, metric):
    vals = np.array([ra[metric].value for ra, _ in replicates])
    ses = np.array([ra[metric].se for ra, _ in replicates])
    ratio = ses.mean() / vals.std(ddof=1)
    assert abs(ratio - 1.0) < TOL + 0.05, (metric, ratio)


@pytest.mark.parametrize("metric", METRICS)
def test_paired_se_matches_replicate_sd_of_differences(replicates, metric):
    d, se = np.array([paired_difference(ra[metric], rb[metric]) for ra, rb in replicates]).T
    ratio = se.mean() / d.std(ddof=1)
    assert abs(ratio - 1.0) < TOL + 0.05, (metric, ratio)


def test_floor_terms_against_replicates_of_exact_samples(ref):
    """The floor (eq. 32) is the mean and sd of each metric over exact sample sets: both within their CIs of
    60 fresh replicates; bench quality's standard errors (compare_cell) are the delta-method SE with the
    floor sd added in quadrature, and cover the replicate spread of exact samples."""
    g = torch.Generator().manual_seed(5)
    reps = [ref.raw(GM.sample(N, generator=g)) for _ in range(60)]
    for k in METRICS:
        v = np.array([r[k].value for r in reps])
        sd = v.std(ddof=1)
        mean, floor_sd = ref.floor[k]
        assert abs(mean - v.mean()) < 3.5 * np.hypot(sd / np.sqrt(60), floor_sd / np.sqrt(30)), k
        assert 0.6 < floor_sd / sd < 1.5, (k, floor_sd / sd)  # sd from 30 sets vs 60: ±13 % and ±9 % per 1 sd
        for r in reps[:5]:
            other = ref.raw(1.3 * GM.sample(N, generator=g))
            cell = compare_cell({"exact": r, "other": other}, ref)
            assert cell["exact"][k]["se"] == pytest.approx(np.hypot(r[k].se, floor_sd), rel=1e-12), k
            assert cell["exact"][k]["floor_sd"] == floor_sd
            _, dse = paired_difference(other[k], r[k])
            assert cell["other"][k]["diff_se"] == pytest.approx(np.hypot(dse, floor_sd), rel=1e-12), k
            assert cell["exact"][k]["se"] >= 0.8 * sd, (k, cell["exact"][k]["se"], sd)


def test_evaluate_adds_the_floor_sd():
    ref = QualityReference(GM, 300, floor_reps=3)
    x = GM.sample(300, generator=torch.Generator().manual_seed(2))
    summary, raw = ref.evaluate(x)
    for k in ref.names:
        assert summary[k]["se"] == pytest.approx(np.hypot(raw[k].se, ref.floor[k][1]), rel=1e-12)


def test_fd_se_when_the_covariance_term_dominates():
    """Equal means, different covariances: FD's variance comes from its covariance term q_iᵀ G q_i alone, so
    a wrong factor there shows (the mixture tests above are dominated by the mean term)."""
    rng = np.random.default_rng(0)
    c1, c2 = np.array([[1.0, 0.4], [0.4, 0.8]]), np.diag([0.5, 1.5])
    chol = np.linalg.cholesky(c1)
    ms = [fd_metric(rng.normal(size=(N, 2)) @ chol.T, np.zeros(2), c2) for _ in range(R)]
    ratio = np.mean([m.se for m in ms]) / np.std([m.value for m in ms], ddof=1)
    assert abs(ratio - 1.0) < TOL + 0.05, ratio
