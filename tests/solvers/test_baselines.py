"""Solvers layer, the baseline samplers (solvers/baselines.py): against independent hand computations and EDM's
algorithms, identities with ER-SDE-Solver-1 (docs/theory.md eqs. (29)–(30)), weak convergence orders of the
output variance, common conventions (shapes, dtypes, callbacks, per-sample generators), bad parameters, and no
host sync on a GPU."""

import math

import pytest
import torch

from ersde_theory import get_sigmas_karras, ring_2d, sample_er_sde
from ersde_theory.solvers import baselines as B
from ersde_theory.solvers.registry import SAMPLERS
from tests.helpers import FixedNoise, denoise, gaussian_denoiser, ring_setup

ALL = [
    B.sample_euler,
    B.sample_heun,
    B.sample_euler_ancestral,
    B.sample_euler_maruyama,
    B.sample_dpmpp_2m,
    B.sample_dpmpp_2m_sde,
    B.sample_dpmpp_3m_sde,
    B.sample_dpmpp_3m_sde_exact,
    B.sample_sa_solver,
]


@pytest.fixture
def setup():
    return ring_setup(64)


# ------------------------------------------------------------------------------ identities
def test_er_sde_1_ode_is_euler_ddim(setup):
    gm, sig, x = setup
    torch.testing.assert_close(
        B.sample_euler(gm, x, sig, disable=True),
        sample_er_sde(gm, x, sig, order=1, nsf="ode", disable=True),
        rtol=1e-12,
        atol=1e-12,
    )


def test_er_sde_1_sde_is_ancestral_and_sa_solver_order_1(setup):
    """φ = σ² (first-order SDE-DPM-Solver++) = DDPM ancestral (η = 1) = SA-Solver(1, 0) with τ ≡ 1 =
    first step of SDE-DPM-Solver++(2M)."""
    gm, sig, x = setup
    ref = sample_er_sde(gm, x, sig, order=1, nsf="sde", noise_sampler=FixedNoise(x.shape, seed=1), disable=True)
    anc = B.sample_euler_ancestral(gm, x, sig, noise_sampler=FixedNoise(x.shape, seed=1), disable=True)
    sa = B.sample_sa_solver_paper(
        gm,
        x,
        sig,
        predictor_order=1,
        corrector_order=0,
        tau_func=1.0,
        noise_sampler=FixedNoise(x.shape, seed=1),
        disable=True,
    )
    torch.testing.assert_close(anc, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sa, ref, rtol=1e-12, atol=1e-12)
    one = sig[:2]
    torch.testing.assert_close(
        B.sample_dpmpp_2m_sde(gm, x, one, noise_sampler=FixedNoise(x.shape, seed=1), disable=True),
        sample_er_sde(gm, x, one, order=1, nsf="sde", noise_sampler=FixedNoise(x.shape, seed=1), disable=True),
        rtol=1e-12,
        atol=1e-12,
    )


def test_ancestral_with_eta_0_is_ddim(setup):
    gm, sig, x = setup
    torch.testing.assert_close(
        B.sample_euler_ancestral(gm, x, sig, eta=0.0, disable=True),
        B.sample_euler(gm, x, sig, disable=True),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_dpmpp_3m_sde_exact_equals_sa_predictor_3_with_tau_sqrt_eta(setup, eta):
    """Two independent derivations of one scheme: Taylor form with closed-form φ-weights (3M) and the
    Lagrange basis integrated by Gauss–Legendre (SA-Solver predictor, no corrector)."""
    gm, sig, x = setup
    a = B.sample_dpmpp_3m_sde_exact(gm, x, sig, eta=eta, noise_sampler=FixedNoise(x.shape, seed=1), disable=True)
    b = B.sample_sa_solver_paper(
        gm,
        x,
        sig,
        predictor_order=3,
        corrector_order=0,
        tau_func=math.sqrt(eta),
        noise_sampler=FixedNoise(x.shape, seed=1),
        disable=True,
    )
    torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-11)


def test_exp_integrator_weights_against_quadrature():
    from scipy.integrate import quad

    for c in (1.0, 1.5, 2.0):
        for h in (1e-4, 0.05, 0.7, 3.0):
            w = B.exp_integrator_weights(c, h, 2)
            for k in range(3):
                ref = quad(
                    lambda u, c=c, h=h, k=k: c * math.exp(-c * (h - u)) * u**k / math.factorial(k),
                    0,
                    h,
                    epsabs=0,
                    epsrel=1e-13,
                )[0]
                assert w[k] == pytest.approx(ref, rel=1e-11)


