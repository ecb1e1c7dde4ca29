"""Studies layer, the third-order study (studies/third_order.py): its closed-form Gaussian data, its variant
runner, the exact linear-SDE reference and noise coupling (docs/theory.md eqs. (8), (10)), the exact final
standard deviation, strong order 1 of SDE-like NSFs, the corrected solver's FD gain at NFE 5 with an interval
(eq. (33)) and FD_∞ (eq. (52)) beside FD, and a small run through the command line writing JSON and markdown."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ersde_theory import ersde_coefficients, sample_er_sde
from ersde_theory.cli import main as cli_main
from ersde_theory.studies import third_order as T

DATA = T.GaussianData(m=0.5, s0=0.5)


def test_closed_form_gaussian_denoiser_equals_mixture():
    x = DATA.quantile_states(16, 3.0)
    sig = torch.linspace(0.01, 50.0, 16, dtype=torch.float64)
    assert torch.allclose(DATA.model(x, sig), DATA.mixture().denoise(x, sig), rtol=1e-13, atol=1e-13)


def test_run_variant_equals_public_sampler():
    sig = T.steps(12)
    x = DATA.quantile_states(8, 80.0)
    for v in T.MAIN_VARIANTS:
        a = T.run_variant(v, DATA.model, x.clone(), sig, nsf="er_sde_5", generator=torch.Generator().manual_seed(0))
        b = sample_er_sde(
            DATA.model,
            x.clone(),
            sig,
            order=v.order,
            nsf="er_sde_5",
            derivatives=v.derivatives,
            generator=torch.Generator().manual_seed(0),
            disable=True,
        )
        assert torch.equal(a, b)


@pytest.mark.parametrize("nsf", ["er_sde_5", "sde"])
def test_exact_sde_reference_and_coupling(nsf):
    sig = T.steps(40)
    q = T.linear_sde_steps(sig, nsf, DATA)
    std = ersde_coefficients(sig, nsf).noise_std
    assert np.allclose(np.sqrt(q["var_xi"]), std, rtol=1e-10, atol=0)
    var = DATA.s0**2 + sig[0] ** 2  # exact marginal at σ_max ...
    for j in range(len(sig) - 1):
        var = q["gain"][j] ** 2 * var + q["var_eta"][j]
    assert var == pytest.approx(DATA.s0**2 + sig[-1] ** 2, rel=1e-12)  # ... carried to the exact one at σ_min
    # coarse noise composed from fine noise has the coarse step's variance
    r = ersde_coefficients(sig, nsf).r
    stride = 4
    comp = np.zeros(10)
    for l in range(stride):
        comp = r[l::stride] ** 2 * comp + q["var_xi"][l::stride]
    assert np.allclose(np.sqrt(comp), ersde_coefficients(sig[::stride], nsf).noise_std, rtol=1e-10)


def test_exact_final_std_matches_monte_carlo():
    sig = T.steps(10)
    exact = T.final_std(T.ER3_PUB, sig, "sde", DATA)
    g = torch.Generator().manual_seed(0)
    x = DATA.m + float(DATA.marginal_std(sig[0])) * torch.randn(40000, 1, generator=g, dtype=torch.float64)
    xs = T.run_variant(T.ER3_PUB, DATA.model, x, sig, nsf="sde", generator=g)
    sd = float(xs.std())
    assert abs(sd - exact) < 4 * sd / np.sqrt(2 * 40000)


def test_strong_order_is_one_for_sde_like_nsfs():
    res = T.strong_errors(
        (10, 20, 40, 80), variants=(T.ER3_PUB, T.ER3_COR), nsfs=("sde",), n_paths=300, fit_window=(10, 80), boot=100
    )
    for r in res["nsfs"]["sde"].values():
        assert 0.8 < r["fitted_order"] < 1.3


def test_corrected_improves_fd_at_nfe5_with_ci():
    res = T.nfe_quality(
        ("image_like_64d",), (5,), ("ode",), (T.ER3_PUB, T.ER3_COR), n_samples={"image_like_64d": 500}, seeds=3
    )
    row = res["problems"]["image_like_64d"]["results"]["ode/5"]
    mean, half = row["diff corrected - published"]
    assert mean + half < 0
    for v in (T.ER3_PUB, T.ER3_COR):  # FD_∞ (eq. (52)) beside FD: the floor of 500 samples in 64-D removed
        floor = res["problems"]["image_like_64d"]["noise_floor"][0]
        assert row[f"FD_∞ {v.label}"][0] < row[v.label][0] - floor / 2, (row, floor)


def test_cli_writes_json_and_markdown(tmp_path, monkeypatch):
    small = dict(
        T.PRESETS["quick"],
        ode_ns=(10, 20, 40),
        weak_ns=(10, 20),
        strong_ns=(10, 20),
        n_paths=50,
        nfes=(5,),
        seeds=2,
        n_samples={"ring_2d": 200, "image_like_64d": 100},
    )
    monkeypatch.setitem(T.PRESETS, "quick", small)
    assert cli_main(["third-order", "--preset", "quick", "--outdir", str(tmp_path), "--threads", "0"]) == 0
    md = (tmp_path / "third_order.md").read_text()
    assert "ER-SDE-3 corrected" in md and "FD_∞ ER-SDE-3 corrected" in md and (tmp_path / "third_order.json").exists()
