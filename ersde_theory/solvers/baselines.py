"""Baseline samplers for VE models, in k-diffusion's calling convention.

Every sampler takes ``(model, x, sigmas, extra_args=None, callback=None, disable=None, ...)`` positionally,
followed by k-diffusion's own keywords for that sampler, in its order and with its defaults (``s_churn``,
``s_tmin``, ``s_tmax``, ``s_noise``, ``eta``, ``noise_sampler``, ``solver_type``); the project's additions
(``generator``, ``check_finite``, and ``noise_sampler`` where k-diffusion has none) are keyword-only
(:class:`~ersde_theory.solvers._common.RunOptions`). ``model(x, sigma_batch, **extra_args) -> x_θ``, ``x`` the
initial state at ``sigmas[0]``; ``sigmas`` non-increasing (SA-Solver: strictly decreasing), may end in 0.
The callback gets k-diffusion's ``dict(x, i, sigma, sigma_hat, denoised)``. Deterministic samplers accept and
ignore the noise keywords. The signatures are written compactly, as k-diffusion writes them: its parameters
without annotations (``model`` a callable, ``x`` a ``torch.Tensor``, ``sigmas`` a 1-D tensor or array,
``extra_args`` a dict or None, ``callback`` and ``noise_sampler`` callables or None, ``disable`` a bool or None,
each keyword of the type of its default; ``tau_func``: see :func:`sample_sa_solver`), the project's keyword-only
ones annotated. Notation: σ_s = σ_i, σ_t = σ_{i+1}, D_i = x_θ(x_i, σ_i), λ = −log σ,
h_i = λ_{i+1} − λ_i = log(σ_i/σ_{i+1}), z ~ N(0, I). A step to σ = 0 returns x_θ of the last evaluation
(as ER-SDE and k-diffusion do), so the NFE of a one-evaluation-per-step sampler is the number of steps.

A repeated σ (σ_{i+1} = σ_i) is a zero-length step, handled as k-diffusion does: the model is still called
(and the callback), x does not move, and a stochastic sampler still draws that step's noise (with weight 0),
so the same seed gives the same samples. Multistep samplers keep only distinct λ nodes in their history, so
no divided difference divides by a zero step (where k-diffusion's multistep samplers produce NaN).

The VE forms used below (derivations in each docstring):
probability-flow ODE  dx/dσ = (x − x_θ)/σ;
ER SDE with h̃ = τ
    x_t = (σ_t/σ_s) e^{−τ² h} x_s + ∫_{λ_s}^{λ_t} c e^{−c(λ_t − λ)} x_θ(λ) dλ + σ_t √(1 − e^{−2τ² h}) z,   c = 1 + τ²
(variation of constants: docs/theory.md eq. (7) with φ = σ^{1+τ²}, first-order form eq. (30)).
Polynomial (Taylor / Lagrange) approximations of x_θ(λ) in λ give the DPM-Solver++ and SA-Solver families.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch

from ._common import RunOptions, SamplerRun, Unpack, check_nonneg, check_s_noise

# the samplers (each is exported by the package); exp_integrator_weights, sa_solver_default_tau are helpers
__all__ = ["sample_euler", "sample_heun", "sample_euler_ancestral", "sample_euler_maruyama", "sample_dpmpp_2m"]
__all__ += ["sample_dpmpp_2m_sde", "sample_dpmpp_3m_sde", "sample_dpmpp_3m_sde_exact", "sample_sa_solver"]
__all__ += ["sample_sa_solver_paper"]

SOLVER_TYPES = ("midpoint", "heun")


class _Churn:
    """EDM's churn (Karras et al. 2022, Algorithm 2, lines 4–6) with k-diffusion's noise draws: with N steps,
    γ_i = min(S_churn/N, √2 − 1) if S_tmin ≤ σ_i ≤ S_tmax else 0, σ̂ = σ_i (1 + γ_i),
    x̂ = x_i + S_noise √(σ̂² − σ_i²) z. While ``s_churn > 0`` (and ``s_noise > 0``) z is drawn on every step,
    γ_i = 0 included, as k-diffusion does, so the same seed gives the same samples; with ``s_churn = 0``
    nothing is drawn (the samples are the same, only the random state afterwards differs)."""

    def __init__(self, s_churn, s_tmin, s_tmax, s_noise):
        check_nonneg(s_churn=s_churn, s_tmin=s_tmin)
        self.s_noise = check_s_noise(s_noise)
        if not (isinstance(s_tmax, (int, float)) and s_tmin <= s_tmax):
            raise ValueError(f"s_tmax must be a number >= s_tmin = {s_tmin!r}, got {s_tmax!r}")
        self.s_churn, self.s_tmin, self.s_tmax = s_churn, s_tmin, s_tmax

    def __call__(self, run: SamplerRun, x: torch.Tensor, i: int, s: float) -> tuple[torch.Tensor, float]:
        """(x̂, σ̂) for step i from σ_i = s."""
        if self.s_churn == 0:
            return x, s
        gamma = min(self.s_churn / run.steps, math.sqrt(2.0) - 1.0) if self.s_tmin <= s <= self.s_tmax else 0.0
        z = run.noise(i) if self.s_noise > 0 else None
        s_hat = s * (1.0 + gamma)
        if gamma > 0 and z is not None:
            x = x + z * (self.s_noise * math.sqrt(s_hat * s_hat - s * s))
        return x, s_hat


@torch.no_grad()
def sample_euler(
    model, x, sigmas, extra_args=None, callback=None, disable=None,
    s_churn=0.0, s_tmin=0.0, s_tmax=float("inf"), s_noise=1.0,
    *, noise_sampler: Callable | None = None, **options: Unpack[RunOptions],
) -> torch.Tensor:  # fmt: skip
    """DDIM with η = 0 (Song et al. 2021, eq. 12 in VE variables) = Euler's method for the probability-flow
    ODE dx/dσ = (x − x_θ)/σ (Karras et al. 2022, eq. 3 with σ(t) = t), with EDM's churn (:class:`_Churn`;
    ``s_churn = 0``, the default, is deterministic):

        x_{i+1} = x̂ + (σ_{i+1} − σ̂)(x̂ − x_θ(x̂, σ̂))/σ̂ .
    """
    churn = _Churn(s_churn, s_tmin, s_tmax, s_noise)
    run = SamplerRun.kdiffusion(model, x, sigmas, extra_args, callback, disable, noise_sampler, options)
    for i, s, t in run.range():
        x, s_hat = churn(run, x, i, s)
        den = run.evaluate(i, x, s_hat)
        x = x + (x - den) * ((t - s_hat) / s_hat)
    return run.finish(x)


@torch.no_grad()
def sample_heun(
    model, x, sigmas, extra_args=None, callback=None, disable=None,
    s_churn=0.0, s_tmin=0.0, s_tmax=float("inf"), s_noise=1.0,
    *, noise_sampler: Callable | None = None, **options: Unpack[RunOptions],
) -> torch.Tensor:  # fmt: skip
    """EDM's stochastic sampler (Karras et al. 2022, Algorithm 2); ``s_churn = 0`` is its deterministic Heun
    sampler (Algorithm 1). With the churn of :class:`_Churn` (σ̂, x̂) and d = (x̂ − x_θ(x̂, σ̂))/σ̂:

        x_{i+1} = x̂ + (σ_{i+1} − σ̂) d,                                   and if σ_{i+1} ≠ 0:
        d' = (x_{i+1} − x_θ(x_{i+1}, σ_{i+1}))/σ_{i+1},   x_{i+1} = x̂ + (σ_{i+1} − σ̂)(d + d')/2.

    2N − 1 model calls when the schedule ends in 0 (a zero-length step also makes its two calls).
    """
    churn = _Churn(s_churn, s_tmin, s_tmax, s_noise)
    run = SamplerRun.kdiffusion(model, x, sigmas, extra_args, callback, disable, noise_sampler, options)
    for i, s, t in run.range():
        x, s_hat = churn(run, x, i, s)
        den = run.evaluate(i, x, s_hat)
        d = (x - den) * (1.0 / s_hat)
        x_next = x + d * (t - s_hat)
        if t > 0:
            d2 = (x_next - run.denoise(x_next, t)) * (1.0 / t)
            x_next = x + (d + d2) * (0.5 * (t - s_hat))
        x = x_next
    return run.finish(x)


@torch.no_grad()
def sample_euler_ancestral(
    model, x, sigmas, extra_args=None, callback=None, disable=None,
    eta=1.0, s_noise=1.0, noise_sampler=None, **options: Unpack[RunOptions],
) -> torch.Tensor:  # fmt: skip
    """Ancestral sampling: DDPM's posterior q(x_t | x_s, x_0 = D_s) (Ho et al. 2020, eqs. 6–7) in VE
    variables, with DDIM's η (Song et al. 2021, eq. 16) scaling its variance:

        σ_up = min(σ_t, η σ_t √(1 − σ_t²/σ_s²)),   σ_down = √(σ_t² − σ_up²),
        x_t = D_s + (σ_down/σ_s)(x_s − D_s) + S_noise σ_up z .

    η = 1 is DDPM (= ER-SDE-1 with φ = σ²); η = 0 is DDIM (= :func:`sample_euler`). Noise is drawn on every
    step to σ_t > 0 (zero-length ones included) while η > 0 and S_noise > 0.
    """
    check_nonneg(eta=eta)
    s_noise = check_s_noise(s_noise)
    run = SamplerRun.kdiffusion(model, x, sigmas, extra_args, callback, disable, noise_sampler, options)
    stochastic = eta > 0 and s_noise > 0
    for i, s, t in run.range():
        den = run.evaluate(i, x, s)
        s_up = min(t, eta * t * math.sqrt(max(1.0 - (t / s) ** 2, 0.0)))
        if t < s:
            x = den + (x - den) * (math.sqrt(t * t - s_up * s_up) / s)
        if stochastic and t > 0:
            x = x + run.noise(i) * (s_noise * s_up)
    return run.finish(x)


@torch.no_grad()
def sample_euler_maruyama(
    model, x, sigmas, extra_args=None, callback=None, disable=None,
    s_noise=1.0, noise_sampler=None, **options: Unpack[RunOptions],
) -> torch.Tensor:  # fmt: skip
    """Euler–Maruyama for the reverse-time SDE (Song et al. 2021, eq. 6) in σ as time (not in k-diffusion;
    its keywords in k-diffusion's style). VE has g² dt = d(σ²) = 2σ dσ and ∇ log p_σ = (x_θ − x)/σ², so
    going down in σ

        dx = 2 (x − x_θ)/σ dσ + √(2σ) dw̄,
        x_{i+1} = x_i + 2 (σ_{i+1} − σ_i)(x_i − D_i)/σ_i + S_noise √(2σ_i(σ_i − σ_{i+1})) z .

    The step to σ = 0 returns D_i (an Euler–Maruyama step there would add noise of std √2 σ_i).
    """
    s_noise = check_s_noise(s_noise)
    run = SamplerRun.kdiffusion(model, x, sigmas, extra_args, callback, disable, noise_sampler, options)
    for i, s, t in run.range():
        den = run.evaluate(i, x, s)
        if t == 0:
            x = den
        else:
            x = x + (x - den) * (2.0 * (t - s) / s)
            if s_noise > 0:
                x = x + run.noise(i) * (s_noise * math.sqrt(2.0 * s * (s - t)))
    return run.finish(x)


@torch.no_grad()
def sample_dpmpp_2m(
    model, x, sigmas, extra_args=None, callback=None, disable=None,
    *, noise_sampler: Callable | None = None, **options: Unpack[RunOptions],
) -> torch.Tensor:  # fmt: skip
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) for VE (α = 1, λ = −log σ):

        x_{i+1} = (σ_{i+1}/σ_i) x_i − (e^{−h_i} − 1) D̃_i,   D̃_i = (1 + 1/(2 r_i)) D_i − D_{i−1}/(2 r_i),
        r_i = h_{i−1}/h_i;   D̃_0 = D_0, and the step to σ = 0 returns D_i.

    This is :func:`sample_dpmpp_2m_sde` with η = 0 (whose gain is then σ_{i+1}/σ_i and slope weight
    (1 − e^{−h})/(2 r_i)), and runs through it.
    """
    return sample_dpmpp_2m_sde(
        model, x, sigmas, extra_args, callback, disable, 0.0, 1.0, noise_sampler, "midpoint", **options
    )


@torch.no_grad()
def sample_dpmpp_2m_sde(
    model, x, sigmas, extra_args=None, callback=None, disable=None,
    eta=1.0, s_noise=1.0, noise_sampler=None, solver_type="midpoint", **options: Unpack[RunOptions],
) -> torch.Tensor:  # fmt: skip
    """SDE-DPM-Solver++(2M) (Lu et al. 2022, "sde-dpmsolver++", second-order multistep).

    The module's ER SDE with τ² = η (η = 1: the reverse SDE) and x_θ linear in λ through D_{i−1}, D_i:

        x_{i+1} = (σ_{i+1}/σ_i) e^{−η h} x_i + W_0 D_i + w (D_i − D_{i−1})/h_{i−1} + S_noise σ_{i+1} √(1 − e^{−2ηh}) z,

    W_k from :func:`exp_integrator_weights` with c = 1 + η. ``solver_type="heun"``: w = W_1, the linear
    interpolant integrated exactly; ``"midpoint"`` (the default, as in k-diffusion): w = W_0 h/2, the slope's
    weight of the midpoint rule. The first step is first order (= ER-SDE-1 with φ = σ^{1+η}); the step to
    σ = 0 returns D_i.
    """
    check_nonneg(eta=eta)
    s_noise = check_s_noise(s_noise)
    if solver_type not in SOLVER_TYPES:
        raise ValueError(f"solver_type must be one of {SOLVER_TYPES}, got {solver_type!r}")

    def multistep(den, hist, h):
        w0, w1 = exp_integrator_weights(1.0 + eta, h, 1)
        if not hist:
            return den * w0
        old, h_old = hist[-1]
        return den * w0 + (den - old) * ((w1 if solver_type == "heun" else 0.5 * w0 * h) / h_old)

    run = SamplerRun.kdiffusion(model, x, sigmas, extra_args, callback, disable, noise_sampler, options)
    return _dpmpp_sde_loop(run, x, eta, s_noise, multistep)


def _dpmpp_sde_loop(run: SamplerRun, x: torch.Tensor, eta: float, s_noise: float, multistep: Callable) -> torch.Tensor:
    """The loop shared by SDE-DPM-Solver++(2M/3M): with h = log(σ_i/σ_{i+1}),
    x_{i+1} = (σ_{i+1}/σ_i) e^{−η h} x_i + multistep(D_i, hist, h) + S_noise σ_{i+1} √(1 − e^{−2ηh}) z, where
    ``hist`` holds (D_j, h_j) of the last two steps of nonzero length; the step to σ = 0 returns D_i, a
    zero-length step leaves x (and ``hist``) as they are and draws its noise (module docstring)."""
    hist: list[tuple[torch.Tensor, float]] = []
    stochastic = eta > 0 and s_noise > 0
    for i, s, t in run.range():
        den = run.evaluate(i, x, s)
        if t == 0:
            x = den
        elif t == s:
            if stochastic:
                run.noise(i)
        else:
            h = math.log(s / t)
            x = x * ((t / s) * math.exp(-eta * h)) + multistep(den, hist, h)
            if stochastic:
                x = x + run.noise(i) * (s_noise * t * math.sqrt(-math.expm1(-2.0 * eta * h)))
            hist = (hist + [(den, h)])[-2:]
    return run.finish(x)


def exp_integrator_weights(c: float, h: float, n: int = 2) -> list[float]:
    """W_k = ∫_0^h c e^{−c(h−u)} u^k/k! du, k = 0…n: the weights of the Taylor terms (λ − λ_s)^k/k! · x_θ^{(k)}
    in the module's ER-SDE step. W_0 = 1 − e^{−ch}, and W_k = h^k/k! − W_{k−1}/c (integration by parts);
    for ch < 1 the series W_k = h^k Σ_j (−1)^j (ch)^{j+1}/(k+j+1)! avoids the cancellation."""
    z = c * h
    if z < 1.0:
        out = []
        for k in range(n + 1):
            term, total, j = z / math.factorial(k + 1), 0.0, 0
            while abs(term) > 1e-18 * max(abs(total), 1e-300) or j < 2:
                total += term
                j += 1
                term *= -z / (k + j + 1)
            out.append(h**k * total)
        return out
    out = [-math.expm1(-z)]
    for k in range(1, n + 1):
        out.append(h**k / math.factorial(k) - out[-1] / c)
    return out


def _dpmpp_3m_sde(args, eta, s_noise, options, curvature: float) -> torch.Tensor:
    """SDE-DPM-Solver++(3M), eq. (46), with κ = ``curvature`` (2: exact quadratic; 1: k-diffusion)."""
    check_nonneg(eta=eta)
    s_noise = check_s_noise(s_noise)

    def multistep(den, hist, h):
        w0, w1, w2 = exp_integrator_weights(1.0 + eta, h, 2)
        if not hist:
            return den * w0
        d1, h1 = hist[-1]
        delta0 = (den - d1) * (1.0 / h1)
        if len(hist) < 2:
            return den * w0 + delta0 * w1
        d2, h2 = hist[-2]
        delta2 = (delta0 - (d1 - d2) * (1.0 / h2)) * (1.0 / (h1 + h2))
        return den * w0 + delta0 * w1 + delta2 * (w1 * h1 + curvature * w2)

    return _dpmpp_sde_loop(SamplerRun.kdiffusion(*args, options), args[1], eta, s_noise, multistep)


@torch.no_grad()
def sample_dpmpp_3m_sde(
    model, x, sigmas, extra_args=None, callback=None, disable=None,
    eta=1.0, s_noise=1.0, noise_sampler=None, **options: Unpack[RunOptions],
) -> torch.Tensor:  # fmt: skip
    """SDE-DPM-Solver++(3M) as k-diffusion and ComfyUI run it: the module's ER SDE with τ² = η and x_θ(λ)
    replaced by the quadratic p through the last three outputs (Taylor form around λ_i), with half the exact
    weight on its second derivative:

        x_{i+1} = (σ_{i+1}/σ_i) e^{−η h} x_i + W_0 D_i + W_1 p'(λ_i) + W_2 p''/2 + S_noise σ_{i+1} √(1 − e^{−2ηh}) z,

    W_k from :func:`exp_integrator_weights` with c = 1 + η; p' = δ_0 + δ_2 h_{i−1}, p'' = 2 δ_2 with the
    divided differences δ_0 = (D_i − D_{i−1})/h_{i−1}, δ_1 = (D_{i−1} − D_{i−2})/h_{i−2},
    δ_2 = (δ_0 − δ_1)/(h_{i−1} + h_{i−2}). (k-diffusion's φ_2 = W_1/h, φ_3 = −W_2/h², d1 = h p', d2 = h² p''/2.)
    Lower order while the history fills; the step to σ = 0 returns D_i. The exact quadratic weight W_2 p'' is
    :func:`sample_dpmpp_3m_sde_exact`.
    """
    return _dpmpp_3m_sde((model, x, sigmas, extra_args, callback, disable, noise_sampler), eta, s_noise, options, 1.0)


@torch.no_grad()
def sample_dpmpp_3m_sde_exact(
    model, x, sigmas, extra_args=None, callback=None, disable=None,
    eta=1.0, s_noise=1.0, noise_sampler=None, **options: Unpack[RunOptions],
) -> torch.Tensor:  # fmt: skip
    """SDE-DPM-Solver++(3M) with the quadratic interpolant integrated exactly: :func:`sample_dpmpp_3m_sde`
    with W_2 p'' (= 2 W_2 δ_2) in place of W_2 p''/2, so a denoiser quadratic in λ is integrated without
    error (the drift of every step is exact); the project's variant, not k-diffusion's.
    """
    return _dpmpp_3m_sde((model, x, sigmas, extra_args, callback, disable, noise_sampler), eta, s_noise, options, 2.0)


# ----------------------------------------------------------------------------------------- SA-Solver
_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)


