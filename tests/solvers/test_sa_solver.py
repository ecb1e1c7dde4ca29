"""Solvers layer, SA-Solver (solvers/baselines.py; docs/theory.md eqs. (47)–(49)): the community variant
``sample_sa_solver`` against diffusers' ``SASolverScheduler`` (the installed package, driven step by step in VP
variables), both variants and both conventions against an independent step-by-step re-implementation with
weights from adaptive quadrature, closed forms for denoisers linear in λ (exactness of the exact weights, the
O(h³) term of the order-2 simplification), measured ODE orders, the default τ window, and bad input."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from ersde_theory import get_sigmas_karras, ring_2d
from ersde_theory.solvers.baselines import sa_solver_default_tau, sample_sa_solver, sample_sa_solver_paper
from tests.helpers import gaussian_denoiser


def _keyed_noise(sig, shape, seed=7):
    """noise_sampler(σ, σ') → the draw fixed for the step starting at σ (independent of which steps draw)."""
    g = torch.Generator().manual_seed(seed)
    table = {float(s): torch.randn(shape, generator=g, dtype=torch.float64) for s in sig}
    return (lambda s, s_next: table[float(s)]), table


def _linear_in_lambda(a=0.4, b=-0.3):
    """A denoiser independent of x: D(σ) = a + b λ, λ = −log σ."""
    return lambda x, sigma: (a - b * torch.log(sigma)).reshape(-1, *[1] * (x.ndim - 1)).expand_as(x).clone()


# ------------------------------------------------------------------------------ an independent reference
def _quad_weights(nodes, lam_s, lam_t, c):
    """∫_{λ_s}^{λ_t} c e^{−c(λ_t − λ)} ℓ_j(λ) dλ by adaptive quadrature, ℓ_j the Lagrange basis of ``nodes``."""

    def integrand(u, j):
        basis = math.prod((u - m) / (nodes[j] - m) for k, m in enumerate(nodes) if k != j)
        return c * math.exp(-c * (lam_t - u)) * basis

    return [quad(integrand, lam_s, lam_t, args=(j,), epsabs=0.0, epsrel=1e-13)[0] for j in range(len(nodes))]


def _reference(model, x, sig, noise, tau, p_max, q_max, *, simple, lof, convention="diffusers", pece=False):
    """SA-Solver written step by step from its description: x_{i+1} from x_i with the predictor, then (once
    D_{i+1} is known) again from x_i with the corrector and the same noise. Orders: diffusers p_i = min(P, i+1,
    N−i), q_i = min(Q, i+2, N−i+1); ComfyUI p_i, q_i ≤ N−1−i when σ_N = 0; τ at σ_i (diffusers) or σ_{i+1}."""
    s = [float(v) for v in sig]
    n, lam = len(s) - 1, [-math.log(v) if v > 0 else math.inf for v in s]
    den = lambda y, v: model(y, torch.full((y.shape[0],), v, dtype=y.dtype))  # noqa: E731

    def step(i, y, ds, nodes_from, k, corrector):
        t_ = tau(s[i + 1] if convention == "comfyui" else s[i]) if callable(tau) else tau
        c, h = 1 + t_**2, lam[i + 1] - lam[i]
        if simple and k == 2:
            w0 = 1 - math.exp(-c * h)
            w = (
                [c * h / 2, w0 - c * h / 2]
                if corrector
                else [w0 + c * h * h / (2 * (lam[i] - lam[i - 1])), -c * h * h / (2 * (lam[i] - lam[i - 1]))]
            )
        else:
            w = _quad_weights([lam[nodes_from - j] for j in range(k)], lam[i], lam[i + 1], c)
        out = s[i + 1] / s[i] * math.exp(-(t_**2) * h) * y + sum(wj * ds[nodes_from - j] for j, wj in enumerate(w))
        std = s[i + 1] * math.sqrt(1 - math.exp(-2 * t_**2 * h))
        return out + std * noise(s[i], s[i + 1]) if std > 0 else out

    def orders(i):
        p, q = min(p_max, i + 1), min(q_max, i + 2)
        if lof and convention == "diffusers":
            p, q = min(p, n - i), min(q, n - i + 1)
        if lof and convention == "comfyui" and s[-1] == 0:
            p, q = min(p, n - 1 - i), min(q, n - 1 - i)
        return p, q

    ds, y, y_start = {}, x.clone(), None
    for i in range(n):
        ds[i] = den(y, s[i])
        if i > 0 and orders(i - 1)[1] > 0 and (s[i + 1] > 0 or pece):
            y = step(i - 1, y_start, ds, i, orders(i - 1)[1], True)
            if pece:
                ds[i] = den(y, s[i])
        if s[i + 1] == 0:
            return ds[i]
        y_start = y
        y = step(i, y, ds, i, orders(i)[0], False)
    return y


CASES = [  # (P, Q, simple_order_2, lower_order_final, convention, use_pece)
    (2, 2, True, True, "diffusers", False),
    (2, 2, False, True, "diffusers", False),
    (3, 4, True, True, "diffusers", False),
    (3, 4, False, False, "diffusers", False),
    (4, 3, False, True, "diffusers", True),
    (1, 0, True, True, "diffusers", False),
    (3, 4, False, True, "comfyui", False),
    (2, 2, True, True, "comfyui", True),
    (4, 4, False, True, "comfyui", False),
]


@pytest.mark.parametrize("end_zero", [True, False])
@pytest.mark.parametrize("case", CASES)
def test_both_conventions_against_the_step_by_step_reference(case, end_zero):
    p, q, simple, lof, convention, pece = case
    sig = get_sigmas_karras(9, 0.01, 40.0) if end_zero else get_sigmas_karras(9, 0.05, 40.0)[:-1]
    x = 40 * torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    gm = ring_2d()
    tau = lambda v: 1.0 if 0.3 <= v <= 8.0 else 0.25  # noqa: E731  (τ changes inside the schedule)
    noise, _ = _keyed_noise(sig, x.shape)
    ref = _reference(gm, x, sig, noise, tau, p, q, simple=simple, lof=lof, convention=convention, pece=pece)
    out = sample_sa_solver(
        gm, x, sig, None, None, True, tau, 1.0, noise, p, q, pece, simple, lower_order_final=lof, convention=convention
    )
    torch.testing.assert_close(out, ref, rtol=1e-11, atol=1e-11)


def test_paper_variant_is_the_exact_weights_with_full_orders():
    sig = get_sigmas_karras(8, 0.01, 40.0)
    x = 40 * torch.randn(16, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    noise, _ = _keyed_noise(sig, x.shape)
    for p, q in ((3, 4), (2, 0), (4, 4)):
        ref = _reference(ring_2d(), x, sig, noise, 0.7, p, q, simple=False, lof=False)
        out = sample_sa_solver_paper(
            ring_2d(), x, sig, tau_func=0.7, noise_sampler=noise, disable=True, predictor_order=p, corrector_order=q
        )
        torch.testing.assert_close(out, ref, rtol=1e-11, atol=1e-11)


# ------------------------------------------------------------------------------ diffusers' SASolverScheduler
def _run_diffusers(monkeypatch, n, *, p=2, q=2, lof=True, tau_t=None, beta="linear"):
    """diffusers' scheduler on a float64 VE model (x_VE = x_VP/α, σ_VE = its ``sigmas``, eq. (19)), its σ's
    kept in float64 so that its coefficients are float64; every step's noise replaced by a fixed draw."""
    diffusers = pytest.importorskip("diffusers")
    import diffusers.schedulers.scheduling_sasolver as sas

    kw = {} if tau_t is None else dict(tau_func=tau_t)
    sch = diffusers.SASolverScheduler(
        predictor_order=p, corrector_order=q, lower_order_final=lof, prediction_type="sample", beta_schedule=beta, **kw
    )
    sch.set_timesteps(n)
    sch.sigmas = sch.sigmas.double()
    sig = sch.sigmas.clone()
    g = torch.Generator().manual_seed(3)
    z = [torch.randn(32, 2, generator=g, dtype=torch.float64) for _ in range(n)]
    drawn = []

    def fixed_randn(*args, **kwargs):
        drawn.append(z[len(drawn)])
        return drawn[-1]

    monkeypatch.setattr(sas, "randn_tensor", fixed_randn)
    gm = ring_2d()
    x_ve = torch.randn(32, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * math.sqrt(
        1 + float(sig[0]) ** 2
    )
    alpha = lambda v: 1 / math.sqrt(1 + float(v) ** 2)  # noqa: E731
    y = x_ve * alpha(sig[0])
    for k, t in enumerate(sch.timesteps):
        v = float(sig[k])
        y = sch.step(gm(y / alpha(v), torch.full((32,), v, dtype=torch.float64)), t, y).prev_sample
    noise = lambda s, s_next: z[sig.tolist().index(float(s))]  # noqa: E731
    return y / alpha(sig[-1]), sig, x_ve, noise, gm


@pytest.mark.parametrize(
    "p,q,lof,tau",
    [
        (2, 2, True, "default"),
        (2, 2, False, 0.8),
        (3, 4, True, 1.0),
        (3, 4, False, "sigma"),
        (4, 4, True, 0.5),
        (1, 1, True, 1.0),
        (1, 2, True, "default"),
    ],
)
def test_equals_diffusers_sasolver_scheduler(monkeypatch, p, q, lof, tau):
    n = 12
    if tau == "default":  # both defaults: diffusers' τ = 1 on t ∈ [200, 800], ours on the σ window
        tau_t = ours_tau = None
    elif tau == "sigma":
        grid = pytest.importorskip("diffusers").SASolverScheduler()
        grid.set_timesteps(n)
        sigma_of_t = {int(t): float(v) for t, v in zip(grid.timesteps, grid.sigmas.double())}
        ours_tau = lambda v: 0.2 + 0.6 * math.tanh(v)  # noqa: E731
        tau_t = lambda t: ours_tau(sigma_of_t[int(t)])  # noqa: E731
    else:
        tau_t, ours_tau = (lambda t: tau), tau
    ref, sig, x, noise, gm = _run_diffusers(monkeypatch, n, p=p, q=q, lof=lof, tau_t=tau_t)
    out = sample_sa_solver(gm, x, sig, None, None, True, ours_tau, 1.0, noise, p, q, lower_order_final=lof)
    assert (out - ref).abs().max().item() <= 1e-10 * max(1.0, ref.abs().max().item())
    if (p, q, lof, tau) == (2, 2, True, "default"):  # the paper variant is another sampler
        paper = sample_sa_solver_paper(gm, x, sig, None, None, True, None, 1.0, noise)
        assert (paper - ref).abs().max().item() > 1e-3


def test_equals_diffusers_on_other_beta_schedules(monkeypatch):
    for beta in ("scaled_linear", "squaredcos_cap_v2"):
        ref, sig, x, noise, gm = _run_diffusers(monkeypatch, 15, beta=beta, tau_t=lambda t: 0.8)
        out = sample_sa_solver(gm, x, sig, tau_func=0.8, noise_sampler=noise, disable=True)
        assert (out - ref).abs().max().item() <= 1e-10 * max(1.0, ref.abs().max().item())


# ------------------------------------------------------------------------------ closed forms
def _closed_form_run(sig, noise, tau, x, *, simple_term, last_simple_term):
    """x_{i+1} = (σ_{i+1}/σ_i) e^{−τ²h} x_i + (1 − e^{−ch}) D_i + T_i + σ_{i+1} √(1 − e^{−2τ²h}) z_i for the
    denoiser D = a + bλ, T_i = b c h_i²/2 when ``simple_term`` (the order-2 weights of eq. (48), predictor and
    corrector alike), else T_i = b (h_i − (1 − e^{−ch_i})/c) (the exact integral of the linear part)."""
    a, b = 0.4, -0.3
    s = [float(v) for v in sig]
    y = x.clone()
    for i in range(len(s) - 1):
        lam_s, c, h = -math.log(s[i]), 1 + tau**2, math.log(s[i] / s[i + 1])
        simple = simple_term if i < len(s) - 2 else last_simple_term
        if simple is None:
            extra = 0.0
        elif simple:
            extra = b * c * h * h / 2
        else:
            extra = b * (h - (1 - math.exp(-c * h)) / c)
        y = (s[i + 1] / s[i]) * math.exp(-(tau**2) * h) * y + (1 - math.exp(-c * h)) * (a + b * lam_s) + extra
        y = y + s[i + 1] * math.sqrt(1 - math.exp(-2 * tau**2 * h)) * noise(s[i], s[i + 1])
    return y


@pytest.mark.parametrize("tau", [0.0, 0.6, 1.0])
def test_order_2_simplification_adds_its_closed_form_term(tau):
    """For D linear in λ the corrected steps of diffusers' default carry the slope weight c h²/2 (eq. (48)), not
    the exact h − (1 − e^{−ch})/c; with lower_order_final the last step is first order (eq. (49))."""
    sig = get_sigmas_karras(7, 0.05, 20.0)[:-1]
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    noise, _ = _keyed_noise(sig, x.shape)
    model = _linear_in_lambda()
    for lof, last in ((True, None), (False, True)):
        out = sample_sa_solver(model, x, sig, tau_func=tau, noise_sampler=noise, disable=True, lower_order_final=lof)
        ref = _closed_form_run(sig, noise, tau, x, simple_term=True, last_simple_term=last)
        torch.testing.assert_close(out, ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("tau", [0.0, 0.6, 1.0])
@pytest.mark.parametrize("p,q", [(2, 2), (3, 4), (4, 4), (2, 3)])
def test_exact_weights_are_exact_for_a_denoiser_linear_in_lambda(tau, p, q):
    """With the exact weights of eq. (47) every corrected step and every predictor step of order ≥ 2 integrates
    D = a + bλ exactly (the first predictor, of order 1, is replaced by its corrector)."""
    sig = get_sigmas_karras(7, 0.05, 20.0)[:-1]
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    noise, _ = _keyed_noise(sig, x.shape)
    out = sample_sa_solver_paper(
        _linear_in_lambda(),
        x,
        sig,
        tau_func=tau,
        noise_sampler=noise,
        disable=True,
        predictor_order=p,
        corrector_order=q,
    )
    ref = _closed_form_run(sig, noise, tau, x, simple_term=False, last_simple_term=False)
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("c", [1.0, 1.49, 2.0])
def test_lagrange_weights_integrate_polynomials_exactly(k, c):
    from ersde_theory.solvers.baselines import _lagrange_exp_weights

    rng = np.random.default_rng(k)
    nodes = np.sort(rng.uniform(-2.0, 1.0, k))[::-1]
    lam_s, lam_t = float(nodes[0]), float(nodes[0]) + 0.8
    coef = rng.normal(size=k)
    f = lambda u: float(np.polyval(coef, u))  # noqa: E731  degree k − 1
    w = _lagrange_exp_weights(nodes, lam_s, lam_t, c)
    exact = quad(lambda u: c * math.exp(-c * (lam_t - u)) * f(u), lam_s, lam_t, epsabs=0.0, epsrel=1e-13)[0]
    assert sum(wj * f(nj) for wj, nj in zip(w, nodes)) == pytest.approx(exact, rel=1e-12, abs=1e-14)


def _ode_errors(sampler, ns, **kw):
    """|x_N − x_exact| of the probability-flow ODE (τ = 0) for N(m, s0²) data, log-uniform σ 10 → 0.1:
    x(σ) = m + (x_0 − m) √((s0² + σ²)/(s0² + σ_0²))."""
    m, s0 = 0.3, 0.5
    x0 = torch.tensor([[20.0], [-40.0]], dtype=torch.float64)
    errs = []
    for n in ns:
        sig = torch.exp(torch.linspace(math.log(10.0), math.log(0.1), n + 1, dtype=torch.float64))
        out = sampler(gaussian_denoiser(m, s0), x0, sig, tau_func=0.0, disable=True, **kw)
        exact = m + (x0 - m) * math.sqrt((s0**2 + 0.01) / (s0**2 + 100.0))
        errs.append((out - exact).abs().max().item())
    return errs


def test_measured_ode_orders():
    """diffusers' defaults are second order (the last step is first order, eq. (49)); the paper's (3, 4) is
    at least third order (measured ≈ 3.9 between 32 and 128 steps)."""
    e = _ode_errors(sample_sa_solver, (32, 128))
    assert 1.7 <= math.log(e[0] / e[1]) / math.log(4) <= 2.6
    e = _ode_errors(sample_sa_solver_paper, (32, 128))
    assert math.log(e[0] / e[1]) / math.log(4) >= 3.3


# ------------------------------------------------------------------------------ τ, noise, calls, bad input
def test_default_tau_window_is_ddpm_timesteps_200_to_800():
    """τ = 1 exactly on the σ's of the 1000-step DDPM linear schedule at t = 200 … 800 (σ = √(1/ᾱ − 1),
    ᾱ_t = Π (1 − β), β linear 1e-4 … 0.02), also after float32 rounding; 0 at t = 199 and 801."""
    ab = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))
    sig_t = np.sqrt(1 / ab - 1)
    tau = sa_solver_default_tau()
    for t in (200, 201, 500, 799, 800):
        assert tau(float(sig_t[t])) == 1.0 and tau(float(np.float32(sig_t[t]))) == 1.0
    for t in (0, 199, 801, 999):
        assert tau(float(sig_t[t])) == 0.0 and tau(float(np.float32(sig_t[t]))) == 0.0
    assert sa_solver_default_tau(0.5)(float(sig_t[400])) == 0.5


def test_noise_draws_and_model_calls():
    sig = get_sigmas_karras(6, 0.01, 20.0)
    x = torch.zeros(2, 2, dtype=torch.float64)
    calls, draws = [0], [0]

    def model(y, s):
        calls[0] += 1
        return 0.5 * y

    def noise(s, s_next):
        draws[0] += 1
        return torch.ones_like(x)

    sample_sa_solver(model, x, sig, tau_func=lambda s: np.float32(0.0), noise_sampler=noise, disable=True)
    assert (calls[0], draws[0]) == (6, 0)
    calls[0] = 0
    sample_sa_solver(model, x, sig, tau_func=1.0, noise_sampler=noise, disable=True, use_pece=True)
    assert (calls[0], draws[0]) == (11, 5)  # PECE: one more call per corrected step (steps 1 … 5)


def test_comfyui_positional_call():
    sig = get_sigmas_karras(6, 0.01, 20.0)
    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noise, _ = _keyed_noise(sig, x.shape)
    seen = []
    pos = sample_sa_solver(ring_2d(), x, sig, {}, seen.append, True, 0.5, 0.9, noise, 3, 4, False, False)
    kw = sample_sa_solver(
        ring_2d(),
        x,
        sig,
        tau_func=0.5,
        s_noise=0.9,
        noise_sampler=noise,
        disable=True,
        predictor_order=3,
        corrector_order=4,
        simple_order_2=False,
    )
    torch.testing.assert_close(pos, kw, rtol=0, atol=0)
    assert [d["i"] for d in seen] == list(range(6))
    with pytest.raises(TypeError):
        sample_sa_solver(ring_2d(), x, sig, {}, None, True, 0.5, 0.9, noise, 3, 4, False, False, True)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(predictor_order=5), "predictor_order"),
        (dict(corrector_order=-1), "corrector_order"),
        (dict(tau_func=-0.5), "tau"),
        (dict(tau_func=float("nan")), "tau"),
        (dict(tau_func=lambda s: -1.0), "tau"),
        (dict(tau_func=lambda s: "x"), "tau_func"),
        (dict(s_noise=-1.0), "s_noise"),
        (dict(convention="comfy"), "convention"),
    ],
)
def test_bad_input_raises_before_any_model_call(kw, match):
    calls = []
    model = lambda y, s: calls.append(1) or y  # noqa: E731
    with pytest.raises(ValueError, match=match):
        sample_sa_solver(model, torch.zeros(2, 2), get_sigmas_karras(4, 0.1, 1.0), **kw)
    assert not calls
