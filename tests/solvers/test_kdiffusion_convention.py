"""Solvers layer, k-diffusion's calling convention (solvers/baselines.py, sample_er_sde): positional calls and
signatures as k-diffusion's, its churn noise draws, zero-length steps (a repeated σ), DPM++(2M) SDE's two
solver types and DPM++(3M) SDE as k-diffusion runs it, each against formulas written out here, and the exact
quadratic 3M variant: exact for denoisers quadratic in λ, third order on the probability-flow ODE."""

import inspect
import math

import numpy as np
import pytest
import torch

from ersde_theory import get_sigmas_karras, ring_2d
from ersde_theory.references.integrator import integrate_pf_ode
from ersde_theory.solvers import baselines as B
from ersde_theory.solvers.ersde import sample_er_sde
from ersde_theory.solvers.registry import SAMPLERS
from ersde_theory.toys.problems import bimodal_1d
from tests.helpers import FixedNoise, denoise, fit_slope, gaussian_denoiser, ring_setup

KEYS = {"x", "i", "sigma", "sigma_hat", "denoised"}
INF = float("inf")
# k-diffusion's positional parameters after (model, x, sigmas, extra_args, callback, disable), with defaults
KDIFF = {
    B.sample_euler: [("s_churn", 0.0), ("s_tmin", 0.0), ("s_tmax", INF), ("s_noise", 1.0)],
    B.sample_heun: [("s_churn", 0.0), ("s_tmin", 0.0), ("s_tmax", INF), ("s_noise", 1.0)],
    B.sample_euler_ancestral: [("eta", 1.0), ("s_noise", 1.0), ("noise_sampler", None)],
    B.sample_dpmpp_2m: [],
    B.sample_dpmpp_2m_sde: [("eta", 1.0), ("s_noise", 1.0), ("noise_sampler", None), ("solver_type", "midpoint")],
    B.sample_dpmpp_3m_sde: [("eta", 1.0), ("s_noise", 1.0), ("noise_sampler", None)],
    B.sample_dpmpp_3m_sde_exact: [("eta", 1.0), ("s_noise", 1.0), ("noise_sampler", None)],
    # ComfyUI's sample_er_sde
    sample_er_sde: [("s_noise", 1.0), ("noise_sampler", None), ("noise_scaler", None), ("max_stage", None)],
}
ALL_FUNCTIONS = sorted({s.fn for s in SAMPLERS.values()}, key=lambda f: f.__name__)


@pytest.fixture
def setup():
    return ring_setup(32)


def _positional(fn):
    return [p for p in inspect.signature(fn).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]


# ------------------------------------------------------------------------------ signatures and positional calls
@pytest.mark.parametrize("fn", list(KDIFF), ids=lambda f: f.__name__)
def test_positional_parameters_are_k_diffusions(fn):
    params = _positional(fn)
    assert [p.name for p in params[:6]] == ["model", "x", "sigmas", "extra_args", "callback", "disable"]
    assert all(p.default is None for p in params[3:6])
    assert [(p.name, p.default) for p in params[6:]] == KDIFF[fn]
    kw_only = {p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY}
    project = {"order", "nsf", "quadrature", "derivatives", "coefficients"} if fn is sample_er_sde else set()
    assert project <= kw_only
    assert not {"generator", "check_finite"} & {p.name for p in params}  # the project's additions: keywords


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_registry_sampler_takes_k_diffusions_positional_call(name):
    """sampler(model, x, sigmas, extra_args, callback, disable): extra_args reach the model, the callback gets
    k-diffusion's keys once per step; one positional argument too many is a TypeError."""
    s = SAMPLERS[name]
    base = gaussian_denoiser()
    seen = []

    def model(x, sigma, scale=1.0):
        seen.append(scale)
        return base(x, sigma)

    sig = get_sigmas_karras(5, 0.01, 10.0)
    x = 10 * torch.randn(3, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    calls = []
    torch.manual_seed(0)
    out = s.fn(model, x, sig, {"scale": 2.0}, calls.append, True, **s.kwargs)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert seen and set(seen) == {2.0}
    assert [c["i"] for c in calls] == list(range(5)) and all(set(c) == KEYS for c in calls)
    n = len(_positional(s.fn))
    with pytest.raises(TypeError, match="positional argument"):
        s.fn(model, x, sig, *([None] * (n - 2)))


@pytest.mark.parametrize("fn", ALL_FUNCTIONS, ids=lambda f: f.__name__)
def test_bad_s_noise_is_a_value_error_before_any_model_call(fn):
    if "s_noise" not in inspect.signature(fn).parameters:
        pytest.skip("no s_noise")
    calls = []

    def model(x, sigma):
        calls.append(1)
        return x

    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="s_noise"):
            fn(model, torch.zeros(2, 2), get_sigmas_karras(4, 0.1, 1.0), s_noise=bad)
    assert not calls