def _lagrange_exp_weights(nodes, lam_s: float, lam_t: float, c: float) -> list[float]:
    """∫_{λ_s}^{λ_t} c e^{−c(λ_t − λ)} ℓ_j(λ) dλ for the Lagrange basis ℓ_j of ``nodes`` (Gauss–Legendre,
    24 points: exact to rounding for the degree ≤ 3 polynomials times the exponential used here)."""
    half = 0.5 * (lam_t - lam_s)
    u = lam_s + half * (_GL_X + 1.0)  # nodes in λ
    kern = half * _GL_W * c * np.exp(-c * (lam_t - u))
    out = []
    for j, nj in enumerate(nodes):
        basis = np.ones_like(u)
        for m, nm in enumerate(nodes):
            if m != j:
                basis *= (u - nm) / (nj - nm)
        out.append(float(np.dot(kern, basis)))
    return out


@lru_cache(maxsize=1)
def _paper_tau_range() -> tuple[float, float]:
    """σ = √(1/ᾱ − 1) of the 1000-step DDPM linear schedule (eq. (22)) at t = 199.5 and t = 800.5, log σ
    interpolated linearly between the neighbouring integers (diffusers' σ → t map)."""
    from ..coefficients.schedules import vp_alphas_cumprod

    log_sig = 0.5 * np.log(1.0 / vp_alphas_cumprod("linear") - 1.0)
    return tuple(float(np.exp(0.5 * (log_sig[t] + log_sig[t + 1]))) for t in (199, 800))


