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
VP models (eqs. (19)–(21)) and flow-matching models (velocity v = ε − x_0, α = 1 − σ; eq. (35)) step the VP
state x itself with α_{i+1} times the coefficients on λ = σ/α (:func:`vp_step_coefficients`, eq. (36)); a
start at α = 0 (σ = 1, λ = ∞) is the limit of eqs. (37)–(40).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..coefficients.ersde import (
    QUADRATURES,
    StepCoefficients,
    check_admissible_lambda,
    delta_ell_to_infinity,
    ersde_coefficients,
    validate_sigmas,
)
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

DERIVATIVES = ("published", "corrected")
PREDICTIONS = ("eps", "x0", "v", "score", "flow")


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
    run = SamplerRun.kdiffusion(model, x, coefficients.sigmas, extra_args, callback, disable, noise_sampler, options)
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


def _vp_arrays(alphas, sigmas) -> tuple[np.ndarray, np.ndarray]:
    """Checked float64 (α, σ) of a VP schedule: same length, σ a valid schedule (strictly decreasing, ≥ 0),
    α in (0, 1] except α_0 = 0 (the start at λ = ∞, eq. (37); σ_0 > 0 there, so α + σ > 0 throughout)."""
    a = np.asarray(alphas.detach().cpu() if hasattr(alphas, "detach") else alphas, dtype=np.float64)
    s = validate_sigmas(sigmas)
    if a.shape != s.shape:
        raise ValueError(f"alphas and sigmas must have the same length, got {a.shape} and {s.shape}")
    ok = np.isfinite(a) & (a <= 1) & ((a > 0) | ((np.arange(a.size) == 0) & (a == 0)))
    if not np.all(ok):
        j = int(np.argmin(ok))
        raise ValueError(
            f"alphas must lie in (0, 1] (only alphas[0] may be 0: the start at sigma/alpha = inf), "
            f"got alphas[{j}]={a[j]!r}"
        )
    return a, s


@dataclass(frozen=True)
class VPStepCoefficients:
    """ER-SDE-Solver-k on a VP schedule, stepped in the VP variable x itself (docs/theory.md eq. (36)):

        x_{i+1} = g_i x_i + w_i0 D_i + w_i1 D_{i−1} + w_i2 D_{i−2} + noise_std_i z,

    g_i = α_{i+1} r_i/α_i, w_i = α_{i+1}·(a0, a1, a2) of eq. (28) at the order k_i = min(order, i + 1) the
    loop uses (lowered while the history fills), noise_std_i = α_{i+1} sqrt(λ_{i+1}² − λ_i² r_i²)
    = sqrt(σ_{i+1}² − g_i² σ_i²). A start at α_0 = 0 (λ_0 = ∞) is the limit of eqs. (37)–(40): no division
    by α_0. ``start_weight``: the third-order start eq. (26) in VP form, x_1 ← x_1 + start_weight (D_1 − D_0)
    (0 when not applied). A step to σ = 0 (``final``) returns α_N D_i. Float64 host arrays, one row per step;
    ``ve`` holds the λ-space coefficients (eqs. (9), (14)) of the steps with finite λ_i. Built by
    :func:`vp_step_coefficients`; :meth:`step` and :meth:`start` are the whole update.
    """

    alphas: np.ndarray  # N+1
    sigmas: np.ndarray  # N+1 (VP σ)
    lambdas: np.ndarray  # N+1, λ = σ/α (inf where α = 0)
    gain: np.ndarray  # N
    weights: np.ndarray  # (N, 3)
    noise_std: np.ndarray  # N
    start_weight: float
    order: int
    derivatives: str
    ve: StepCoefficients

    @property
    def final(self) -> np.ndarray:
        """Steps that end at σ = 0 (they return α_N x_θ)."""
        return self.sigmas[1:] == 0

    def draws_noise(self, i: int, s_noise: float = 1.0) -> bool:
        """Whether step i draws z (the rule of :func:`sample_er_sde`): every step to σ > 0 while ``s_noise > 0``
        and some step of the schedule has noise, so the draws do not depend on which steps have std 0."""
        return s_noise > 0 and self.sigmas[i + 1] > 0 and bool(np.any(self.noise_std > 0))

    def start(self, x: torch.Tensor, denoised: torch.Tensor, first_denoised: torch.Tensor) -> torch.Tensor:
        """Eq. (26) in VP form at step 1 (once D_1 is known; no model call): x_1 + start_weight (D_1 − D_0)."""
        return x + (denoised - first_denoised) * self.start_weight

    def step(self, i: int, x, denoised, history, z=None, s_noise: float = 1.0) -> torch.Tensor:
        """x_{i+1} from x_i, D_i and ``history`` = [D_{i−1}, D_{i−2}] (as far as known), eq. (36) via
        :func:`er_sde_step`; ``z`` ~ N(0, I) (None when no noise is injected), scaled by ``s_noise``."""
        if self.sigmas[i + 1] == 0:
            return denoised * float(self.alphas[-1])  # the last step to σ = 0: α_N x_θ
        w = tuple(float(v) for v in self.weights[i])
        std = float(self.noise_std[i]) * s_noise if z is not None else 0.0
        return er_sde_step(x, float(self.gain[i]), denoised, history, w, std, z)