def test_bad_solver_type_and_s_tmax():
    model, x, sig = gaussian_denoiser(), torch.zeros(2, 2), get_sigmas_karras(4, 0.1, 1.0)
    with pytest.raises(ValueError, match="solver_type"):
        B.sample_dpmpp_2m_sde(model, x, sig, solver_type="euler")
    with pytest.raises(ValueError, match="s_tmax"):
        B.sample_euler(model, x, sig, s_tmin=2.0, s_tmax=1.0)
    with pytest.raises(ValueError, match="non-increasing"):
        B.sample_euler(model, x, torch.tensor([1.0, 2.0, 0.0]))
    with pytest.raises(ValueError, match="non-increasing"):
        B.sample_sa_solver(model, x, torch.tensor([1.0, 2.0, 0.0]))


# ------------------------------------------------------------------------------ churn (EDM Algorithm 2)
@pytest.mark.parametrize("churn", [8.0, 2.0])  # γ = churn/(N − 1) at its clip √2 − 1, and below it
def test_euler_with_churn_draws_every_step_as_k_diffusion(setup, churn):
    """x̂ = x + S_noise √(σ̂² − σ²) z with a draw z on every step (γ = 0 too), then an Euler step from σ̂."""
    gm, sig, x = setup
    tmin, tmax, snoise = 0.05, 10.0, 1.003
    noise = FixedNoise(x.shape, seed=3)
    out = B.sample_euler(gm, x, sig, None, None, True, churn, tmin, tmax, snoise, noise_sampler=noise)
    s, y = sig.tolist(), x.clone()
    for i in range(12):
        gamma = min(churn / 12, 2**0.5 - 1) if tmin <= s[i] <= tmax else 0.0
        sh = s[i] * (1 + gamma)
        y = y + noise.z[i] * snoise * (sh**2 - s[i] ** 2) ** 0.5
        y = y + (s[i + 1] - sh) * (y - denoise(gm, y, sh)) / sh
    torch.testing.assert_close(out, y, rtol=1e-12, atol=1e-12)
    assert noise.calls == 12
    # the same global seed gives the same samples as a noise source of torch.randn_like
    torch.manual_seed(7)
    a = B.sample_heun(gm, x, sig, None, None, True, churn, tmin, tmax, snoise)
    torch.manual_seed(7)
    zs = [torch.randn_like(x) for _ in range(12)]
    b = B.sample_heun(gm, x, sig, None, None, True, churn, tmin, tmax, snoise, noise_sampler=lambda a, b: zs.pop(0))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# ------------------------------------------------------------------------------ DPM-Solver++ SDE family
def _phi(k, z):
    """φ_k(z) = ∫_0^1 e^{(1−u) z} u^{k−1}/(k−1)! du (φ_1 = (e^z − 1)/z, φ_2 = (φ_1 − 1)/z), by Gauss–Legendre."""
    u, w = np.polynomial.legendre.leggauss(30)
    u, w = 0.5 * (u + 1), 0.5 * w
    return float(np.sum(w * np.exp((1 - u) * z) * u ** (k - 1)) / math.factorial(k - 1))


