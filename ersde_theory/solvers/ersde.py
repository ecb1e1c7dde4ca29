"""ER-SDE-Solver-1/2/3 (Cui et al., arXiv 2309.06169), VE and VP (flow-matching models included).

One step from σ_s = σ_i to σ_t = σ_{i+1} is the Taylor solution, ``docs/theory.md`` eq. (16):

    x_t = r x_s + (1 − r) x_θ(x_s, σ_s) + C_1 x_θ' + C_2 x_θ'' + sqrt(σ_t² − σ_s² r²) z,   z ~ N(0, I),

with r, C_1, C_2 and the noise std computed once per schedule in float64 by
:func:`ersde_theory.coefficients.ersde.ersde_coefficients` (eqs. (9), (14), (15)); terms above order k dropped.
The derivatives are multistep estimates from stored denoiser outputs (one model call per step):

* ``derivatives="published"`` (the paper and the official code): eq. (23). D1 is the derivative at the
  midpoint (eq. (24)), so ER-SDE-Solver-3 is only globally second order.
* ``derivatives="corrected"``: the derivatives at σ_i of the quadratic through the last three outputs,
  eq. (25), and the third-order start eq. (26) (``correct_start``). Identical to ``published`` for order ≤ 2.

Substituting the estimates into eq. (16) makes the step one linear combination of stored outputs,
eq. (27) with the weights of eq. (28). Both samplers run the one step plan of :mod:`.plan` (every weight of
every step, the third-order start, the last step to σ = 0), which the diffusers schedulers
(``ersde_theory.diffusers_integration``) drive one call at a time: :func:`sample_er_sde` on a VE schedule (α ≡ 1),
:func:`sample_er_sde_vp` on a VP one, stepping the VP state x itself with α_{i+1} times the coefficients on
λ = σ/α (eq. (36)); a flow-matching schedule (velocity v = ε − x_0, α = 1 − σ; eq. (35)) starts at α = 0
(σ = 1, λ = ∞) with the limit of eqs. (37)–(40).

:func:`sample_er_sde`'s k-diffusion / ComfyUI parameters are written as in :mod:`.baselines`: compactly and without
annotations (``noise_scaler`` a callable or None, ``max_stage`` an int or None), its keyword-only ones annotated.
"""

from __future__ import annotations

import numpy as np
import torch

from ..coefficients.ersde import StepCoefficients
from ..theory.nsf import DEFAULT_NSF, NSFLike
from ._common import (
    ModelTimes,
    RunOptions,
    SamplerOptions,
    SamplerRun,
    Unpack,
    check_model_output,
    check_s_noise,
    check_x,
)
from .plan import DERIVATIVES, StepPlan, check_expansion, check_order, check_plan, step_plan, vp_step_coefficients

__all__ = ["DERIVATIVES", "PREDICTIONS", "sample_er_sde", "sample_er_sde_vp", "to_x0"]

PREDICTIONS = ("eps", "x0", "v", "score", "flow")


def _comfyui_names(order, nsf, noise_scaler, max_stage):
    """(order, nsf) from ComfyUI's ``max_stage`` and ``noise_scaler`` when given (ValueError on a conflict)."""
    if max_stage is not None:
        if isinstance(max_stage, bool) or max_stage not in (1, 2, 3):
            raise ValueError(f"max_stage must be 1, 2 or 3 (ComfyUI's name for order), got {max_stage!r}")
        if order != 3 and order != max_stage:
            raise ValueError(f"max_stage={max_stage!r} and order={order!r} disagree: pass one of them")
        order = max_stage
    if noise_scaler is not None:
        if not callable(noise_scaler):
            raise ValueError(f"noise_scaler must be a callable phi(lambda) on torch tensors, got {noise_scaler!r}")
        if nsf != DEFAULT_NSF:
            raise ValueError(f"noise_scaler and nsf={nsf!r} both given: pass one of them")

        def nsf(sigma, fn=noise_scaler):  # ComfyUI's noise scaler maps torch tensors
            lam = torch.as_tensor(np.asarray(sigma, dtype=np.float64))
            out = fn(lam)
            if not isinstance(out, torch.Tensor) or out.shape != lam.shape:
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(f"noise_scaler must return phi of each lambda, shape {tuple(lam.shape)}; got {got}")
            return out.numpy()

        nsf.__name__ = getattr(noise_scaler, "__name__", "noise_scaler")
    return order, nsf


