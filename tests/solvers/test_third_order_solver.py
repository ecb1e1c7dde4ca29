"""The published ER-SDE-Solver-3 is second order, the corrected one third order (h̃ = 0; docs/theory.md eqs. 23–26)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch

from ersde_theory import (
    ersde_coefficients,
    get_problem,
    get_sigmas_karras,
    get_vp_schedule,
    sample_er_sde,
    sample_er_sde_vp,
)
from ersde_theory.cli import main as cli_main
from ersde_theory.studies import third_order as T
from ersde_theory.studies.vp_models import vp_gmm_model
from ersde_theory.theory.symbolic import multistep as M

DATA = T.GaussianData(m=0.5, s0=0.5)


def _pf_errors(order, derivatives, ns, schedule="karras", **kw):
    """Max end-point error of the public sampler against the closed-form PF-ODE map (φ = σ)."""
    x = DATA.quantile_states(16, kw.get("sigma_max", 80.0))
    out = []
    for n in ns:
        sig = T.steps(n, schedule, **kw)
        xs = sample_er_sde(DATA.model, x.clone(), sig, order=order, nsf="ode", derivatives=derivatives, disable=True)
        exact = DATA.m + (x - DATA.m) * np.sqrt(DATA.s0**2 + sig[-1] ** 2) / np.sqrt(DATA.s0**2 + sig[0] ** 2)
        out.append(float((xs - exact).abs().max()))
    return out


# ----- the orders the issue asks for ---------------------------------------------------------------------
def test_karras_orders_published_2_corrected_above_2_7():
    ns = (20, 40, 80, 160)
    pub = T.fit_order(ns, _pf_errors(3, "published", ns))
    cor = T.fit_order(ns, _pf_errors(3, "corrected", ns))
    assert abs(pub - 2.0) <= 0.3, pub
    assert cor >= 2.7, cor


def test_loguniform_true_third_order_needs_the_start_correction():
    """On log-uniform steps from σ = 2 (x_θ varies at the start) the asymptotic orders show cleanly:
    corrected 3, published 2, and corrected estimates with the Euler start only 2."""
    kw = dict(sigma_min=0.02, sigma_max=2.0)
    ns = (40, 80, 160, 320)
    assert abs(T.fit_order(ns, _pf_errors(3, "corrected", ns, "loguniform", **kw)) - 3.0) < 0.1
    assert abs(T.fit_order(ns, _pf_errors(3, "published", ns, "loguniform", **kw)) - 2.0) < 0.1
    euler = T.ode_errors(
        (160, 320, 640), (T.ER3_COR_EULER,), schedule="loguniform", fit_windows=((160, 640),), n_points=4, **kw
    )["variants"][T.ER3_COR_EULER.label]
    assert abs(euler["fitted_orders"]["160-640"] - 2.0) < 0.2


def test_published_to_order2_error_ratio_matches_derived_constants():
    """Leading local errors (eq. (17); multistep.local_error, a = 1): ER-SDE-3 published a f'' h³/(4σ), ER-SDE-2
    (3a + 2) f'' h³/(12σ): the global errors must approach the ratio 3/5 on Karras steps."""
    e3 = M.leading_term(M.local_error("published", 3))[1]
    e2 = M.leading_term(M.local_error("published", 2))[1]
    ratio = float(sp.simplify(e3 / e2).subs(M.a, 1))
    assert ratio == pytest.approx(0.6)
    pub, two = _pf_errors(3, "published", (320,))[0], _pf_errors(2, "published", (320,))[0]
    assert pub / two == pytest.approx(ratio, abs=0.02)


# ----- both variants agree at order ≤ 2 ------------------------------------------------------------------
@pytest.mark.parametrize("quadrature", ["exact", "official", "comfyui"])
@pytest.mark.parametrize("order", [1, 2])
def test_variants_bitwise_equal_up_to_order_2(order, quadrature):
    gm = get_problem("ring_2d")
    sig = get_sigmas_karras(8, 0.002, 80.0)
    x = 80.0 * torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for nsf in ("ode", "er_sde_5", "sde"):
        a, b = (
            sample_er_sde(
                gm,
                x.clone(),
                sig,
                order=order,
                nsf=nsf,
                quadrature=quadrature,
                derivatives=d,
                generator=torch.Generator().manual_seed(1),
                disable=True,
            )
            for d in ("published", "corrected")
        )
        assert torch.equal(a, b)
    al, s, ts = get_vp_schedule(8, "linear", "logsnr")
    model = vp_gmm_model(gm, al, s, ts, "eps")
    a, b = (
        sample_er_sde_vp(
            model,
            x / 80.0 * float(s[0]),
            al,
            s,
            timesteps=ts,
            order=order,
            nsf="er_sde_5",
            quadrature=quadrature,
            derivatives=d,
            generator=torch.Generator().manual_seed(1),
            disable=True,
        )
        for d in ("published", "corrected")
    )
    assert torch.equal(a, b)


# ----- the published variant is the official algorithm ---------------------------------------------------
# Independent re-implementation from the notes' description of the official code (not from nsf.py or the
# coefficient module): φ written out again, 100-point left Riemann sums, variance clip < 1e-6 → 0, lower
# order while the history fills, a step to σ = 0 returns the denoiser output.
PHI = {
    "ode": lambda x: x,
    "sde": lambda x: x**2,
    "er_sde_5": lambda x: x * (np.exp(x**0.3) + 10),
    "er_sde_4": lambda x: x**0.9 * np.log10(1 + 100 * x**1.5),
}


def _official_step_terms(phi, s, t):
    pts = t + np.arange(100) / 100.0 * (s - t)
    dt = (s - t) / 100.0
    c1 = (t - s) + np.sum(1.0 / phi(pts) * dt) * phi(t)
    c2 = (t - s) ** 2 / 2 + np.sum((pts - s) / phi(pts) * dt) * phi(t)
    r = phi(t) / phi(s)
    var = t**2 - s**2 * r**2
    return r, (0.0 if abs(var) < 1e-6 else var), c1, c2


def official_reference(x0_fn, x, lam, alphas, phi, order, z):
    """ER-SDE-Solver-``order`` in x (VE: alphas ≡ 1; VP: x = α x̄, λ = σ/α) as the official loop does it."""
    old_x0 = old_d = None
    for i in range(len(lam) - 1):
        s, t = lam[i], lam[i + 1]
        x0 = x0_fn(x, i)
        if t == 0:
            x = alphas[i + 1] * x0
            continue
        r, var, c1, c2 = _official_step_terms(phi, s, t)
        new = (alphas[i + 1] / alphas[i]) * r * x + alphas[i + 1] * (1 - r) * x0
        if order >= 2 and old_x0 is not None:
            d = (x0 - old_x0) / (s - lam[i - 1])
            new = new + alphas[i + 1] * c1 * d
            if order >= 3 and old_d is not None:
                new = new + alphas[i + 1] * c2 * (2 * (d - old_d) / (s - lam[i - 2]))
            old_d = d
        x = new + alphas[i + 1] * np.sqrt(var) * z[i]
        old_x0 = x0
    return x


def _noise(shape, n, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(n)]


def _sampler_from(z, sig):
    idx = {float(v): i for i, v in enumerate(np.asarray(sig)[:-1])}
    return lambda sigma, sigma_next: z[idx[float(sigma)]]


@pytest.mark.parametrize("nsf", ["ode", "er_sde_5", "sde", "er_sde_4"])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_published_equals_official_reimplementation_ve(nsf, order):
    gm = get_problem("image_like_64d")
    sig = get_sigmas_karras(12, 0.002, 80.0).numpy()
    x = 80.0 * torch.randn(8, 64, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    z = _noise(x.shape, len(sig) - 1, 4)
    ours = sample_er_sde(
        gm,
        x.clone(),
        sig,
        order=order,
        nsf=nsf,
        quadrature="official",
        noise_sampler=_sampler_from(z, sig),
        disable=True,
    )
    ref = official_reference(
        lambda xi, i: gm.denoise(xi, sig[i]), x.clone(), sig, np.ones_like(sig), PHI[nsf], order, z
    )
    assert torch.allclose(ours, ref, rtol=0, atol=1e-12), float((ours - ref).abs().max())


@pytest.mark.parametrize("final_zero", [False, True])
@pytest.mark.parametrize("order", [2, 3])
def test_published_equals_official_reimplementation_vp(order, final_zero):
    gm = get_problem("image_like_64d")
    al, s, ts = get_vp_schedule(12, "linear", "time", final_zero=final_zero)
    al, s, ts = al.numpy(), s.numpy(), ts.numpy()
    model = vp_gmm_model(gm, al, s, ts, "eps")
    x = float(s[0]) * torch.randn(8, 64, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    z = _noise(x.shape, len(s) - 1, 6)
    ours = sample_er_sde_vp(
        model,
        x.clone(),
        al,
        s,
        prediction="eps",
        timesteps=ts,
        order=order,
        nsf="er_sde_5",
        quadrature="official",
        noise_sampler=_sampler_from(z, s),
        disable=True,
    )

    def x0_fn(xi, i):
        eps = model(xi, torch.full((xi.shape[0],), ts[i], dtype=torch.float64))
        return (xi - s[i] * eps) / al[i]

    ref = official_reference(x0_fn, x.clone(), s / al, al, PHI["er_sde_5"], order, z)
    assert torch.allclose(ours, ref, rtol=0, atol=1e-12), float((ours - ref).abs().max())


# ----- the corrected estimates are exact where they should be -------------------------------------------
def test_corrected_steps_exact_for_quadratic_denoiser():
    """x_θ = q(σ) quadratic: from the third step on, a corrected step equals r x + C_0 q + C_1 q' + C_2 q''
    (eq. (12), exact); a published step does not. Linear q: the whole corrected run is
    exact, start included."""
    coef = (0.3, -0.7, 0.05)
    q = lambda sg: coef[0] + coef[1] * sg + coef[2] * sg**2  # noqa: E731
    dq = lambda sg: coef[1] + 2 * coef[2] * sg  # noqa: E731
    sig = T.steps(10, "karras", 0.01, 5.0)
    model = lambda x, sg: q(sg)[:, None] * torch.ones_like(x)  # noqa: E731
    for nsf in ("ode", "er_sde_5"):
        c = ersde_coefficients(sig, nsf)
        for derivatives, tol in (("corrected", 1e-12), ("published", None)):
            xs = []
            sample_er_sde(
                model,
                torch.ones(1, 1, dtype=torch.float64),
                sig,
                order=3,
                nsf=nsf,
                derivatives=derivatives,
                noise_sampler=lambda a, b: torch.zeros(1, 1, dtype=torch.float64),
                callback=lambda d, xs=xs: xs.append(float(d["x"])),
                disable=True,
            )
            step = [
                xs[i + 1] - (c.r[i] * xs[i] + c.c1[i] * dq(sig[i]) + 2 * coef[2] * c.c2[i] + (1 - c.r[i]) * q(sig[i]))
                for i in range(2, len(xs) - 1)
            ]
            if tol:
                assert np.max(np.abs(step)) < tol
            else:
                assert np.max(np.abs(step)) > 1e-6
        lin = lambda x, sg: (coef[0] + coef[1] * sg)[:, None] * torch.ones_like(x)  # noqa: E731
        out = sample_er_sde(
            lin,
            torch.ones(1, 1, dtype=torch.float64),
            sig,
            order=3,
            nsf=nsf,
            derivatives="corrected",
            noise_sampler=lambda a, b: torch.zeros(1, 1, dtype=torch.float64),
            disable=True,
        )
        exact = 1.0
        for i in range(len(sig) - 1):
            exact = c.r[i] * exact + (1 - c.r[i]) * (coef[0] + coef[1] * sig[i]) + c.c1[i] * coef[1]
        assert float(out) == pytest.approx(exact, abs=1e-12)


def test_corrected_vp_equals_ve_on_lambda():
    gm = get_problem("ring_2d")
    al, s, ts = get_vp_schedule(10, "linear", "logsnr")
    x = torch.randn(32, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * float(s[0])
    vp = sample_er_sde_vp(
        vp_gmm_model(gm, al, s, ts, "x0"),
        x,
        al,
        s,
        prediction="x0",
        timesteps=ts,
        derivatives="corrected",
        generator=torch.Generator().manual_seed(1),
        disable=True,
    )
    ve = (
        sample_er_sde(
            gm, x / al[0], s / al, derivatives="corrected", generator=torch.Generator().manual_seed(1), disable=True
        )
        * al[-1]
    )
    assert torch.allclose(vp, ve, rtol=0, atol=1e-10)


# ----- the derivation ----------------------------------------------------------------------------------------
def test_symbolic_derivation():
    assert all(v == 0 for v in M.corrected_identity().values())
    assert M.implied_orders("published", 3)["global_order"] == 2
    assert M.implied_orders("corrected", 3)["global_order"] == 3
    assert M.implied_orders("published", 2)["global_order"] == 2
    assert M.leading_term(M.start_local_error(False))[0] == 2 and M.leading_term(M.start_local_error(True))[0] == 3
    assert M.leading_term(M.truncation_error("published", 1))[0] == 1
    assert M.leading_term(M.truncation_error("corrected", 1))[0] == 2
    # every stored output enters a step with an O(h) weight
    assert all(M.leading_term(w)[0] == 1 for w in M.stored_output_weights("corrected", 3))
    # generic φ: C_1 ≈ −φ'/(2φ) h², and the corrected local error keeps h^4 with 1/σ → φ'/φ
    phi_s = sp.Function("phi", positive=True)(M.s)
    q, c = M.leading_term(M.step_coefficient_series(1, 3, None))
    assert q == 2 and sp.simplify(c + sp.diff(phi_s, M.s) / (2 * phi_s)) == 0
    assert M.leading_term(M.local_error("corrected", 3, phi=None))[0] == 4
    assert M.multistep_derivation().verify()


@pytest.mark.parametrize("nsf", ["ode", "er_sde_5"])
def test_coefficient_series_match_the_coefficient_module(nsf):
    """C_n series (symbolic layer) against the coefficient module (closed form / Gauss–Legendre)."""
    sv, hv = 1.3, 0.02
    c = ersde_coefficients([sv, sv - hv], nsf)
    for n, arr in ((1, c.c1), (2, c.c2)):
        series = float(M.step_coefficient_series(n, 5, nsf).subs({M.s: sv, M.h: hv}))
        assert series == pytest.approx(float(arr[0]), rel=(hv / sv) ** (5 - n))


# ----- the study's machinery -----------------------------------------------------------------------------------
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
    mean, half = res["problems"]["image_like_64d"]["results"]["ode/5"]["diff corrected - published"]
    assert mean + half < 0


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
    assert "ER-SDE-3 corrected" in md and (tmp_path / "third_order.json").exists()