@pytest.mark.parametrize("solver_type", ["midpoint", "heun"])
@pytest.mark.parametrize("eta,s_noise", [(1.0, 1.0), (0.4, 0.8)])
def test_dpmpp_2m_sde_both_solver_types(setup, solver_type, eta, s_noise):
    """x_t = (σ_t/σ_s) e^{−ηh} x + ch φ_1(−ch) D + w (D − D_old) h/h_last + S_noise σ_t √(1 − e^{−2ηh}) z, c = 1 + η,
    with w = ch φ_1(−ch)/2 (midpoint) or ch φ_2(−ch) (heun), in the φ-functions of exponential integrators."""
    gm, sig, x = setup
    noise = FixedNoise(x.shape, seed=2)
    out = B.sample_dpmpp_2m_sde(gm, x, sig, None, None, True, eta, s_noise, noise, solver_type)
    s, y, old, h_last, k = sig.tolist(), x.clone(), None, None, 0
    c = 1 + eta
    for i in range(12):
        d = denoise(gm, y, s[i])
        if s[i + 1] == 0:
            y = d
            continue
        h = math.log(s[i] / s[i + 1])
        y = s[i + 1] / s[i] * math.exp(-eta * h) * y + c * h * _phi(1, -c * h) * d
        if old is not None:
            w = c * h * _phi(1, -c * h) / 2 if solver_type == "midpoint" else c * h * _phi(2, -c * h)
            y = y + w * (d - old) * (h / h_last)
        y = y + noise.z[k] * s_noise * s[i + 1] * math.sqrt(1 - math.exp(-2 * eta * h))
        k += 1
        old, h_last = d, h
    torch.testing.assert_close(out, y, rtol=1e-11, atol=1e-11)


def _three_m_reference(gm, x, sig, eta, noise, curvature):
    """SDE-DPM-Solver++(3M) by quadrature: x_t = e^{−ch} x + ∫ c e^{−c(λ_t−λ)} q(λ) dλ + σ_t √(1 − e^{−2ηh}) z with q
    the Lagrange interpolant p of the last (up to) three outputs in λ, its second-order Taylor term at λ_i scaled
    by ``curvature``: q = p − (1 − curvature) p''/2 (λ − λ_i)²."""
    gx, gw = np.polynomial.legendre.leggauss(20)
    s, y, nodes, outs, k, c = sig.tolist(), x.clone(), [], [], 0, 1 + eta
    for i in range(len(s) - 1):
        d = denoise(gm, y, s[i])
        if s[i + 1] == 0:
            y = d
            continue
        lam_s, lam_t = -math.log(s[i]), -math.log(s[i + 1])
        nodes, outs = ([lam_s] + nodes)[:3], ([d] + outs)[:3]
        lam = lam_s + 0.5 * (lam_t - lam_s) * (gx + 1)
        kern = 0.5 * (lam_t - lam_s) * gw * c * np.exp(-c * (lam_t - lam))
        integral = torch.zeros_like(y)
        for j, (nj, dj) in enumerate(zip(nodes, outs)):
            others = [nm for m, nm in enumerate(nodes) if m != j]
            basis = np.prod([(lam - nm) / (nj - nm) for nm in others], axis=0) if others else np.ones_like(lam)
            weight = float(np.sum(kern * basis))
            if len(nodes) == 3:  # p'' = 2 Σ_j D_j / Π_{m≠j}(λ_j − λ_m)
                second = 2.0 / np.prod([nj - nm for nm in others])
                weight -= (1 - curvature) * second / 2 * float(np.sum(kern * (lam - lam_s) ** 2))
            integral = integral + weight * dj
        h = lam_t - lam_s
        y = math.exp(-c * h) * y + integral + noise.z[k] * s[i + 1] * math.sqrt(1 - math.exp(-2 * eta * h))
        k += 1
    return y