@torch.no_grad()
def sample_er_sde(
    model, x, sigmas, extra_args=None, callback=None, disable=None,
    s_noise=1.0, noise_sampler=None, noise_scaler=None, max_stage=None,
    *, order: int = 3, nsf: NSFLike = DEFAULT_NSF, quadrature: str = "exact", derivatives: str = "published",
    correct_start: bool | None = None, coefficients: StepCoefficients | None = None, plan: StepPlan | None = None,
    **options: Unpack[RunOptions],
) -> torch.Tensor:  # fmt: skip
    """ER-SDE-Solver-``order`` for a VE model, eq. (16), in k-diffusion's and ComfyUI's calling convention.

    ``model(x, sigma_batch, **extra_args)`` returns the denoised estimate x_θ; ``x`` is the initial state at
    ``sigmas[0]`` (already scaled noise); ``sigmas`` is non-increasing and may end in 0 (a repeated σ is a
    zero-length step: the model is called, x stays, and its noise is drawn with weight 0; the derivative
    estimates use the outputs at distinct σ's). ``nsf`` is a registry name, a sympy expression in ``sigma``
    or a callable φ(σ). ``coefficients``: a precomputed :class:`StepCoefficients` on the same sigmas, used
    instead of ``nsf``/``quadrature`` (e.g. to study altered coefficients). ``correct_start`` (default: on
    for ``derivatives="corrected"``) applies the third-order start eq. (26) at order 3. ``plan``: a precomputed
    :class:`~ersde_theory.solvers.plan.StepPlan` of these sigmas (:func:`~ersde_theory.solvers.plan.step_plan`), to
    sample many batches on one schedule; it fixes order, NSF, quadrature, derivatives and start. ``generator``,
    ``check_finite``: :class:`~ersde_theory.solvers._common.RunOptions`; the callback gets k-diffusion's
    ``dict(x, i, sigma, sigma_hat, denoised)``, with x after the start correction.

    ``s_noise`` multiplies the injected noise: std → ``s_noise`` · sqrt(σ_t² − σ_s² r²). Only ``s_noise = 1``
    is the ER SDE: its marginals are those of the diffusion only then; ``s_noise < 1`` leaves less variance
    than the SDE needs (samples too smooth, ``s_noise = 0`` keeps only the drift of eq. (16), an ODE-like
    but not the probability-flow solver unless φ = σ), ``s_noise > 1`` adds too much. Noise is drawn on
    every step to σ > 0 while ``s_noise > 0`` and some step has noise.

    ComfyUI's ``sample_er_sde(model, x, sigmas, extra_args, callback, disable, s_noise, noise_sampler,
    noise_scaler, max_stage)`` maps as ``max_stage`` ↔ ``order`` and ``noise_scaler`` (φ of λ = σ/α on
    torch tensors; its default is x (e^{x^0.3} + 10) = the ``"er_sde_5"`` NSF) ↔ ``nsf`` as a callable; both
    are accepted under ComfyUI's names (a ComfyUI name that contradicts a non-default ``order``/``nsf`` is an
    error). ComfyUI's sums are
    ``quadrature="comfyui"`` (its float32 integration points); ``"comfyui_f64"`` is the same rule at float64
    points, ``"exact"`` (the default) the integrals eqs. (14)–(15) to rounding.
    """
    s_noise = check_s_noise(s_noise)
    order, nsf = _comfyui_names(order, nsf, noise_scaler, max_stage)
    if plan is None:
        plan = step_plan(  # every weight of every step, eqs. (26)–(28), once per schedule
            sigmas, nsf, quadrature, order=order, derivatives=derivatives, correct_start=correct_start,
            coefficients=coefficients,
        )  # fmt: skip
    else:
        check_plan(plan, sigmas)
    run = SamplerRun.kdiffusion(model, x, plan.sigmas, extra_args, callback, disable, noise_sampler, options)

    history = []  # [D_{i−1}, D_{i−2}], the outputs at the last two distinct σ's
    for i, s, t in run.range():
        denoised = run.denoise(x, s)  # D_i = x_θ(x_i, σ_i)
        if i == plan.start_step:
            x = plan.start(x, denoised, history[0])  # eq. (26)
        run.report(i, x, run.sig_t[i], denoised)
        z = run.noise(i) if plan.draws_noise(i, s_noise) else None
        x = plan.step(i, x, denoised, history, z, s_noise)  # eq. (27): r x + a0 D_i + a1 D_{i−1} + a2 D_{i−2} + std z
        if t < s:  # a repeated σ is a zero-length step: x stays, no output stored
            history = [denoised, *history[:1]]
    return run.finish(x)


def to_x0(out: torch.Tensor, x: torch.Tensor, alpha: float, sigma: float, prediction: str) -> torch.Tensor:
    """Convert a VP model output to the data prediction x_θ, eq. (21):
    eps: (x − σ ε̂)/α;  v (v = α ε − σ x_0): (α x − σ v̂)/(α² + σ²);  score: (x + σ² ŝ)/α;  x0: as is;
    flow (the velocity v = ε − x_0 of flow matching), eq. (35): (x − σ v̂)/(α + σ), defined for α + σ ≠ 0."""
    if prediction == "x0":
        return out
    if prediction == "eps":
        return (x - sigma * out) * (1.0 / alpha)
    if prediction == "v":
        return (alpha * x - sigma * out) * (1.0 / (alpha * alpha + sigma * sigma))
    if prediction == "score":
        return (x + sigma * sigma * out) * (1.0 / alpha)
    if prediction == "flow":
        if alpha + sigma == 0:
            raise ValueError(f"flow prediction needs alpha + sigma != 0, got alpha={alpha!r}, sigma={sigma!r}")
        return (x - sigma * out) * (1.0 / (alpha + sigma))
    raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")


