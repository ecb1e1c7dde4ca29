"""ER-SDE-Solver-1/2/3 (Cui et al., arXiv 2309.06169), VE and VP.

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
eq. (27) with the weights a0, a1, a2 of eq. (28): :func:`fused_weights` and :func:`er_sde_step`, shared
with the diffusers scheduler (``ersde_theory.images.scheduler``), which drives the same step one call at a
time. The first steps use lower order while the history fills; the step to σ = 0 returns x_θ.
VP models run the same loop on x̄ = x/α with λ = σ/α (eqs. (19)–(21)).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np
import torch

from ..coefficients.ersde import StepCoefficients, ersde_coefficients, validate_sigmas
from ..theory.nsf import DEFAULT_NSF, NSFLike
from ._common import RunOptions, SamplerOptions, SamplerRun, Unpack, check_model_output, check_s_noise, check_x

DERIVATIVES = ("published", "corrected")
PREDICTIONS = ("eps", "x0", "v", "score")


def check_order(order, derivatives) -> None:
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3 (an int), got {order!r} ({type(order).__name__})")
    if derivatives not in DERIVATIVES:
        raise ValueError(f"derivatives must be one of {DERIVATIVES}, got {derivatives!r}")


def fused_weights(sig, r, c1, c2, i: int, k: int, derivatives: str, prev=None) -> tuple[float, float, float]:
    """Weights (a0, a1, a2) of D_i, D_{i−1}, D_{i−2} in step i of ER-SDE-Solver-k, eq. (28).

    ``sig``, ``r``, ``c1``, ``c2`` are host float64 sequences (one entry per step, ``sig`` N+1 entries):
    the weights are computed on the host, so a GPU loop never waits for the device. ``prev``: the σ's of
    the stored outputs D_{i−1}, D_{i−2} when they are not σ_{i−1}, σ_{i−2} (a schedule with repeated σ's
    keeps only outputs at distinct σ's).
    """
    s1, s2 = prev if prev is not None else (sig[i - 1], sig[i - 2] if i >= 2 else None)
    a0, a1, a2 = 1.0 - r[i], 0.0, 0.0  # order 1: (1 − r) x_θ
    if k >= 2:  # + C_1 D1,  D1 = (D_i − D_{i−1})/Δ_i  (eq. (23))
        h = sig[i] - s1
        a0 += c1[i] / h
        a1 -= c1[i] / h
    if k >= 3:  # + C_2' D2,  D2 = 2 (D1_i − D1_{i−1})/(σ_i − σ_{i−2}); C_2' per eq. (28)
        h = sig[i] - s1
        h_old = s1 - s2
        c2_eff = c2[i] + (0.5 * c1[i] * h if derivatives == "corrected" else 0.0)  # eq. (25)
        e = 2.0 * c2_eff / (sig[i] - s2)
        a0 += e / h
        a1 -= e / h + e / h_old
        a2 += e / h_old
    return a0, a1, a2


def er_sde_step(x, r: float, denoised, history, weights, std: float, z) -> torch.Tensor:
    """x_{i+1} = r x_i + a0 D_i + a1 D_{i−1} + a2 D_{i−2} + std z, eq. (27) (= eq. (16)).

    ``history`` holds [D_{i−1}, D_{i−2}] as far as known; ``z`` may be None when ``std`` is 0.
    Four passes over the state (plus the noise), no temporaries beyond the result.
    """
    a0, a1, a2 = weights
    x_next = torch.mul(x, r).add_(denoised, alpha=a0)
    if a1 != 0.0:
        x_next.add_(history[0], alpha=a1)
    if a2 != 0.0:
        x_next.add_(history[1], alpha=a2)
    if std > 0.0:
        x_next.add_(z, alpha=std)
    return x_next


def third_order_start(x, denoised, first_denoised, c1_first: float, sig) -> torch.Tensor:
    """Eq. (26): x_1 + C_1(σ_0, σ_1) (D_1 − D_0)/(σ_1 − σ_0), applied once D_1 is known (no model call)."""
    return x + (denoised - first_denoised) * (c1_first / (sig[1] - sig[0]))


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
            return fn(torch.as_tensor(np.asarray(sigma, dtype=np.float64))).numpy()

        nsf.__name__ = getattr(noise_scaler, "__name__", "noise_scaler")
    return order, nsf


@torch.no_grad()
def sample_er_sde(
    model,
    x: torch.Tensor,
    sigmas,
    extra_args: dict | None = None,
    callback: Callable | None = None,
    disable: bool | None = None,
    s_noise: float = 1.0,
    noise_sampler: Callable | None = None,
    noise_scaler: Callable | None = None,
    max_stage: int | None = None,
    *,
    order: int = 3,
    nsf: NSFLike = DEFAULT_NSF,
    quadrature: str = "exact",
    derivatives: str = "published",
    correct_start: bool | None = None,
    coefficients: StepCoefficients | None = None,
    **options: Unpack[RunOptions],
) -> torch.Tensor:
    """ER-SDE-Solver-``order`` for a VE model, eq. (16), in k-diffusion's and ComfyUI's calling convention.

    ``model(x, sigma_batch, **extra_args)`` returns the denoised estimate x_θ; ``x`` is the initial state at
    ``sigmas[0]`` (already scaled noise); ``sigmas`` is non-increasing and may end in 0 (a repeated σ is a
    zero-length step: the model is called, x stays, and its noise is drawn with weight 0; the derivative
    estimates use the outputs at distinct σ's). ``nsf`` is a registry name, a sympy expression in ``sigma``
    or a callable φ(σ). ``coefficients``: a precomputed :class:`StepCoefficients` on the same sigmas, used
    instead of ``nsf``/``quadrature`` (e.g. to study altered coefficients). ``correct_start`` (default: on
    for ``derivatives="corrected"``) applies the third-order start eq. (26) at order 3. ``generator``,
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
    check_order(order, derivatives)
    if coefficients is None:
        coefficients = ersde_coefficients(sigmas, nsf, quadrature)  # eqs. (9), (14), (15): once per schedule
    elif not np.array_equal(coefficients.sigmas, validate_sigmas(sigmas, allow_repeats=True)):
        raise ValueError("coefficients were computed for other sigmas than the ones given")
    if correct_start is None:
        correct_start = derivatives == "corrected"
    run = SamplerRun(
        model,
        x,
        coefficients.sigmas,
        extra_args=extra_args,
        callback=callback,
        disable=disable,
        noise_sampler=noise_sampler,
        allow_repeats=True,
        **options,
    )
    c = coefficients
    sig, r, c1, c2 = (v.tolist() for v in (c.sigmas, c.r, c.c1, c.c2))  # host float64
    std = (c.noise_std * s_noise).tolist()
    stochastic = s_noise > 0 and bool(np.any(c.noise_std > 0))

    history, nodes = [], []  # [D_{i−1}, D_{i−2}] at distinct σ's, and those σ's
    start = None  # (D, C_1, σ_s, σ_t) of the first step, until the third-order start eq. (26) is applied
    for i, s, t in run.range():
        denoised = run.denoise(x, s)  # D_i = x_θ(x_i, σ_i)
        if start is not None and 0 < t < s:
            x = third_order_start(x, denoised, start[0], start[1], start[2:])  # eq. (26)
            start = None
        run.report(i, x, run.sig_t[i], denoised)
        z = run.noise(i) if stochastic and t > 0 else None
        if t == 0:
            x = denoised  # the last step to σ = 0: r = 0, returns x_θ
        elif t < s:
            k = min(order, len(history) + 1)  # the order is lowered while the history fills
            a = fused_weights(sig, r, c1, c2, i, k, derivatives, (nodes + [None, None])[:2])  # eq. (28)
            if correct_start and order >= 3 and not history:
                start = (denoised, c1[i], s, t)
            x = er_sde_step(x, r[i], denoised, history, a, std[i], z)  # eq. (27)
            history, nodes = [denoised, *history[:1]], [s, *nodes[:1]]
    return run.finish(x)


def vp_coefficients(alphas, sigmas, nsf: NSFLike, quadrature: str):
    """Checked float64 (α, σ) of a VP schedule and the step coefficients on λ = σ/α (eq. (19))."""
    a = np.asarray(alphas.detach().cpu() if hasattr(alphas, "detach") else alphas, dtype=np.float64)
    s = validate_sigmas(sigmas)
    if a.shape != s.shape:
        raise ValueError(f"alphas and sigmas must have the same length, got {a.shape} and {s.shape}")
    if not np.all(np.isfinite(a) & (a > 0) & (a <= 1)):
        raise ValueError(f"alphas must lie in (0, 1], got min {a.min()!r}, max {a.max()!r}")
    lam = validate_sigmas(s / a, "lambdas = sigmas/alphas")
    return a, s, ersde_coefficients(lam, nsf, quadrature)


def to_x0(out: torch.Tensor, x: torch.Tensor, alpha: float, sigma: float, prediction: str) -> torch.Tensor:
    """Convert a VP model output to the data prediction x_θ, eq. (21):
    eps: (x − σ ε̂)/α;  v (v = α ε − σ x_0): (α x − σ v̂)/(α² + σ²);  score: (x + σ² ŝ)/α;  x0: as is."""
    if prediction == "x0":
        return out
    if prediction == "eps":
        return (x - sigma * out) * (1.0 / alpha)
    if prediction == "v":
        return (alpha * x - sigma * out) * (1.0 / (alpha * alpha + sigma * sigma))
    if prediction == "score":
        return (x + sigma * sigma * out) * (1.0 / alpha)
    raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")


class _VPAsVE:
    """A VP model seen as a VE denoiser of x̄ = x/α on λ = σ/α (eqs. (19), (21)).

    :func:`sample_er_sde` calls its model exactly once per step, in step order, so the wrapper keeps the
    step index itself and passes the model its own input (α_i x̄, timestep_i) without reading λ back from
    the device.
    """

    def __init__(self, model, alphas, sigmas, timesteps, prediction, x):
        self.model, self.a, self.s, self.prediction = model, alphas.tolist(), sigmas.tolist(), prediction
        self.t_in = timesteps if timesteps is not None else torch.from_numpy(sigmas).to(x.device, x.dtype)
        self.i = 0

    def __call__(self, xbar, lam_batch, **extra_args):
        i, self.i = self.i, self.i + 1
        x = xbar * self.a[i]
        out = check_model_output(
            self.model(x, self.t_in[i] * torch.ones_like(lam_batch, dtype=self.t_in.dtype), **extra_args), x
        )
        return to_x0(out, x, self.a[i], self.s[i], self.prediction)


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
    **options: Unpack[SamplerOptions],
) -> torch.Tensor:
    """ER-SDE-Solver-``order`` for a VP model x_t = α_t x_0 + σ_t ε, through the VP → VE map, eq. (20).

    With x̄ = x/α and λ = σ/α the VP ER SDE is the VE ER SDE in (x̄, λ) with the same φ (eq. (19)), so this
    runs :func:`sample_er_sde` on (x̄, λ) and returns α_N x̄_N. ``alphas``/``sigmas`` hold N+1 values; the
    model is called as ``model(x, timesteps[i] * ones(B))`` (or with ``sigmas[i]`` when ``timesteps`` is
    None) and its output is read as ``prediction`` ∈ {eps, x0, v, score} (eq. (21)). ``options`` as for
    :func:`sample_er_sde`; ``noise_sampler`` and ``callback`` see VP σ's and VP states.
    """
    check_x(x, options.get("check_finite", "end"))
    check_order(order, derivatives)
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    a, s, coeffs = vp_coefficients(alphas, sigmas, nsf, quadrature)
    if timesteps is not None:
        timesteps = torch.as_tensor(timesteps)
        if timesteps.ndim != 1 or timesteps.shape[0] != s.shape[0]:
            raise ValueError(
                f"timesteps must have {s.shape[0]} entries like sigmas, got shape {tuple(timesteps.shape)}"
            )
        timesteps = timesteps.to(x.device)
    sig_vp = torch.from_numpy(s)
    vp_sigma = dict(zip(coeffs.sigmas.tolist(), s.tolist()))  # λ_i → σ_i (host floats)
    noise_sampler, callback = options.pop("noise_sampler", None), options.pop("callback", None)

    def vp_noise_sampler(lam, lam_next):
        return noise_sampler(sig_vp.new_tensor(vp_sigma[float(lam)]), sig_vp.new_tensor(vp_sigma[float(lam_next)]))

    def vp_callback(d):
        i = d["i"]
        callback(dict(d, x=d["x"] * float(a[i]), sigma=sig_vp[i], sigma_hat=sig_vp[i]))

    xbar = sample_er_sde(
        _VPAsVE(model, a, s, timesteps, prediction, x),
        x * float(1.0 / a[0]),
        coeffs.sigmas,
        order=order,
        derivatives=derivatives,
        correct_start=correct_start,
        coefficients=coeffs,
        noise_sampler=vp_noise_sampler if noise_sampler is not None else None,
        callback=vp_callback if callback is not None else None,
        **options,
    )
    return xbar * float(a[-1])