def sa_solver_default_tau(eta: float = 1.0) -> Callable[[float], float]:
    """SA-Solver's default τ: η in the middle of sampling, 0 at both ends (Xue et al. 2023, §5; diffusers'
    ``SASolverScheduler`` default ``tau_func``: τ = 1 for the timesteps t ∈ [200, 800] of the 1000-step DDPM
    linear schedule). As a function of the VE noise level (eq. (19)): η on the σ's whose nearest DDPM timestep
    lies in [200, 800], i.e. σ ∈ [0.7214, 25.84] (the window runs to the half-integer timesteps 199.5 and
    800.5, so it gives the same τ as diffusers on its float32 σ's and on its rounded Karras timesteps)."""
    check_nonneg(eta=eta)
    lo, hi = _paper_tau_range()
    return lambda sigma: eta if lo <= sigma <= hi else 0.0


def _sa_solver_coefficients(
    sig: list[float],
    tau_func,
    s_noise: float,
    predictor_order: int,
    corrector_order: int,
    simple_order_2: bool,
    lower_order_final: bool,
    comfyui: bool,
):
    """Per step i: gain, noise std, predictor weights (on D_i, D_{i−1}, …) and corrector weights (on D_{i+1},
    D_i, …; None: no corrector), all float64, once per schedule: docs/theory.md eqs. (47)–(49)."""
    n = len(sig) - 1
    comfy_end = comfyui and lower_order_final and sig[-1] == 0
    lam = [-math.log(s) if s > 0 else math.inf for s in sig]
    gain, std, pred_w, corr_w = [0.0] * n, [0.0] * n, [None] * n, [None] * n
    distinct = 0  # how many of λ_i, λ_{i−1}, … are strictly increasing (a repeated σ restarts the count)
    for i in range(n):
        distinct = distinct + 1 if i > 0 and lam[i] > lam[i - 1] else 1
        if sig[i + 1] == 0:
            continue
        if sig[i + 1] == sig[i]:  # zero-length step: x_{i+1} = x_i
            gain[i], pred_w[i] = 1.0, []
            continue
        ti = tau_func(sig[i + 1] if comfyui else sig[i]) if callable(tau_func) else tau_func
        try:
            ti = float(ti)
        except (TypeError, ValueError):
            raise ValueError(f"tau_func must give a number, got {ti!r}") from None
        check_nonneg(tau=ti)
        c, h = 1.0 + ti * ti, lam[i + 1] - lam[i]
        gain[i] = (sig[i + 1] / sig[i]) * math.exp(-ti * ti * h)
        std[i] = s_noise * sig[i + 1] * math.sqrt(-math.expm1(-2.0 * ti * ti * h))
        p, q = min(predictor_order, distinct), min(corrector_order, distinct + 1)
        if lower_order_final and not comfyui:  # eq. (49)
            p, q = min(p, n - i), min(q, n - i + 1)
        elif comfy_end:
            p, q = min(p, n - i - 1), min(q, n - i - 1)
        w0 = -math.expm1(-c * h)
        if simple_order_2 and p == 2:  # eq. (48)
            b = c * h * h / (2.0 * (lam[i] - lam[i - 1]))
            pred_w[i] = [w0 + b, -b]
        else:
            pred_w[i] = _lagrange_exp_weights(lam[i - p + 1 : i + 1][::-1], lam[i], lam[i + 1], c)
        if simple_order_2 and q == 2:
            corr_w[i] = [0.5 * c * h, w0 - 0.5 * c * h]
        elif q:
            corr_w[i] = _lagrange_exp_weights(lam[i - q + 2 : i + 2][::-1], lam[i], lam[i + 1], c)
    return gain, std, pred_w, corr_w