# ------------------------------------------------------------------------------ hand computations
def test_heun_churn_0_against_edm_algorithm_1(setup):
    gm, sig, x = setup
    y = x.clone()
    s = sig.tolist()
    for i in range(len(s) - 1):
        d = (y - denoise(gm, y, s[i])) / s[i]
        y_e = y + (s[i + 1] - s[i]) * d
        if s[i + 1] > 0:
            y_e = y + (s[i + 1] - s[i]) * 0.5 * (d + (y_e - denoise(gm, y_e, s[i + 1])) / s[i + 1])
        y = y_e
    calls = []

    def counting(xx, ss):
        calls.append(1)
        return gm(xx, ss)

    torch.testing.assert_close(B.sample_heun(counting, x, sig, disable=True), y, rtol=1e-12, atol=1e-12)
    assert len(calls) == 2 * 12 - 1 == SAMPLERS["heun"].nfe(23)


def test_heun_with_churn_against_edm_algorithm_2(setup):
    gm, sig, x = setup
    churn, tmin, tmax, snoise = 8.0, 0.05, 10.0, 1.003
    noise = FixedNoise(x.shape, seed=1)
    out = B.sample_heun(
        gm, x, sig, s_churn=churn, s_tmin=tmin, s_tmax=tmax, s_noise=snoise, noise_sampler=noise, disable=True
    )
    s, n, y, k = sig.tolist(), 12, x.clone(), 0
    for i in range(n):
        gamma = min(churn / n, 2**0.5 - 1) if tmin <= s[i] <= tmax else 0.0
        sh = s[i] + gamma * s[i]
        if gamma > 0:
            y = y + (sh**2 - s[i] ** 2) ** 0.5 * snoise * noise.z[k]
        k += 1  # a noise draw on every step while s_churn > 0, gamma = 0 included (k-diffusion)
        d = (y - denoise(gm, y, sh)) / sh
        y_n = y + (s[i + 1] - sh) * d
        if s[i + 1] > 0:
            y_n = y + (s[i + 1] - sh) * (d + (y_n - denoise(gm, y_n, s[i + 1])) / s[i + 1]) / 2
        y = y_n
    torch.testing.assert_close(out, y, rtol=1e-12, atol=1e-12)
    assert noise.calls == k > 0


def test_dpmpp_2m_by_hand_on_a_1d_gaussian():
    """Three steps on N(m, s0²) data, x_θ(x, σ) = m + s0²/(s0² + σ²)(x − m), written out with plain floats."""
    m, s0 = 0.3, 0.7
    model = gaussian_denoiser(m, s0)
    sig = [5.0, 2.0, 0.5, 0.0]
    x0 = 1.7
    den = lambda x, s: m + s0**2 / (s0**2 + s**2) * (x - m)  # noqa: E731
    d0 = den(x0, 5.0)
    h0 = math.log(5.0 / 2.0)
    x1 = (2.0 / 5.0) * x0 - (math.exp(-h0) - 1) * d0  # first step: DPM-Solver++(1)
    d1 = den(x1, 2.0)
    h1 = math.log(2.0 / 0.5)
    r = h0 / h1
    x2 = (0.5 / 2.0) * x1 - (math.exp(-h1) - 1) * ((1 + 1 / (2 * r)) * d1 - d0 / (2 * r))
    x3 = den(x2, 0.5)  # step to σ = 0
    out = B.sample_dpmpp_2m(
        model, torch.tensor([[x0]], dtype=torch.float64), torch.tensor(sig, dtype=torch.float64), disable=True
    )
    assert out.item() == pytest.approx(x3, rel=1e-14)