@pytest.mark.parametrize("eta", [0.0, 1.0, 0.5])
def test_dpmpp_3m_sde_is_k_diffusions_half_curvature_and_exact_is_full(setup, eta):
    gm, sig, x = setup
    kd = B.sample_dpmpp_3m_sde(gm, x, sig, None, None, True, eta, 1.0, FixedNoise(x.shape, seed=1))
    ex = B.sample_dpmpp_3m_sde_exact(gm, x, sig, None, None, True, eta, 1.0, FixedNoise(x.shape, seed=1))
    ref_kd = _three_m_reference(gm, x, sig, eta, FixedNoise(x.shape, seed=1), 0.5)
    ref_ex = _three_m_reference(gm, x, sig, eta, FixedNoise(x.shape, seed=1), 1.0)
    torch.testing.assert_close(kd, ref_kd, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ex, ref_ex, rtol=1e-10, atol=1e-10)
    assert float((kd - ex).abs().max()) > 1e-4  # the two variants differ


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_dpmpp_3m_sde_exact_integrates_a_quadratic_denoiser_exactly(eta):
    """For x_θ = a + bλ + cλ² (any x) every step with three outputs is exact: from the state x_2 of step 2 on,
    x_N = e^{−c(λ_N − λ_2)} x_2 + ∫_{λ_2}^{λ_N} c e^{−c(λ_N − λ)} x_θ(λ) dλ (zero noise). k-diffusion's variant
    is not."""
    a, b, q = 0.3, -0.7, 0.45

    def model(x, sigma):
        lam = -torch.log(sigma).reshape(-1, *([1] * (x.ndim - 1)))
        return (a + b * lam + q * lam * lam).expand_as(x).clone()

    sig = get_sigmas_karras(10, 0.05, 20.0)[:-1]  # no final 0
    x = torch.linspace(-20.0, 20.0, 6, dtype=torch.float64)[:, None]
    lam = -np.log(sig.numpy())
    c = 1 + eta
    gx, gw = np.polynomial.legendre.leggauss(40)
    u = lam[2] + 0.5 * (lam[-1] - lam[2]) * (gx + 1)
    integral = float(np.sum(0.5 * (lam[-1] - lam[2]) * gw * c * np.exp(-c * (lam[-1] - u)) * (a + b * u + q * u * u)))
    errors = {}
    for fn in (B.sample_dpmpp_3m_sde_exact, B.sample_dpmpp_3m_sde):
        states = []
        out = fn(model, x, sig, None, states.append, True, eta, 1.0, lambda s, t: torch.zeros_like(x))
        exact = math.exp(-c * (lam[-1] - lam[2])) * states[2]["x"] + integral
        errors[fn] = float((out - exact).abs().max())
    assert errors[B.sample_dpmpp_3m_sde_exact] < 1e-12
    assert errors[B.sample_dpmpp_3m_sde] > 1e-4


def test_dpmpp_3m_sde_ode_orders_exact_three_k_diffusion_two():
    """Strong error on the probability-flow ODE (η = 0) of bimodal 1-D data against a DOP853 reference, for
    16 … 128 uniform steps in λ (after a first step of length h², so the lower-order start costs O(h⁴)):
    fitted orders ≈ 3.1 for the exact variant and ≈ 2.1 for k-diffusion's half-curvature one."""
    gm = bimodal_1d()
    x0 = gm.sample(50, torch.Generator().manual_seed(0), sigma=20.0)
    ref = integrate_pf_ode(gm.score, x0, 20.0, 0.05)
    l0, l1, steps = -math.log(20.0), -math.log(0.05), (16, 32, 64, 128)
    orders = {}
    for fn in (B.sample_dpmpp_3m_sde_exact, B.sample_dpmpp_3m_sde):
        errs = []
        for n in steps:
            h = (l1 - l0) / n
            lam = torch.cat([torch.tensor([l0, l0 + h * h]), torch.linspace(l0, l1, n + 1, dtype=torch.float64)[1:]])
            errs.append(float((fn(gm, x0, torch.exp(-lam), None, None, True, 0.0) - ref).abs().max()))
        orders[fn] = -fit_slope(steps, errs)
    assert orders[B.sample_dpmpp_3m_sde_exact] > 2.8, orders
    assert 1.7 < orders[B.sample_dpmpp_3m_sde] < 2.4, orders


