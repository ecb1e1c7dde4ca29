"""Studies layer, the benches: bench quality writes valid records and figures, bench speed's per-step
quadrature loop equals the official coefficients and it reports its ratios, the NSF search's candidates are
admissible (docs/theory.md eq. (5)) with the stated h̃², and the official-vs-exact variants mix the right
coefficients, and its paired differences are scipy's paired t-test."""

import json
import math

import numpy as np
import pytest
import torch

from ersde_theory import get_sigmas_karras, ring_2d, sample_er_sde

pytestmark = pytest.mark.usefixtures("one_thread")


def test_bench_quality_quick_writes_valid_json(tmp_path):
    from ersde_theory.cli import main
    from ersde_theory.plots.benches import plot_quality
    from ersde_theory.solvers.registry import SAMPLERS

    assert main(["bench", "quality", "--quick", "--outdir", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "bench_quality_quick.json").read_text())
    cfg = data["config"]
    assert len(data["records"]) == len(cfg["n"]) * len(cfg["denoisers"]) * len(cfg["nfes"]) * len(SAMPLERS)
    for r in data["records"]:
        assert r["nfe_used"] <= r["nfe"]
        for m in r["metrics"].values():
            assert all(math.isfinite(m[k]) for k in ("value", "se", "floor", "diff_vs_best"))
            assert m["ci"][0] <= m["value"] <= m["ci"][1] and m["verdict"] in ("best", "tie", "worse")
        fd = r["metrics"]["fd"]  # FD_∞ (eq. (52)) beside FD: its interval over blocks reaches below FD (n samples)
        assert fd["fd_inf_ci"][0] <= fd["fd_inf"] <= fd["fd_inf_ci"][1] and fd["fd_inf_ci"][0] < fd["value"]
    for prob in cfg["n"]:  # ... and FD_∞ lies below FD by a floor, typically (single blocks may not, near FD 0)
        drop = [
            r["metrics"]["fd"]["value"] - r["metrics"]["fd"]["fd_inf"] for r in data["records"] if r["problem"] == prob
        ]
        assert np.median(drop) > 0
    cell = [r for r in data["records"] if (r["problem"], r["denoiser"], r["nfe"]) == ("ring_2d", "exact", 10)]
    assert sum(r["metrics"]["fd"]["verdict"] == "best" for r in cell) == 1
    md = (tmp_path / "bench_quality_quick.md").read_text()
    assert "NFE 10" in md and "noise floor" in md and "FD_∞ [95 % CI]" in md and cfg["fd_blocks"] == 2
    paths = plot_quality(data, tmp_path)  # the study writes data; the figure is drawn from it
    assert (tmp_path / "bench_quality_quick_ring_2d.png") in paths and all(p.exists() for p in paths)


def test_per_step_quadrature_loop_equals_official_coefficients():
    from ersde_theory.studies.bench_speed import er_sde_3_per_step_quadrature

    gm = ring_2d()
    sig = get_sigmas_karras(12, 0.002, 80.0)
    x = 80 * torch.randn(32, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = {
        float(s): torch.randn(32, 2, generator=torch.Generator().manual_seed(i), dtype=torch.float64)
        for i, s in enumerate(sig.tolist())
    }
    ns = lambda s, t: z[float(s)]  # noqa: E731
    a = er_sde_3_per_step_quadrature(gm, x, sig, noise_sampler=ns)
    b = sample_er_sde(gm, x, sig, order=3, quadrature="official", noise_sampler=ns, disable=True)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_bench_speed_runs_and_reports_ratios(tmp_path):
    from ersde_theory.studies import bench_speed

    data = bench_speed.run_speed(tmp_path, quick=True, repeats=1, workloads={"tiny": (2000, 2)}, log=None)
    rec = data["results"][0]
    from ersde_theory.solvers.registry import SAMPLERS

    assert len(rec["samplers"]) == len(SAMPLERS) + 2 and rec["ratio_er_sde_3_vs_dpmpp_2m_sde"] > 0
    assert "target ≤ 0.5" in (tmp_path / "bench_speed_quick.md").read_text()


def test_nsf_candidates_are_admissible_with_the_stated_relative_noise():
    from ersde_theory.studies.nsf_search import candidate_nsf, candidates

    sig = np.geomspace(0.002, 80.0, 50)
    for c in candidates():
        nsf = candidate_nsf(c)
        nsf.check_admissible(0.002, 80.0)
        h2 = nsf.h_tilde_sq(sig)
        p = c["params"]
        if c["family"] == "exp":
            e = np.exp(sig ** p["a"])
            np.testing.assert_allclose(h2, p["a"] * sig ** p["a"] * e / (e + p["b"]), rtol=1e-10, atol=1e-14)
        if c["family"] == "ode_below":
            s = (sig / p["sigma_c"]) ** 4
            np.testing.assert_allclose(h2, p["tau2"] * s / (1 + s), rtol=1e-10, atol=1e-14)


def test_official_variants_mix_the_right_coefficients():
    from ersde_theory.studies.official_vs_exact import coefficient_variants

    v = coefficient_variants(get_sigmas_karras(8, 0.002, 80.0))
    ex, off = v["exact"], v["official"]
    assert np.array_equal(v["riemann_only"].c2, off.c2) and np.array_equal(v["riemann_only"].noise_std, ex.noise_std)
    assert np.array_equal(v["clip_only"].c1, ex.c1) and np.array_equal(v["clip_only"].noise_std, off.noise_std)
    assert np.sum((off.noise_std == 0) & (ex.noise_std > 0)) == 1  # the last stochastic step is clipped


def test_official_paired_difference_is_scipys_paired_t_test():
    """Each metric's record: mean paired difference, its standard error and the Student-t 95 % interval of scipy's
    paired t-test, and the seeds where the variant won (a wrong ddof, √n or quantile fails it)."""
    import scipy.stats

    from ersde_theory.studies.official_vs_exact import _paired_diff

    rng = np.random.default_rng(3)
    exact = rng.normal(1.0, 0.2, 7)
    variant = exact + rng.normal(-0.05, 0.1, 7)
    rec = _paired_diff(list(variant), list(exact))
    d = variant - exact
    ci = scipy.stats.ttest_rel(variant, exact).confidence_interval(0.95)
    assert rec["diff"] == pytest.approx(d.mean(), rel=1e-12)
    assert rec["se"] == pytest.approx(scipy.stats.sem(d), rel=1e-12)
    assert rec["ci"] == pytest.approx([ci.low, ci.high], rel=1e-12)
    assert (rec["exact"], rec["variant"]) == pytest.approx((exact.mean(), variant.mean()), rel=1e-12)
    assert rec["wins"] == int((d < 0).sum()) and 0 < rec["wins"] < 7
