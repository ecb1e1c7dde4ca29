"""Studies layer, ``flow-expansion`` (studies/flow_expansion.py) at its quick preset: both expansions on both grids,
the report's tables, the toy quality per NFE, the exact mean factor against its closed form for the ODE, and
the figure."""

import json
import math

import pytest

from ersde_theory.cli import main
from ersde_theory.studies.flow_expansion import EXPANSIONS, exact_mean_factor

pytestmark = pytest.mark.usefixtures("one_thread")


def test_exact_mean_factor_is_the_std_ratio_for_the_ode():
    """For φ = λ the mean factor from σ = 1 is the probability-flow map's std ratio sqrt(α_t² c² + σ_t²)/1."""
    for s in (0.02, 0.3, 0.9):
        assert exact_mean_factor("ode", s) == pytest.approx(math.sqrt((1 - s) ** 2 * 0.25 + s * s), rel=1e-14)
    assert exact_mean_factor("sde", 0.3) == 0.0  # zero gain from λ = ∞ (eq. (37)): the mean forgets the start


def test_flow_expansion_quick_writes_report(tmp_path):
    assert main(["flow-expansion", "--preset", "quick", "--outdir", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "flow_expansion.json").read_text())
    assert res["ns"] == [16, 32, 64, 128, 256]
    assert [(r["case"], r["shift"]) for r in res["rows"]] == [
        ("ode", 1.0), ("ode", 3.0), ("er_sde_1 mean", 1.0), ("er_sde_1 mean", 3.0)
    ]  # fmt: skip
    ode = res["rows"][0]
    for e in EXPANSIONS:
        assert len(ode[e]["errors"]) == 5 and len(ode[e]["pairwise"]) == 4
    # the unshifted ODE: the flow expansion's last pairwise order is above 3, the λ expansion's below 2.3
    assert ode["flow"]["pairwise"][-1] > 3.0 > 2.3 > ode["lambda"]["pairwise"][-1]
    assert ode["ratio_at_finest"] > 5 and ode["reference_change"] < 1e-12
    toy = res["toy"]
    assert list(toy) == ["1", "3"] and [(r["nsf"], r["nfe"]) for r in toy["1"]] == [("er_sde_5", 10), ("ode", 10)]
    for r in toy["1"] + toy["3"]:  # paired Δ = difference of the block means
        assert r["flow_minus_lambda"][0] == pytest.approx(r["flow"][0] - r["lambda"][0], abs=1e-12)
    md = (tmp_path / "flow_expansion.md").read_text()
    assert "eqs. (53)–(57)" in md and "extrapolated order" in md
    assert (tmp_path / "flow_expansion.png").stat().st_size > 0


def test_committed_bounds_cover_the_true_orders():
    """The bounds figures/flow_expansion.json gives for the flow expansion cover its order 3, and the λ expansion's
    ODE bound covers 2. The flow er_sde_1 mean row needs the rounding rule: with N = 4096 (error 1.3e-11 < 100 N ε)
    its bound was [2.990, 2.996]. The λ expansion's er_sde_1 mean row is the documented miss of eq. (50) (docs §9):
    its bound [2.0007, 2.0052] excludes 2; run on to N = 32768 its pairwise orders overshoot and come back (2.0019,
    2.0016, 1.9999), which five geometric points up to 4096 cannot show."""
    import json
    from pathlib import Path

    res = json.loads((Path(__file__).parents[2] / "figures" / "flow_expansion.json").read_text())
    given = 0
    for row in res["rows"]:
        for expansion, truth in (("lambda", 2.0), ("flow", 3.0)):
            o = row[expansion]
            if expansion == "lambda" and row["case"] != "ode":
                assert o["lo"] is None or not o["lo"] <= truth <= o["hi"], "the documented miss is gone: update docs"
                continue
            if o["lo"] is not None:
                given += 1
                assert o["lo"] <= truth <= o["hi"], (row["case"], row["shift"], expansion, o["lo"], o["hi"])
    assert given >= 5