# ------------------------------------------------------------------------------ a repeated σ
class KeyedNoise:
    """N(0, I) keyed by the step's (σ, σ_next), and the number of draws."""

    def __init__(self, shape):
        self.shape, self.calls = shape, 0

    def __call__(self, s, t):
        self.calls += 1
        seed = int(1e6 * float(s)) ^ int(1e9 * float(t))
        return torch.randn(self.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("name", [n for n in SAMPLERS if not n.startswith("sa_solver")])
def test_a_repeated_sigma_is_a_zero_length_step(name):
    """With σ_4 repeated the model is still called (k-diffusion calls it), x does not move, a stochastic sampler
    still draws the step's noise, and the result is the run without the repeat: no division by the zero step."""
    s = SAMPLERS[name]
    gm = ring_2d()
    sig = get_sigmas_karras(10, 0.002, 80.0)
    rep = torch.cat([sig[:5], sig[4:]])
    x = 80 * torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    runs = []
    for schedule in (sig, rep):
        calls, noise = [], KeyedNoise(x.shape)

        def model(x, sigma, calls=calls):
            calls.append(float(sigma[0]))
            return gm(x, sigma)

        out = s.fn(model, x, schedule, noise_sampler=noise, disable=True, **s.kwargs)
        runs.append((out, len(calls), noise.calls))
    (a, calls_a, draws_a), (b, calls_b, draws_b) = runs
    assert torch.isfinite(b).all()
    torch.testing.assert_close(b, a, rtol=0, atol=0)
    assert calls_b == calls_a + s.calls_per_step
    assert draws_b == draws_a + (1 if draws_a else 0)


def test_euler_ancestral_on_a_repeated_sigma_against_k_diffusions_rule():
    """σ_up = min(σ_t, η √(σ_t²(σ_s² − σ_t²)/σ_s²)), σ_down = √(σ_t² − σ_up²), x ← x + (σ_down − σ_s)(x − D)/σ_s
    + S_noise σ_up z, with a draw on every step to σ_t > 0 (the zero-length one too)."""
    gm = ring_2d()
    sig = get_sigmas_karras(8, 0.002, 80.0)
    rep = torch.cat([sig[:3], sig[2:]])
    x = 80 * torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noise = FixedNoise(x.shape, seed=4)
    out = B.sample_euler_ancestral(gm, x, rep, None, None, True, 0.7, 0.9, noise)
    s, y, k = rep.tolist(), x.clone(), 0
    for i in range(len(s) - 1):
        d = denoise(gm, y, s[i])
        up = min(s[i + 1], 0.7 * (s[i + 1] ** 2 * (s[i] ** 2 - s[i + 1] ** 2) / s[i] ** 2) ** 0.5)
        down = (s[i + 1] ** 2 - up**2) ** 0.5
        y = y + (down - s[i]) * (y - d) / s[i]
        if s[i + 1] > 0:
            y, k = y + noise.z[k] * 0.9 * up, k + 1
    torch.testing.assert_close(out, y, rtol=1e-12, atol=1e-12)
    assert noise.calls == k == len(s) - 2


@pytest.mark.parametrize("fn", [B.sample_sa_solver, B.sample_sa_solver_paper])
def test_sa_solver_takes_a_repeated_sigma_as_a_zero_length_step(fn):
    """SA-Solver's Lagrange nodes must differ, so a repeated σ restarts its order count (as diffusers' repeated
    last Karras σ does): with the orders at 1 (no history used) the repeat changes nothing; at the default
    orders the run stays finite."""
    gm = ring_2d()
    sig = get_sigmas_karras(10, 0.002, 80.0)
    rep = torch.cat([sig[:5], sig[4:]])
    x = 80 * torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    first = [
        fn(gm, x, s, predictor_order=1, corrector_order=0, noise_sampler=KeyedNoise(x.shape), disable=True)
        for s in (sig, rep)
    ]
    torch.testing.assert_close(first[1], first[0], rtol=0, atol=0)
    assert torch.isfinite(fn(gm, x, rep, noise_sampler=KeyedNoise(x.shape), disable=True)).all()