def _check_sa_solver_options(tau_func, s_noise, predictor_order, corrector_order):
    if predictor_order not in (1, 2, 3, 4) or corrector_order not in (0, 1, 2, 3, 4):
        raise ValueError(
            f"predictor_order must be 1..4 and corrector_order 0..4, got {predictor_order!r}, {corrector_order!r}"
        )
    check_nonneg(s_noise=s_noise)
    if tau_func is not None and not callable(tau_func):
        check_nonneg(tau_func=tau_func)


def _sa_solver_loop(run: SamplerRun, x: torch.Tensor, coefficients, use_pece: bool) -> torch.Tensor:
    """Predict x_{i+1} from x_i; once D_{i+1} is known, redo that step with the corrector weights and the same
    z_i (eq. (47)); with ``use_pece`` re-evaluate D at the corrected state. A step to σ = 0 returns D_i (with
    ``use_pece`` after correcting x_i)."""
    gain, std, pred_w, corr_w = coefficients
    depth = max([len(w) for w in pred_w + corr_w if w is not None] + [1])
    hist: list[torch.Tensor] = []  # D_i, D_{i−1}, … (newest first)
    x_prev = z_prev = None
    for i, s, t in run.range():
        hist = [run.evaluate(i, x, s)] + hist[: depth - 1]
        if i > 0 and corr_w[i - 1] is not None and (t > 0 or use_pece):
            x = _adams_step(x_prev, gain[i - 1], corr_w[i - 1], hist, std[i - 1], z_prev)
            if use_pece:
                hist[0] = run.denoise(x, s)
        if t == 0:
            x = hist[0]
        else:
            z = run.noise(i) if std[i] > 0 else None
            x_prev, z_prev = x, z
            x = _adams_step(x, gain[i], pred_w[i], hist, std[i], z)
    return run.finish(x)


