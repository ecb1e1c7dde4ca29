"""Studies layer, ``bench fmnist`` (studies/bench_fmnist.py) at its quick preset: every scheduler in diffusers' loop
spends its NFE, the report holds the answers it promises, the figures are drawn. Needs the data set (Debian's
``dataset-fashion-mnist``) for the metric's floor and check."""

import json

import pytest

from ersde_theory.cli import main
from ersde_theory.datasets.fashion_mnist import DEFAULT_DIR
from ersde_theory.models.checkpoints import FMNIST_PATH

pytest.importorskip("diffusers")
pytestmark = [
    pytest.mark.skipif(not (DEFAULT_DIR / "train-images-idx3-ubyte.gz").is_file(), reason="no Fashion-MNIST data"),
    pytest.mark.skipif(not (FMNIST_PATH / "unet").is_dir(), reason="the Fashion-MNIST models are not shipped yet"),
    pytest.mark.usefixtures("one_thread"),
]


def test_bench_fmnist_quick(tmp_path):
    assert main(["bench", "fmnist", "--quick", "--device", "cpu", "--outdir", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "bench_fmnist.json").read_text())
    assert res["nfes"] == [10] and res["blocks"] == 2 and "NOT Inception-FID" in res["metric"]
    vp, flow = res["vp"]["rows"], res["flow"]["rows"]
    assert [r["sampler"] for r in vp] == [
        "ER-SDE-3 er_sde_5",
        "SDE-DPM-Solver++(2M) (DPMSolverMultistepScheduler)",
        "DPM-Solver++(2M) (DPMSolverMultistepScheduler)",
    ]
    assert all(r["nfe_used"] == 10 and len(r["blocks"]) == 2 and r["fd"] > 0 for r in vp + flow)
    assert all("fd_inf" not in r for r in vp + flow)  # eq. (52) needs halves above the 128 feature dimensions
    assert vp[0]["diff_vs_ref"] == 0.0 and vp[1]["diff_ci95"] > 0
    a = res["vp"]["answers"][0]
    assert a["best_stochastic"] in {r["sampler"] for r in vp if r["stochastic"]} and "resolved" in a
    assert {"corrected_minus_published_er_sde_5", "best_ode"}.isdisjoint(a) or a["best_ode"].startswith("DPM")
    md = (tmp_path / "bench_fmnist.md").read_text()
    assert "## fmnist (VP model)" in md and "## fmnist-flow (flow model)" in md and "Metric check" in md
    assert "FD_∞ NFE 10" not in md and "FD_∞ (eq. 52) is not reported: blocks of n = 16" in md
    for name in ("bench_fmnist.png", "bench_fmnist.pdf", "bench_fmnist_grid.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_bench_fmnist_cells_are_cached_and_read_back(tmp_path, monkeypatch):
    """A rerun with the same weights, schedulers, NFE and blocks reads every cell from the cache (no sampling: a
    killed run resumes) and gives the same rows; another block size is another cell."""
    import ersde_theory.studies.bench_fmnist as B

    kw = dict(quick=True, flow=False, cache=tmp_path / "cells", log=None)
    first = B.run_bench_fmnist(tmp_path / "a", **kw)
    assert len(list((tmp_path / "cells").glob("*.pt"))) == 3 and not list((tmp_path / "cells").glob("*.tmp"))

    def no_sampling(*a, **k):
        raise AssertionError("a cached cell was sampled again")

    monkeypatch.setattr(B, "_sample", no_sampling)
    second = B.run_bench_fmnist(tmp_path / "b", **kw)
    keep = ("sampler", "nfe", "nfe_used", "fd", "ci95", "blocks", "diff_vs_ref", "diff_ci95")
    assert [{k: r[k] for k in keep} for r in first["vp"]["rows"]] == [
        {k: r[k] for k in keep} for r in second["vp"]["rows"]
    ]
    assert B._cell_path("c", "fmnist", "w", "s", 10, 16, 2) != B._cell_path("c", "fmnist", "w", "s", 10, 32, 2)
