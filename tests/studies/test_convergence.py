"""Studies layer, the convergence study (studies/convergence.py): fitted orders with bootstrap intervals
(docs/theory.md eqs. (33)–(34)) recover a known slope, and a small run writes its JSON, markdown and figures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ersde_theory.studies.convergence import ConvergenceConfig, order_with_ci, run_study, write_outputs

pytestmark = pytest.mark.usefixtures("one_thread")


def test_order_with_ci_recovers_slope():
    g = torch.Generator().manual_seed(0)
    steps = np.array([16, 32, 64, 128])
    base = torch.from_numpy(3.0 * steps.astype(float) ** -1.7)[:, None]
    sq = (base * (1 + 0.3 * torch.randn(4, 2000, generator=g, dtype=torch.float64))) ** 2
    p, lo, hi = order_with_ci(steps, sq, "strong_rms", [True] * 4, bootstrap=300)
    assert abs(p - 1.7) < 0.05 and lo < 1.7 < hi
    assert order_with_ci(steps, sq, "strong_rms", [True, True, False, False])[0] is None


def test_study_outputs(tmp_path):
    cfg = ConvergenceConfig(
        problems=("bimodal_1d",),
        nsfs=("sde",),
        quadratures=("exact", "official"),
        solvers=(("ER-SDE-1", 1, "published"),),
        steps=(8, 16, 32),
        paths=40,
        bootstrap=50,
        fit_min_steps=8,
    )
    res = run_study(cfg, log=lambda *a: None)
    paths = write_outputs(res, tmp_path)
    data = json.loads((tmp_path / "convergence_orders.json").read_text())
    kinds = {(e["quadrature"], e["error_kind"]) for e in data["entries"]}
    assert len(kinds) == 2 * 5 and all(len(e["errors"]) == 3 for e in data["entries"])
    ref = data["references"][0]
    assert ref["kind"] == "sra1" and ref["ratio_rms"] >= 10
    assert "| bimodal_1d | sde |" in (tmp_path / "convergence_orders.md").read_text()
    assert all(p.exists() for p in paths)


def test_reference_self_order_is_none_without_a_single_order():
    """A self-convergence sequence whose pairwise slopes disagree (11 then 1: the 0.2.0 'order 6.03' of the
    power_3 reference) has no order; a consistent one (≈ 1.5) has."""
    from ersde_theory.studies.convergence import _self_orders

    assert _self_orders([2, 4, 8], [2.2e-5, 2.2e-5 * 2**11.06, 2.2e-5 * 2**12.06])["self_order_rms"] is None
    ok = _self_orders([2, 4, 8, 16], [1e-4 * 2 ** (1.5 * k) for k in range(4)])
    assert ok["self_order_rms"] == pytest.approx(1.5) and ok["self_pairwise_rms"] == pytest.approx([1.5] * 3)
