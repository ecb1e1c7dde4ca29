"""Solvers layer, ER-SDE on flow-matching models (docs/theory.md §9): sample_er_sde_vp(prediction="flow") against the
VE sampler on (x/α, λ = σ/α) with the VE denoiser (eqs. (19), (35), (36)), ER-SDE-1 with φ = λ against the flow
Euler step (eq. (41)), the start at σ = 1 (eqs. (37)–(40)) against a start at σ = 1 − 1e-9, measured ODE orders
against a DOP853 reference of the flow ODE (eq. (34)), and the bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
from scipy.integrate import solve_ivp

from ersde_theory import (
    SIGMA,
    GaussianMixture,
    bimodal_1d,
    flow_velocity,
    get_flow_schedule,
    ring_2d,
    sample_er_sde,
    sample_er_sde_vp,
    sample_flow_euler,
    vp_step_coefficients,
)
from ersde_theory.coefficients.schedules import flow_shift
from ersde_theory.evaluation.orders import fit_order, pairwise_orders
from ersde_theory.solvers.ersde import to_x0
from tests.helpers import FixedNoise

pytestmark = pytest.mark.usefixtures("one_thread")

GM = ring_2d()
VEL = flow_velocity(GM)


def _callable_nsf(s):
    return s * (np.exp(-1.0 / s) + 4.0)  # a numpy callable φ (finite-difference h̃²)


NSFS = {
    "registry er_sde_5": "er_sde_5",
    "registry sde": "sde",
    "sympy expression": SIGMA * (sp.exp(SIGMA ** sp.Rational(1, 5)) + 3),
    "callable": _callable_nsf,
}


def _x(n=24, seed=0, scale=1.0):
    return scale * torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("nsf", list(NSFS.values()), ids=list(NSFS))
@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("derivatives", ["published", "corrected"])
def test_flow_equals_ve_on_the_map(nsf, order, derivatives):
    """α_0 > 0: sample_er_sde_vp with the exact flow velocity (posterior in flow variables, eq. (44)) equals α_N ×
    sample_er_sde on (x/α, λ) with the VE denoiser (eq. (19)), same noise, to 1e-12 (float64)."""
    a, s, _ = get_flow_schedule(9, shift=3.0)
    a, s = a[1:], s[1:]  # start below σ = 1 (α_0 > 0)
    x = _x(scale=float(s[0]))
    flow = sample_er_sde_vp(
        VEL, x, a, s, prediction="flow", order=order, nsf=nsf, derivatives=derivatives,
        noise_sampler=FixedNoise(x.shape, seed=1), disable=True,
    )  # fmt: skip
    ve = sample_er_sde(
        GM, x / a[0], (s / a).numpy(), order=order, nsf=nsf, derivatives=derivatives,
        noise_sampler=FixedNoise(x.shape, seed=1), disable=True,
    )  # fmt: skip
    torch.testing.assert_close(flow, ve * float(a[-1]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("start", [1.0, 0.9])
def test_er_sde_1_with_phi_lambda_is_flow_euler(start):
    """Eq. (41): ER-SDE-1 with φ = λ ("ode") is x_{i+1} = x_i + (σ_{i+1} − σ_i) v_i, written out here; also from
    σ_0 = 1 (the limit of eq. (37) with L = 1), and equal to sample_flow_euler."""
    s = np.append(flow_shift(np.linspace(start, 0.05, 12), 2.0), 0.0)
    x = _x()
    out = sample_er_sde_vp(VEL, x, 1 - s, s, prediction="flow", order=1, nsf="ode", disable=True)
    y = x.clone()
    for i in range(len(s) - 1):
        y = y + (s[i + 1] - s[i]) * VEL(y, torch.full((y.shape[0],), s[i], dtype=torch.float64))
    torch.testing.assert_close(out, y, rtol=0, atol=1e-12)
    torch.testing.assert_close(sample_flow_euler(VEL, x, s, disable=True), y, rtol=0, atol=1e-12)


START_CASES = [("ode", 1, "published"), ("ode", 3, "corrected"), ("er_sde_1", 2, "published")]
START_CASES += [("er_sde_5", 3, "corrected"), ("sde", 3, "published"), ("er_sde_5", 1, "published")]


@pytest.mark.parametrize("nsf,order,derivatives", START_CASES)
def test_start_at_sigma_1_is_the_limit(nsf, order, derivatives):
    """A schedule from σ_0 = 1 (α_0 = 0, λ_0 = ∞; eqs. (37)–(40)) agrees with the same schedule from σ_0 = 1 − 1e-9
    to 1e-6 with the same noise (measured: ≤ 1e-7)."""
    _, s, t = get_flow_schedule(10, shift=3.0)
    x = _x()
    outs = []
    for s0 in (1.0, 1.0 - 1e-9):
        sig = s.clone()
        sig[0] = s0
        outs.append(
            sample_er_sde_vp(
                flow_velocity(GM, 1000.0),
                x,
                1 - sig,
                sig,
                prediction="flow",
                timesteps=t,
                order=order,
                nsf=nsf,
                derivatives=derivatives,
                noise_sampler=FixedNoise(x.shape, seed=2),
                disable=True,
            )  # fmt: skip
        )
    assert torch.isfinite(outs[0]).all()
    diff = (outs[0] - outs[1]).abs().max().item()
    assert diff <= 1e-6, diff


def test_start_at_sigma_1_first_step_by_hand():
    """The first step from σ_0 = 1 written out (eq. (38)): er_sde_1 has the gain (σ_1/σ_0)(e^{−1/λ_1} + 10)/11 and
    noise std sqrt(σ_1² − gain²), sde the gain 0 and noise std σ_1; both weigh D_0 = x − v by α_1."""
    s = np.array([1.0, 0.6, 0.0])
    x, z = _x(), _x(seed=5)
    d0 = x - VEL(x, torch.ones(x.shape[0], dtype=torch.float64))
    lam1 = 0.6 / 0.4
    for nsf, gain in [("er_sde_1", 0.6 * (np.exp(-1 / lam1) + 10) / 11), ("sde", 0.0)]:
        c = vp_step_coefficients(1 - s, s, nsf, order=1)
        got = c.step(0, x, d0, [], z)
        want = gain * x + 0.4 * d0 + np.sqrt(0.36 - gain**2) * z
        torch.testing.assert_close(got, want, rtol=0, atol=1e-14)


def _flow_ode_reference(gm, x0, s0, s1):
    vel = flow_velocity(gm)
    m, d = x0.shape

    def f(s, y):
        return vel(torch.from_numpy(y.reshape(m, d)), torch.full((m,), s, dtype=torch.float64)).numpy().ravel()

    sol = solve_ivp(f, (s0, s1), x0.numpy().ravel(), method="DOP853", rtol=1e-13, atol=1e-13)
    return torch.from_numpy(sol.y[:, -1].reshape(m, d))


@pytest.mark.parametrize("order,derivatives,lo,hi", [(2, "published", 1.6, 2.4), (3, "corrected", 2.6, 3.6)])
def test_flow_ode_orders(order, derivatives, lo, hi):
    """φ = λ on SD3's shifted flow schedule (shift 3) from σ = 1 down to σ = 0.02 (no final step to 0, which would
    hide the error): RMS error against DOP853 on the flow ODE dx/dσ = v (eq. (35)) at N = 64, 128, 256, order fitted
    by eq. (34). Measured: ER-SDE-2 1.71, corrected ER-SDE-3 3.15 (ER-SDE-1: 0.99); pre-asymptotic for ER-SDE-3,
    whose λ expansion tends to order 2 beyond N ≈ 4096 (docs §9)."""
    gm = bimodal_1d()
    x0 = torch.randn(64, gm.D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    smin = 0.02
    ref = _flow_ode_reference(gm, x0, 1.0, smin)
    steps = [64, 128, 256]
    errs = []
    for n in steps:
        sig = flow_shift(np.linspace(1.0, 0.0, n + 1), 3.0) * (1.0 - smin) + smin
        out = sample_er_sde_vp(
            flow_velocity(gm), x0, 1 - sig, sig, prediction="flow", nsf="ode", order=order,
            derivatives=derivatives, disable=True,
        )  # fmt: skip
        errs.append(((out - ref) ** 2).sum(-1).mean().sqrt().item())
    p = fit_order(steps, errs)
    assert lo <= p <= hi, (p, errs)


def test_s_noise_scales_only_the_injected_noise():
    """s_noise multiplies the noise term of eq. (36): for Gaussian data (a velocity linear in x) the output is
    affine in s_noise; checked as out(2) − out(1) = out(1) − out(0) (same noise) and out(0) ≠ out(1)."""
    a, s, _ = get_flow_schedule(6)
    x = _x()
    gauss = flow_velocity(GaussianMixture([1.0], [[0.3, -0.2]], [[0.5, 0.8]]))
    outs = [
        sample_er_sde_vp(
            gauss,
            x,
            a,
            s,
            prediction="flow",
            order=2,
            nsf="sde",
            s_noise=k,
            noise_sampler=FixedNoise(x.shape, seed=3),
            disable=True,
        )
        for k in (0.0, 1.0, 2.0)
    ]
    assert (outs[1] - outs[0]).abs().max() > 1e-3
    torch.testing.assert_close(outs[2] - outs[1], outs[1] - outs[0], rtol=0, atol=1e-12)


def test_bad_inputs():
    a, s, t = get_flow_schedule(6)
    x = _x()
    run = lambda **kw: sample_er_sde_vp(**{**dict(model=VEL, x=x, alphas=a, sigmas=s, prediction="flow"), **kw})  # noqa: E731
    with pytest.raises(ValueError, match="alpha \\+ sigma"):
        to_x0(x, x, 0.0, 0.0, "flow")
    with pytest.raises(ValueError, match="strictly decreasing"):
        run(sigmas=s.flip(0), alphas=a.flip(0))
    with pytest.raises(ValueError, match=r"lambda = sigma/alpha = 10\d\d"):
        run(nsf="er_sde_4")
    with pytest.raises(ValueError, match="model output has shape"):
        run(model=lambda x, t: x[:, :1])
    for bad in (-1.0, float("nan"), float("inf"), "1"):
        with pytest.raises(ValueError, match="s_noise"):
            run(s_noise=bad)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        run(alphas=torch.cat([a[:2], torch.zeros(1, dtype=torch.float64), a[3:]]))


@pytest.mark.parametrize("nsf", ["er_sde_5", "er_sde_1"])
def test_flow_draws_noise_as_ve_with_a_generator(nsf):
    """With per-sample generators (no noise_sampler), the flow sampler draws z on the same steps as sample_er_sde
    (VPStepCoefficients.draws_noise), so the two agree to 1e-12 (α_0 > 0)."""
    a, s, _ = get_flow_schedule(8, shift=3.0)
    a, s = a[1:], s[1:]
    x = _x(n=4, scale=float(s[0]))
    gens = lambda: [torch.Generator().manual_seed(10 + b) for b in range(4)]  # noqa: E731
    flow = sample_er_sde_vp(VEL, x, a, s, prediction="flow", nsf=nsf, generator=gens(), disable=True)
    ve = sample_er_sde(GM, x / a[0], (s / a).numpy(), nsf=nsf, generator=gens(), disable=True)
    torch.testing.assert_close(flow, ve * float(a[-1]), rtol=0, atol=1e-12)


@pytest.mark.cuda
@pytest.mark.parametrize("order", [1, 2, 3])
def test_cuda_flow_no_host_sync_and_same_result_as_cpu(order):
    """From σ = 1 on the GPU: no host–device sync in the loop (sync debug mode "error"), and the CPU result."""
    from ersde_theory import sample_flow_dpmpp_2m_sde, sample_flow_heun

    gm_cuda = ring_2d()
    gm_cuda.__init__(GM.weights.cuda(), GM.means.cuda(), GM.evals.cuda())
    vel_cuda = flow_velocity(gm_cuda)
    a, s, _ = get_flow_schedule(10, shift=3.0)
    x = torch.randn(128, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kw = dict(prediction="flow", order=order, disable=True)
    ref = sample_er_sde_vp(VEL, x, a, s, noise_sampler=FixedNoise(x.shape, 10), **kw)
    noises = [FixedNoise(x.shape, 10) for _ in range(4)]
    for ns in noises:
        ns.z = [z.cuda() for z in ns.z]
    x_cuda = x.cuda()  # (a copy from the host, before the samplers)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = sample_er_sde_vp(vel_cuda, x_cuda, a, s, noise_sampler=noises[0], check_finite="none", **kw)
        for fn, ns in zip((sample_flow_euler, sample_flow_heun, sample_flow_dpmpp_2m_sde), noises[1:]):
            fn(vel_cuda, x_cuda, s, noise_sampler=ns, disable=True, check_finite="none")
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- expansion="flow" (eqs. (53)–(57))
@pytest.mark.parametrize("shift", [1.0, 3.0])
@pytest.mark.parametrize("order,derivatives", [(2, "published"), (3, "published"), (3, "corrected")])
def test_flow_expansion_ode_is_the_ve_solver_on_sigma(shift, order, derivatives):
    """Eq. (57): with φ = λ on α = 1 − σ the flow expansion is sample_er_sde (VE) run on (x, σ) with the denoiser
    x − σ v(x, σ): same gain σ_t/σ_s, weights α_t c_n = C_n(σ_s, σ_t), divided differences and start in s = σ.
    Equal to float64 rounding (measured ≤ 2e-15), from σ = 1 exactly, on a nonlinear (mixture) velocity."""
    gm = bimodal_1d()
    vel = flow_velocity(gm)
    x0 = torch.randn(32, gm.D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    sig = flow_shift(np.linspace(1.0, 0.0, 25), shift) * 0.98 + 0.02
    out = sample_er_sde_vp(
        vel, x0, 1 - sig, sig, prediction="flow", nsf="ode", order=order, derivatives=derivatives,
        expansion="flow", disable=True,
    )  # fmt: skip

    def denoiser(x, s):
        return x - s.reshape(-1, *(1,) * (x.ndim - 1)) * vel(x, s)

    ve = sample_er_sde(
        denoiser, x0, torch.from_numpy(sig), order=order, nsf="ode", derivatives=derivatives, disable=True
    )
    assert float((out - x0).abs().max()) > 0.5
    torch.testing.assert_close(out, ve, rtol=0, atol=1e-12)
    lam = sample_er_sde_vp(
        vel, x0, 1 - sig, sig, prediction="flow", nsf="ode", order=order, derivatives=derivatives, disable=True
    )
    assert float((lam - ve).abs().max()) > 1e-6  # the λ expansion is another scheme


def _flow_ode_errors(expansion, steps, gm, x0, smin=0.02):
    ref = _flow_ode_reference(gm, x0, 1.0, smin)
    errs = []
    for n in steps:
        sig = np.linspace(1.0, smin, n + 1)  # unshifted: uniform in σ from σ = 1
        out = sample_er_sde_vp(
            flow_velocity(gm), x0, 1 - sig, sig, prediction="flow", nsf="ode", order=3, derivatives="corrected",
            expansion=expansion, disable=True,
        )  # fmt: skip
        errs.append(((out - ref) ** 2).sum(-1).mean().sqrt().item())
    return errs


def test_flow_expansion_keeps_order_3_from_sigma_1_where_lambda_falls_to_2():
    """Corrected ER-SDE-3 (φ = λ) on the unshifted grid from σ = 1 against DOP853: the pairwise orders (eq. (34)) on
    N = 256, 512, 1024 are 3.08, 3.04 with expansion="flow" and 2.11, 2.06 with "lambda" (docs §9)."""
    gm = bimodal_1d()
    x0 = torch.randn(64, gm.D, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    steps = [256, 512, 1024]
    for expansion, lo, hi in (("flow", 2.8, 3.3), ("lambda", 1.8, 2.6)):
        p = pairwise_orders(steps, _flow_ode_errors(expansion, steps, gm, x0))
        assert all(lo <= q <= hi for q in p), (expansion, p)


def test_flow_expansion_on_a_vp_schedule_is_exact_for_a_constant_denoiser():
    """On a VP schedule (α² + σ² = 1, α_0 > 0) the flow expansion is a change of expansion variable: for a denoiser
    that does not depend on σ every Taylor term vanishes and both expansions give the exact solution of eq. (20)."""
    a, s = torch.cos(torch.linspace(0.1, 1.5, 12, dtype=torch.float64)), None
    s = torch.sqrt(1 - a**2)
    a, s = a.flip(0), s.flip(0)
    c = torch.tensor([[0.3, -1.2]], dtype=torch.float64)

    def model(x, t):
        return c.expand_as(x)

    x = _x()
    outs = [
        sample_er_sde_vp(
            model, x, a, s, prediction="x0", order=3, nsf="ode", derivatives="corrected", expansion=e, disable=True
        )  # fmt: skip
        for e in ("lambda", "flow")
    ]
    want = (s[-1] / s[0]) * x + (a[-1] - s[-1] / s[0] * a[0]) * c  # ODE: x_t = (σ_t/σ_s) x_s + (α_t − α_s σ_t/σ_s) c
    for out in outs:
        torch.testing.assert_close(out, want, rtol=0, atol=1e-13)


@pytest.mark.parametrize("bad", ["sigma", "Flow", None, 1])
def test_bad_expansion(bad):
    a, s, _ = get_flow_schedule(6)
    with pytest.raises(ValueError, match=r"^expansion must be 'lambda' or 'flow', got "):
        sample_er_sde_vp(VEL, _x(), a, s, prediction="flow", expansion=bad, disable=True)
    with pytest.raises(ValueError, match=repr(bad)):
        vp_step_coefficients(a, s, "ode", expansion=bad)