@torch.no_grad()
def sample_er_sde_vp(
    model,
    x: torch.Tensor,
    alphas,
    sigmas,
    *,
    prediction: str = "eps",
    timesteps=None,
    order: int = 3,
    nsf: NSFLike = "er_sde_5",
    quadrature: str = "exact",
    derivatives: str = "published",
    correct_start: bool | None = None,
    s_noise: float = 1.0,
    plan: StepPlan | None = None,
    expansion: str = "lambda",
    **options: Unpack[SamplerOptions],
) -> torch.Tensor:
    """ER-SDE-Solver-``order`` for a VP model x_t = α_t x_0 + σ_t ε, through the VP → VE map, eq. (20).

    With x̄ = x/α and λ = σ/α the VP ER SDE is the VE ER SDE in (x̄, λ) with the same φ (eq. (19)); the loop
    steps x itself with the coefficients of :func:`vp_step_coefficients` (eq. (36): α_{i+1} times the VE
    update on λ), so a schedule may start at α_0 = 0 (σ_0 = 1 of a flow model, λ_0 = ∞): that first step is
    the limit of eqs. (37)–(40), with no division by α_0 and no offset of σ_0. ``alphas``/``sigmas`` hold N+1
    values; the model is called as ``model(x, timesteps[i] * ones(B))`` (or with ``sigmas[i]`` when
    ``timesteps`` is None) and its output is read as ``prediction`` ∈ {eps, x0, v, score, flow} (eqs. (21),
    (35); ``flow``: the velocity v = ε − x_0 of flow-matching models, x_θ = (x − σ v)/(α + σ)). ``s_noise``
    multiplies the injected noise (finite, ≥ 0; any value other than 1 leaves the ER SDE: 0 drops the noise
    but keeps the SDE's gain; noise is drawn on every step to σ > 0 while ``s_noise > 0`` and some step has
    noise, as in :func:`sample_er_sde`). ``plan``: a precomputed :class:`~ersde_theory.solvers.plan.StepPlan` of this
    schedule (:func:`~ersde_theory.solvers.plan.vp_step_coefficients`), as for :func:`sample_er_sde`. ``options`` as
    for :func:`sample_er_sde`; ``noise_sampler`` and ``callback`` see VP σ's and VP states.

    ``expansion``: the variable the model's data prediction D is Taylor-expanded in for the C_1, C_2 terms and
    the multistep derivatives. ``"lambda"`` (default, the paper's): λ = σ/α, eq. (20). ``"flow"``: the flow time
    s = λ/(1 + λ) = σ/(α + σ) (= σ when α = 1 − σ), eqs. (53)–(56): same exact gain and noise, weights finite
    at s = 1, so corrected ER-SDE-3 keeps its third order from σ = 1 (the λ expansion falls to order 2 there,
    docs/theory.md §9). Any VP schedule accepts it (a change of expansion variable; exact for every φ), not only
    flow models. A given ``plan`` fixes it.
    """
    check_x(x, options.get("check_finite", "end"))
    check_order(order, derivatives)
    check_expansion(expansion)
    s_noise = check_s_noise(s_noise)
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    if plan is None:
        plan = vp_step_coefficients(  # eqs. (36)–(40), once per schedule
            alphas, sigmas, nsf, quadrature, order=order, derivatives=derivatives, correct_start=correct_start,
            expansion=expansion,
        )  # fmt: skip
    else:
        check_plan(plan, sigmas, alphas)
    if prediction in ("eps", "score") and plan.alphas[0] == 0:
        raise ValueError(
            f"prediction={prediction!r} cannot start at alphas[0] = 0 (x0 = (x - sigma*eps)/alpha is undefined there): "
            "start below sigma = 1, or use a flow (velocity), v or x0 model"
        )
    times = ModelTimes(timesteps, plan.sigmas.tolist(), x)  # t_i (or σ_i) as host numbers
    extra = options.pop("extra_args", None) or {}
    run = SamplerRun(model, x, plan.sigmas, **options)
    a, s = plan.alphas.tolist(), plan.sigmas.tolist()

    history = []  # [D_{i−1}, D_{i−2}]
    for i, _, _ in run.range():
        out = check_model_output(model(x, times.at(i), **extra), x)
        denoised = to_x0(out, x, a[i], s[i], prediction)  # D_i, eqs. (21), (35)
        if i == plan.start_step:
            x = plan.start(x, denoised, history[0])  # eq. (26)
        run.report(i, x, run.sig_t[i], denoised)
        z = run.noise(i) if plan.draws_noise(i, s_noise) else None  # drawn as in sample_er_sde
        x = plan.step(i, x, denoised, history, z, s_noise)  # eq. (36): g x + w0 D_i + w1 D_{i−1} + w2 D_{i−2} + std z
        history = [denoised, *history[:1]]
    return run.finish(x)