def test_dpmpp_2m_sde_and_euler_maruyama_by_hand_on_a_1d_gaussian():
    m, s0, eta = 0.3, 0.7, 0.8
    model = gaussian_denoiser(m, s0)
    den = lambda x, s: m + s0**2 / (s0**2 + s**2) * (x - m)  # noqa: E731
    sig = [5.0, 2.0, 0.5, 0.1, 0.0]
    z = [0.3, -1.2, 0.7]
    ns = lambda: iter(torch.tensor([[v]], dtype=torch.float64) for v in z)  # noqa: E731
    it = ns()
    out = B.sample_dpmpp_2m_sde(
        model,
        torch.tensor([[1.7]], dtype=torch.float64),
        torch.tensor(sig, dtype=torch.float64),
        eta=eta,
        noise_sampler=lambda a, b: next(it),
        disable=True,
    )
    x, old, h_old = 1.7, None, None
    for i in range(3):
        s, t = sig[i], sig[i + 1]
        d = den(x, s)
        h = math.log(s / t)
        w = 1 - math.exp(-(1 + eta) * h)
        x_new = t / s * math.exp(-eta * h) * x + w * d + t * math.sqrt(1 - math.exp(-2 * eta * h)) * z[i]
        if old is not None:
            x_new += w / (2 * h_old / h) * (d - old)
        x, old, h_old = x_new, d, h
    assert out.item() == pytest.approx(den(x, 0.1), rel=1e-13)
    it = ns()
    out = B.sample_euler_maruyama(
        model,
        torch.tensor([[1.7]], dtype=torch.float64),
        torch.tensor(sig, dtype=torch.float64),
        noise_sampler=lambda a, b: next(it),
        disable=True,
    )
    x = 1.7
    for i in range(3):
        s, t = sig[i], sig[i + 1]
        x = x - 2 * (s - t) / s * (x - den(x, s)) + math.sqrt(2 * s * (s - t)) * z[i]
    assert out.item() == pytest.approx(den(x, 0.1), rel=1e-13)


