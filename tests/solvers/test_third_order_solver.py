"""Solvers layer, ER-SDE-Solver-3 with the published and the corrected derivative estimates (docs/theory.md
eqs. (23)–(26)): the published solver is second order and the corrected one third order on the closed-form
probability-flow map of Gaussian data, their error ratio follows the derived leading terms (eq. (17)), both
variants agree bit for bit at order ≤ 2, corrected steps are exact for a quadratic denoiser (eq. (16)), and the
corrected VP solver is α times the VE one on λ (eq. (20))."""

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
from ersde_theory.evaluation.orders import asymptotic_window, extrapolated_order, keeps_sign, pairwise_orders
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


# ----- the orders: published 2, corrected 3 -----------------------------------------------------------------
def _signed_pf_errors(derivatives, ns):
    """(max |error|, sign of the error at the largest initial state) of ER-SDE-3 against the PF-ODE map."""
    r = T.ode_errors(ns, (T.Variant("v", 3, derivatives),), fit_windows=(), n_points=16)["variants"]["v"]
    return r["max_error"], r["sign"]


def test_karras_orders_in_the_asymptotic_window():
    """On Karras steps the corrected error changes sign between N = 80 and 160 (it crosses 0 there and dips
    to 4e-8): a fit through N = 20–160 would say order ≈ 5.8. The window where the error keeps its sign and
    decreases starts at N = 320; there the corrected order is 3 (pairwise 2.4 → 2.95, rising to 3; eq. (50)'s
    bound covers 3 and not 2) and the published one 2."""
    ns = (20, 40, 80, 160, 320, 640, 1280, 2560, 5120)
    err, sign = _signed_pf_errors("corrected", ns)
    assert sign[2] != sign[3], "the corrected Karras error is expected to change sign between N = 80 and 160"
    mask = asymptotic_window(ns, err, same_sign=keeps_sign(sign))
    assert np.asarray(ns)[mask].tolist() == [320, 640, 1280, 2560, 5120]
    cor = extrapolated_order(ns, err, mask)
    assert cor.lo <= 3.0 <= cor.hi and cor.hi - cor.lo < 0.2 and cor.lo > 2.5, cor
    assert 2.8 <= pairwise_orders(ns, err)[-1] <= 3.2
    assert T.windowed_orders(ns, err, ((20, 160),), sign)["20-160"] is None  # no order through a sign change
    err, sign = _signed_pf_errors("published", ns)
    mask = asymptotic_window(ns, err, same_sign=keeps_sign(sign))
    assert mask.all()  # the published error keeps its sign throughout
    assert abs(T.fit_order(np.asarray(ns)[4:], np.asarray(err)[4:]) - 2.0) <= 0.05
    pub = extrapolated_order(ns, err, mask)
    assert pub.lo <= 2.0 <= pub.hi and pub.hi < 2.01, pub


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
def _published_and_corrected(sampler, model, x, *args, **kw):
    """The sampler's outputs with the published and with the corrected derivative estimates, same noise."""
    return [
        sampler(model, x.clone(), *args, derivatives=d, generator=torch.Generator().manual_seed(1), disable=True, **kw)
        for d in ("published", "corrected")
    ]


@pytest.mark.parametrize("quadrature", ["exact", "official", "comfyui"])
@pytest.mark.parametrize("order", [1, 2])
def test_variants_bitwise_equal_up_to_order_2(order, quadrature):
    gm = get_problem("ring_2d")
    sig = get_sigmas_karras(8, 0.002, 80.0)
    x = 80.0 * torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for nsf in ("ode", "er_sde_5", "sde"):
        a, b = _published_and_corrected(sample_er_sde, gm, x, sig, order=order, nsf=nsf, quadrature=quadrature)
        assert torch.equal(a, b)
    al, s, ts = get_vp_schedule(8, "linear", "logsnr")
    model = vp_gmm_model(gm, al, s, ts, "eps")
    a, b = _published_and_corrected(
        sample_er_sde_vp,
        model,
        x / 80.0 * float(s[0]),
        al,
        s,
        timesteps=ts,
        order=order,
        nsf="er_sde_5",
        quadrature=quadrature,
    )
    assert torch.equal(a, b)


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