def _adams_step(x, gain, weights, hist, std, z):
    """gain · x + Σ_j weights[j] · hist[j] + std · z."""
    out = x * gain
    for w, d in zip(weights, hist):
        out.add_(d, alpha=w)
    if z is not None:
        out.add_(z, alpha=std)
    return out


@torch.no_grad()
def sample_sa_solver(
    model, x, sigmas, extra_args=None, callback=None, disable=None,
    tau_func=None, s_noise=1.0, noise_sampler=None, predictor_order=2, corrector_order=2,
    use_pece=False, simple_order_2=True,
    *, lower_order_final: bool = True, convention: str = "diffusers", generator=None, check_finite: str = "end",
) -> torch.Tensor:  # fmt: skip
    """SA-Solver as diffusers' ``SASolverScheduler`` runs it (data prediction; its defaults: predictor order 2,
    corrector order 2, its order-2 simplification, ``lower_order_final``), in VE variables: docs/theory.md
    eqs. (47)–(49). A stochastic Adams predictor–corrector for the ER SDE with h̃ = τ (eq. (30)), τ_i = τ(σ_i)
    held over step i:

        x_{i+1} = (σ_{i+1}/σ_i) e^{−τ_i² h_i} x_i + Σ_j b_ij D_{i−j} + s_noise σ_{i+1} √(1 − e^{−2τ_i² h_i}) z_i,

    b_ij the exponentially weighted integrals of the Lagrange basis through the last ``predictor_order``
    outputs (eq. (47)); once D_{i+1} is known the step is redone from x_i with the basis through D_{i+1} and the
    last ``corrector_order`` − 1 outputs, and the same z_i (one model call per step; ``use_pece``: a second
    call at the corrected state, as ComfyUI's ``sample_sa_solver_pece``). ``simple_order_2`` replaces the
    order-2 weights by eq. (48) (diffusers always does this; ComfyUI's keyword of that name); with
    ``lower_order_final`` the orders drop over the last steps as diffusers' do (eq. (49)).

    Positional order and names are ComfyUI's ``sample_sa_solver`` (k-diffusion convention); the defaults are
    diffusers'. ``tau_func``: a function of σ, a constant, or None for :func:`sa_solver_default_tau` (diffusers'
    default window). The σ's are the VE noise levels of diffusers' ``scheduler.sigmas`` (VP state x = α x_VE,
    eq. (19)); a step to σ = 0 returns D_i. In float64 on diffusers' σ grid this equals diffusers 0.42 to
    ≤ 1e-11 of the state's size (diffusers' σ's kept in float64; its float32 σ storage alone moves its result
    by ~1e-6). τ ≡ 0 gives the deterministic Adams exponential integrator (measured ODE order 2 with the
    defaults: the last step is first order). ``s_noise`` ≠ 1 scales the injected noise and so leaves the ER SDE.

    ``convention="comfyui"`` follows ComfyUI's ``sample_sa_solver`` in its two differences from diffusers: τ_i =
    τ(σ_{i+1}), and the orders lowered near the end only for a schedule ending in 0, by its rule
    p_i ≤ N − 1 − i and corrector order ≤ N − 1 − i for step i (N steps, the last to σ = 0; applied when
    ``lower_order_final``). With ComfyUI's defaults passed (``predictor_order=3, corrector_order=4,
    simple_order_2=False``) it equals ComfyUI's sampler to ~1e-12 in float64 (ComfyUI's ``tau_func=None``
    reads the model's σ range; pass τ explicitly).
    The paper's variant (orders 3/4, exact weights, no lower-order end) is :func:`sample_sa_solver_paper`.
    """
    _check_sa_solver_options(tau_func, s_noise, predictor_order, corrector_order)
    if convention not in ("diffusers", "comfyui"):
        raise ValueError(f"convention must be 'diffusers' or 'comfyui', got {convention!r}")
    options = dict(generator=generator, check_finite=check_finite)
    run = SamplerRun.kdiffusion(model, x, sigmas, extra_args, callback, disable, noise_sampler, options)
    tau = sa_solver_default_tau() if tau_func is None else tau_func
    coefficients = _sa_solver_coefficients(
        run.sig,
        tau,
        s_noise,
        predictor_order,
        corrector_order,
        bool(simple_order_2),
        bool(lower_order_final),
        convention == "comfyui",
    )
    return _sa_solver_loop(run, x, coefficients, bool(use_pece))


@torch.no_grad()
def sample_sa_solver_paper(
    model, x, sigmas, extra_args=None, callback=None, disable=None,
    tau_func=None, s_noise=1.0, noise_sampler=None, predictor_order=3, corrector_order=4,
    *, generator=None, check_finite: str = "end",
) -> torch.Tensor:  # fmt: skip
    """SA-Solver, the paper's variant (Xue et al. 2023, eqs. 15 and 18; orders 3/4 of its unconditional
    experiments): eq. (47) with every weight the exact integral of the Lagrange basis, the full orders up to
    the last step, no order-2 simplification. It is :func:`sample_sa_solver` with ``predictor_order=3,
    corrector_order=4, simple_order_2=False, lower_order_final=False``, and differs from diffusers'
    ``SASolverScheduler`` in exactly those four settings (diffusers: 2, 2, its order-2 weights eq. (48), lower
    orders over the last steps eq. (49)). ``corrector_order=0``: predictor only.
    """
    return sample_sa_solver(
        model,
        x,
        sigmas,
        extra_args,
        callback,
        disable,
        tau_func,
        s_noise,
        noise_sampler,
        predictor_order,
        corrector_order,
        False,
        False,
        lower_order_final=False,
        generator=generator,
        check_finite=check_finite,
    )