def test_sa_solver_tau_0_is_its_ode_form(setup):
    """τ = 0: no noise is drawn, and predictor 2 / corrector 2 equals the Adams–Bashforth–Moulton exponential
    integrator written with closed-form weights: predictor (1 − e^{−h}) D_i + (h − 1 + e^{−h}) (D_i − D_{i−1})/h_{i−1},
    corrector (1 − e^{−h}) D_i + (h − 1 + e^{−h}) (D_{i+1} − D_i)/h, both from x_i."""
    gm, sig, x = setup
    noise = FixedNoise(x.shape, seed=1)
    out = B.sample_sa_solver_paper(
        gm, x, sig, predictor_order=2, corrector_order=2, tau_func=0.0, noise_sampler=noise, disable=True
    )
    assert noise.calls == 0
    s = sig.tolist()
    lam = [-math.log(v) for v in s[:-1]]
    y, ds, y_prev = x.clone(), [], None
    for i in range(len(s) - 1):
        ds.append(denoise(gm, y, s[i]))
        if s[i + 1] == 0:
            y = ds[-1]
            break
        if i > 0:  # correct x_i with D_i
            h = lam[i] - lam[i - 1]
            w0, w1 = 1 - math.exp(-h), h - 1 + math.exp(-h)
            y = s[i] / s[i - 1] * y_prev + w0 * ds[-2] + w1 * (ds[-1] - ds[-2]) / h
        y_prev = y
        h = math.log(s[i] / s[i + 1])
        w0, w1 = 1 - math.exp(-h), h - 1 + math.exp(-h)
        y = s[i + 1] / s[i] * y + w0 * ds[-1]
        if i > 0:
            y = y + w1 * (ds[-1] - ds[-2]) / (lam[i] - lam[i - 1])
    torch.testing.assert_close(out, y, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------ weak orders
def _output_variance(sampler, sig, s0, **kw):
    """Exact output variance on N(0, s0²) data. The sampler is linear in (x_0, z_1, z_2, …), so one batch
    holds row 0: x_0 = 1 without noise, and row k + 1: x_0 = 0 with only the k-th noise draw set to 1."""
    model = gaussian_denoiser(0.0, s0)
    rows = 2 * len(sig) + 1
    x = torch.zeros(rows, 1, dtype=torch.float64)
    x[0] = 1.0
    calls = [0]

    def unit_noise(a, b):
        z = torch.zeros(rows, 1, dtype=torch.float64)
        z[calls[0] + 1] = 1.0
        calls[0] += 1
        return z

    out = sampler(model, x, sig, noise_sampler=unit_noise, disable=True, **kw)[:, 0]
    return float((out[0] * sig[0]) ** 2 + (out[1:] ** 2).sum())


@pytest.mark.parametrize(
    "name,order",
    [
        ("euler", 1),
        ("heun", 2),
        ("euler_ancestral", 1),
        ("euler_maruyama", 1),
        ("dpmpp_2m", 2),
        ("dpmpp_2m_sde", 2),
        ("dpmpp_3m_sde", 2),
        ("dpmpp_3m_sde_exact", 2),
        ("sa_solver", 2),
        ("er_sde_1", 1),
        ("er_sde_3", 2),
    ],
)
def test_weak_error_of_the_variance_decays_at_the_expected_order(name, order):
    """|Var(x_N) − Var_exact| on N(0, s0²) data, exactly (no Monte Carlo), for 16 → 64 log-uniform steps from
    σ = 20 to 0.01 (then 0: the exact target is the variance of x_θ at σ_min, s0⁴/(s0² + σ_min²)).
    The observed order must reach the expected weak order minus 0.3."""
    from ersde_theory import get_sigmas_loguniform

    s0, smin = 0.5, 0.01
    target = s0**4 / (s0**2 + smin**2)
    sampler = SAMPLERS[name]
    errs = [
        abs(_output_variance(sampler.fn, get_sigmas_loguniform(n, smin, 20.0), s0, **sampler.kwargs) - target)
        for n in (16, 64)
    ]
    observed = math.log(errs[0] / errs[1]) / math.log(4)
    assert observed > order - 0.3, (errs, observed)


# ------------------------------------------------------------------------------ conventions
@pytest.mark.parametrize("sampler", ALL)
def test_common_conventions(sampler):
    model = gaussian_denoiser()
    sig = get_sigmas_karras(6, 0.01, 10.0)
    for dtype in (torch.float32, torch.float64):
        x = 10 * torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(0), dtype=dtype)
        calls = []
        out = sampler(model, x, sig, callback=calls.append, generator=torch.Generator().manual_seed(0), disable=True)
        assert out.shape == x.shape and out.dtype == dtype and torch.isfinite(out).all()
        assert [c["i"] for c in calls] == list(range(6))
        assert set(calls[0]) == {"x", "i", "sigma", "sigma_hat", "denoised"}
    # per-sample generators: sample b depends only on generator b
    x = 10 * torch.randn(4, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    gens = lambda idx: [torch.Generator().manual_seed(10 + i) for i in idx]  # noqa: E731
    full = sampler(model, x, sig, generator=gens(range(4)), disable=True)
    part = sampler(model, x[[2, 0]], sig, generator=gens([2, 0]), disable=True)
    torch.testing.assert_close(part, full[[2, 0]], rtol=0, atol=0)
    with pytest.raises(ValueError):
        sampler(model, x, torch.tensor([1.0, 2.0, 0.0]), disable=True)
    with pytest.raises(ValueError, match="model output"):
        sampler(lambda a, s: a[:, :1], x, sig, disable=True)


def test_bad_parameters():
    model, x, sig = gaussian_denoiser(), torch.zeros(2, 2), get_sigmas_karras(4, 0.1, 1.0)
    with pytest.raises(ValueError, match="s_churn"):
        B.sample_heun(model, x, sig, s_churn=-1.0)
    with pytest.raises(ValueError, match="s_tmin"):
        B.sample_heun(model, x, sig, s_tmin=2.0, s_tmax=1.0)
    with pytest.raises(ValueError, match="eta"):
        B.sample_dpmpp_2m_sde(model, x, sig, eta=float("nan"))
    with pytest.raises(ValueError, match="predictor_order"):
        B.sample_sa_solver_paper(model, x, sig, predictor_order=5)
    with pytest.raises(ValueError, match="tau"):
        B.sample_sa_solver_paper(model, x, sig, tau_func=-0.5)


@pytest.mark.cuda
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_cuda_no_host_sync_per_step(name):
    """Every sampler runs under torch.cuda.set_sync_debug_mode('error'): no device→host sync in the loop."""
    from ersde_theory.solvers.registry import run_sampler

    gm = ring_2d()
    gm_cuda = ring_2d()
    gm_cuda.__init__(gm.weights.cuda(), gm.means.cuda(), gm.evals.cuda())
    x = 80 * torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g = torch.Generator(device="cuda").manual_seed(0)
    x_cuda = x.cuda()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = run_sampler(name, gm_cuda, x_cuda, 10, generator=g, check_finite="none")
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert out.is_cuda and bool(torch.isfinite(out).all())