def vp_step_coefficients(
    alphas,
    sigmas,
    nsf: NSFLike = "er_sde_5",
    quadrature: str = "exact",
    *,
    order: int = 3,
    derivatives: str = "published",
    correct_start: bool | None = None,
) -> VPStepCoefficients:
    """The per-schedule coefficients of ER-SDE-Solver-``order`` on the VP schedule (α, σ), eq. (36), computed
    once in float64 (see :class:`VPStepCoefficients`). ``alphas[0]`` may be 0 (σ_0 > 0): the first step is then
    the limit λ_0 → ∞ of eqs. (37)–(40), and φ must be admissible up to λ = ∞ (ValueError naming the first
    failing λ otherwise). ``correct_start`` (default: on for ``derivatives="corrected"``) sets the third-order
    start eq. (26) at order 3."""
    check_order(order, derivatives)
    if quadrature not in QUADRATURES:
        raise ValueError(f"unknown quadrature {quadrature!r}; use one of {QUADRATURES}")
    a, s = _vp_arrays(alphas, sigmas)
    if correct_start is None:
        correct_start = derivatives == "corrected"
    infinite = a[0] == 0
    with np.errstate(divide="ignore"):
        lam = s / a  # λ_0 = inf when α_0 = 0
    first = 1 if infinite else 0  # steps from a finite λ
    if lam.size - first >= 2:
        validate_sigmas(lam[first:], "lambdas = sigmas/alphas")
    pos = lam[lam > 0]
    nsf = check_admissible_lambda(nsf, float(pos.min()), float(pos.max()))  # the error names λ
    n = s.size - 1
    if lam.size - first >= 2:
        ve = ersde_coefficients(lam[first:], nsf, quadrature)  # eqs. (9), (14), (15) on λ
    else:  # one step, from λ = ∞ to λ_1
        ve = StepCoefficients(lam[first:], *(np.zeros(0) for _ in range(4)), nsf=nsf.name, quadrature=quadrature)
    pad = lambda v: np.concatenate([np.full(first, np.nan), v])  # noqa: E731   step 0 from λ = ∞: set below
    r, c1, c2, std_ve = pad(ve.r), pad(ve.c1), pad(ve.c2), pad(ve.noise_std)
    gain, std, weights = np.zeros(n), np.zeros(n), np.zeros((n, 3))
    lam_l, r_l, c1_l, c2_l = lam.tolist(), r.tolist(), c1.tolist(), c2.tolist()
    for i in range(n):
        if s[i + 1] == 0:
            weights[i] = (a[-1], 0.0, 0.0)  # returns α_N x_θ
            continue
        if infinite and i == 0:  # eqs. (37), (38): g_0 = (σ_1/σ_0) e^{−Δℓ(λ_1, ∞)}, data weight α_1
            dl = delta_ell_to_infinity(nsf, lam_l[1])
            gain[0] = s[1] / s[0] * math.exp(-dl)
            std[0] = s[1] * math.sqrt(-math.expm1(-2.0 * dl))
            weights[0] = (a[1], 0.0, 0.0)
            continue
        gain[i] = a[i + 1] * r[i] / a[i]
        std[i] = a[i + 1] * std_ve[i]
        k = min(order, i + 1)
        # eq. (28) on λ; with λ_0 = inf its weights of D_0 and its divisions by λ_1 − λ_0 give the limits of
        # eq. (40) in IEEE arithmetic (finite/∓inf = ∓0)
        weights[i] = np.multiply(a[i + 1], fused_weights(lam_l, r_l, c1_l, c2_l, i, k, derivatives))
    start_weight = 0.0
    if correct_start and order >= 3 and n >= 2 and s[2] > 0:  # eq. (26): C_1(λ_0, λ_1)/(λ_1 − λ_0)
        start_weight = float(a[1]) * (1.0 if infinite else c1_l[0] / (lam_l[1] - lam_l[0]))  # eq. (40)
    if not (np.all(np.isfinite(gain)) and np.all(np.isfinite(weights)) and np.all(np.isfinite(std))):
        raise ValueError("non-finite VP step coefficients (check the schedule and the NSF)")
    return VPStepCoefficients(a, s, lam, gain, weights, std, start_weight, order, derivatives, ve)


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
    noise, as in :func:`sample_er_sde`). ``options`` as for :func:`sample_er_sde`; ``noise_sampler`` and ``callback``
    see VP σ's and VP states.
    """
    check_x(x, options.get("check_finite", "end"))
    check_order(order, derivatives)
    s_noise = check_s_noise(s_noise)
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    c = vp_step_coefficients(
        alphas, sigmas, nsf, quadrature, order=order, derivatives=derivatives, correct_start=correct_start
    )
    times = ModelTimes(timesteps, c.sigmas.tolist(), x)  # t_i (or σ_i) as host numbers
    extra = options.pop("extra_args", None) or {}
    run = SamplerRun(model, x, c.sigmas, **options)
    a, s = c.alphas.tolist(), c.sigmas.tolist()

    history = []  # [D_{i−1}, D_{i−2}]
    for i, _, _ in run.range():
        out = check_model_output(model(x, times.at(i), **extra), x)
        denoised = to_x0(out, x, a[i], s[i], prediction)  # D_i, eqs. (21), (35)
        if i == 1 and c.start_weight != 0.0:
            x = c.start(x, denoised, history[0])  # eq. (26)
        run.report(i, x, run.sig_t[i], denoised)
        z = run.noise(i) if c.draws_noise(i, s_noise) else None  # drawn as in sample_er_sde
        x, history = c.step(i, x, denoised, history, z, s_noise), [denoised, *history[:1]]  # eq. (36)
    return run.finish(x)
