"""Noise-level discretisations, all float64.

VE (x_σ = x_0 + σ ε): Karras/EDM ρ-spacing and log-uniform spacing, descending, ending in 0 (k-diffusion's
convention). VP (x_t = α_t x_0 + σ_t ε, α² + σ² = 1): DDPM linear-β and cosine-ᾱ noise schedules,
discretised uniformly in time or in log-SNR, returning (α, σ, timesteps), or on the integer timestep grids of
diffusers' schedulers (``get_vp_discrete_schedule``). The VP → VE map is λ = σ/α.
Flow matching (α = 1 − σ, docs/theory.md eq. (35)): diffusers' FlowMatchEulerDiscreteScheduler grid with SD3's
static and Flux's dynamic shift.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "get_sigmas_karras",
    "get_sigmas_loguniform",
    "vp_alphas_cumprod",
    "get_vp_schedule",
    "vp_at_timesteps",
    "DISCRETE_SPACINGS",
    "discrete_timesteps",
    "lambda_to_timestep",
    "get_vp_discrete_schedule",
    "vp_to_lambda",
    "get_flow_schedule",
    "flow_shift",
]


def _check_range(n: int, sigma_min: float, sigma_max: float) -> None:
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"number of steps must be an integer >= 1, got {n!r}")
    if not (math.isfinite(sigma_min) and math.isfinite(sigma_max) and 0 < sigma_min < sigma_max):
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")


def get_sigmas_karras(
    n: int, sigma_min: float, sigma_max: float, rho: float = 7.0, *, final_zero: bool = True
) -> torch.Tensor:
    """EDM eq. (5): σ_i = (σ_max^{1/ρ} + i/(n−1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ, i = 0…n−1, then 0.

    Returns a float64 tensor of n+1 values. ``n = 1`` gives [σ_max, 0]. With ``final_zero=False`` the final
    0 is left out (n values, n − 1 steps ending at σ_min): the grids of the order studies, on which the
    last step to σ = 0 (which returns x_θ) would hide the integration error.
    """
    _check_range(n, sigma_min, sigma_max)
    if not rho > 0:
        raise ValueError(f"rho must be positive, got {rho}")
    ramp = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    sig = (hi + ramp * (lo - hi)) ** rho
    return torch.from_numpy(np.append(sig, 0.0) if final_zero else sig)


def get_sigmas_loguniform(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """σ_i log-uniform from σ_max to σ_min (n values), then 0; float64, n+1 values."""
    _check_range(n, sigma_min, sigma_max)
    sig = np.geomspace(sigma_max, sigma_min, n) if n > 1 else np.array([sigma_max])
    return torch.from_numpy(np.append(sig, 0.0))


def vp_alphas_cumprod(
    kind: str = "linear", T: int = 1000, *, beta_start: float = 1e-4, beta_end: float = 0.02, cosine_s: float = 0.008
) -> np.ndarray:
    """Discrete ᾱ_t, t = 0…T−1, float64.

    ``linear``: DDPM, β_t linear from ``beta_start`` to ``beta_end``, ᾱ_t = Π_{i≤t} (1 − β_i).
    ``cosine``: Nichol & Dhariwal, ᾱ(t) = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s) · π/2), β clipped at 0.999.
    """
    if kind == "linear":
        betas = np.linspace(beta_start, beta_end, T, dtype=np.float64)
    elif kind == "cosine":
        f = lambda t: np.cos((t / T + cosine_s) / (1 + cosine_s) * np.pi / 2) ** 2  # noqa: E731
        t = np.arange(T + 1, dtype=np.float64)
        betas = np.clip(1 - f(t[1:]) / f(t[:-1]), 0.0, 0.999)
    else:
        raise ValueError(f"unknown VP schedule {kind!r}; use 'linear' or 'cosine'")
    return np.cumprod(1.0 - betas)


def vp_at_timesteps(t, alphas_cumprod) -> tuple[np.ndarray, np.ndarray]:
    """(α, σ) at continuous timesteps t ∈ [0, T−1]: log ᾱ linearly interpolated between the integers
    (exact at integer t), α = sqrt(ᾱ), σ = sqrt(1 − ᾱ). Float64."""
    log_ab = np.log(np.asarray(alphas_cumprod, dtype=np.float64))
    la = np.interp(np.asarray(t, dtype=np.float64), np.arange(log_ab.size, dtype=np.float64), log_ab)
    return np.exp(0.5 * la), np.sqrt(-np.expm1(la))


# --- VP schedules on diffusers' integer timestep grids -------------------------------------------------------

DISCRETE_SPACINGS = ("linspace", "leading", "trailing")


def discrete_timesteps(n: int, T: int = 1000, spacing: str = "linspace", steps_offset: int = 0) -> np.ndarray:
    """The ``n`` integer model-call timesteps of diffusers' multistep schedulers (descending, int64), by
    ``spacing`` (Lin et al. 2023, arXiv 2305.08891, Table 2), none at the end point t = 0 of "linspace":

    * ``linspace``: round(k (T−1)/n), k = n … 1 (n = 2 gives [999, 500] for T = 1000);
    * ``leading``: k ⌊T/(n+1)⌋ + ``steps_offset``, k = n … 1;
    * ``trailing``: round(T − k T/n) − 1, k = 0 … n−1 (always n values; diffusers' ``arange`` version adds
      a timestep −1 for some n, e.g. 61 of T = 1000).

    Rounding can repeat a timestep (``linspace`` with n = T): the caller decides what to do with repeats.
    """
    if spacing not in DISCRETE_SPACINGS:
        raise ValueError(f"timestep_spacing must be one of {DISCRETE_SPACINGS}, got {spacing!r}")
    if isinstance(n, bool) or not (isinstance(n, (int, np.integer)) and 1 <= n <= T):
        raise ValueError(
            f"num_inference_steps must be an integer in [1, {T}] (num_train_timesteps) for integer timesteps, got {n!r}"
        )
    if spacing == "linspace":
        return np.rint(np.linspace(0.0, T - 1, n + 1))[:0:-1].astype(np.int64)
    if spacing == "leading":
        ratio = T // (n + 1)
        if ratio == 0:
            raise ValueError(f"timestep_spacing='leading' needs num_inference_steps < {T}, got {n}")
        return np.arange(n, 0, -1, dtype=np.int64) * ratio + int(steps_offset)
    return np.rint(T - np.arange(n) * (T / n)).astype(np.int64) - 1


def lambda_to_timestep(lam, alphas_cumprod) -> np.ndarray:
    """Continuous timesteps t with λ(t) = ``lam`` (λ = sqrt((1 − ᾱ)/ᾱ), eq. (19)), log λ interpolated linearly
    between the integer timesteps and clipped to [0, T−1]. Float64."""
    ab = np.asarray(alphas_cumprod, dtype=np.float64)
    log_lam = 0.5 * (np.log(-np.expm1(np.log(ab))) - np.log(ab))  # increasing in t
    x = np.log(np.maximum(np.asarray(lam, dtype=np.float64), 1e-300))
    return np.interp(x, log_lam, np.arange(ab.size, dtype=np.float64))


def get_vp_discrete_schedule(
    n: int,
    alphas_cumprod,
    *,
    spacing: str = "linspace",
    steps_offset: int = 0,
    karras: bool = False,
    final_zero: bool = True,
):
    """(α, σ, timesteps) on diffusers' integer grids, float64 tensors, m + 1 values for m ≤ n model calls.

    Model calls at :func:`discrete_timesteps` (repeats dropped), with (α, σ) = (sqrt(ᾱ_t), sqrt(1 − ᾱ_t)).
    ``karras``: λ = σ/α on the Karras grid (EDM eq. (5), ρ = 7) from λ(T−1) down to λ(0), (α, σ) =
    (1, λ)/sqrt(1 + λ²) there, the model called at the rounded t of :func:`lambda_to_timestep`.
    The last point is σ = 0 (``final_zero``, timestep −1: never a model call, the last step returns the
    denoiser output) or t = 0 (diffusers' ``final_sigmas_type="sigma_min"``); when the last model call is
    already at λ(0) (Karras, or "trailing" with n > 2T/3), that zero-length step is dropped with its model call.
    """
    ab = np.asarray(alphas_cumprod, dtype=np.float64)
    T = ab.size
    if karras:
        discrete_timesteps(n, T)  # the same check of n
        lam_all = np.sqrt(-np.expm1(np.log(ab)) / ab)
        lam = get_sigmas_karras(n, float(lam_all[0]), float(lam_all[-1]), final_zero=False).numpy()
        t = np.rint(lambda_to_timestep(lam, ab))
        alphas = 1.0 / np.sqrt(1.0 + lam**2)
        sigmas = lam * alphas
    else:
        t = np.unique(discrete_timesteps(n, T, spacing, steps_offset))[::-1].astype(np.float64)
        if t[0] > T - 1:
            raise ValueError(f"steps_offset={steps_offset} puts a timestep beyond {T - 1}")
        alphas, sigmas = vp_at_timesteps(t, ab)
    if final_zero:
        a_end, s_end, t_end = 1.0, 0.0, -1.0
    else:
        (a_end,), (s_end,) = vp_at_timesteps([0.0], ab)
        t_end = 0.0
        if alphas.size > 1 and sigmas[-1] / alphas[-1] <= (s_end / a_end) * (1 + 1e-9):
            alphas, sigmas, t = alphas[:-1], sigmas[:-1], t[:-1]
    out = (np.append(alphas, a_end), np.append(sigmas, s_end), np.append(t, t_end))
    return tuple(torch.from_numpy(v) for v in out)


VP_SPACINGS = ("time", "logsnr")  # get_vp_schedule's step spacings


def get_vp_schedule(
    n: int,
    kind: str = "linear",
    spacing: str = "time",
    *,
    T: int = 1000,
    t_end: float = 0.0,
    final_zero: bool = False,
    alphas_cumprod=None,
    **schedule_kw,
):
    """(α, σ, timesteps) for ``n`` VP steps, each a float64 tensor of n+1 values, descending noise.

    The discrete ᾱ_t is extended to continuous t ∈ [0, T−1] by linear interpolation of log ᾱ.
    ``spacing="time"``: t uniform from T−1 to ``t_end``; ``"logsnr"``: log(α/σ) exactly uniform between the
    same end points (timesteps by inverse interpolation). ``final_zero`` appends a last point α = 1, σ = 0
    (its timestep, −1, is never passed to a model: the last step returns the denoiser output).
    ``alphas_cumprod`` (T values, e.g. a diffusers scheduler's) replaces ``kind``/``T``/``schedule_kw``.
    """
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"number of steps must be an integer >= 1, got {n!r}")
    if alphas_cumprod is None:
        alphas_cumprod = vp_alphas_cumprod(kind, T, **schedule_kw)
    log_ab = np.log(np.asarray(alphas_cumprod, dtype=np.float64))
    T = log_ab.size
    grid = np.arange(T, dtype=np.float64)
    if not 0 <= t_end < T - 1:
        raise ValueError(f"t_end must lie in [0, {T - 1}), got {t_end}")
    m = n if final_zero else n + 1
    if spacing == "time":
        t = np.linspace(T - 1, t_end, m)
    elif spacing == "logsnr":
        logsnr = lambda la: 0.5 * (la - np.log(-np.expm1(la)))  # log(α/σ) from log ᾱ  # noqa: E731
        ls = logsnr(log_ab)  # increasing as t decreases
        targets = np.linspace(ls[-1], np.interp(t_end, grid, ls), m)
        t = np.interp(targets, ls[::-1], grid[::-1])
        t[0], t[-1] = T - 1, t_end
        la = -np.log1p(np.exp(-2.0 * targets))  # ᾱ = sigmoid(2 logSNR/2) exactly
    else:
        raise ValueError(f"unknown spacing {spacing!r}; use one of {VP_SPACINGS}")
    if spacing == "time":
        alphas, sigmas = vp_at_timesteps(t, alphas_cumprod)
    else:
        alphas, sigmas = np.exp(0.5 * la), np.sqrt(-np.expm1(la))
    if final_zero:
        alphas, sigmas, t = np.append(alphas, 1.0), np.append(sigmas, 0.0), np.append(t, -1.0)
    return tuple(torch.from_numpy(a) for a in (alphas, sigmas, t))


def vp_to_lambda(alphas, sigmas) -> torch.Tensor:
    """λ = σ/α: the VE noise level of x̄ = x/α (docs/theory.md eq. 19)."""
    a = torch.as_tensor(alphas, dtype=torch.float64)
    s = torch.as_tensor(sigmas, dtype=torch.float64)
    return s / a


def _real(name: str, value) -> float:
    """``value`` as a finite float: any real number, a numpy scalar or a one-element tensor; ValueError otherwise."""
    if isinstance(value, bool) or not hasattr(value, "__float__") or getattr(value, "ndim", 0) not in (0,):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return out


def flow_shift(sigma, shift: float = 1.0, mu: float | None = None):
    """The time shift of flow-matching schedules (float64): SD3's static shift σ' = sσ/(1 + (s − 1)σ), or with
    ``mu`` Flux's dynamic (resolution-dependent) shift σ' = e^μ/(e^μ + (1/σ − 1)), the same map with s = e^μ
    (σ = 0 ↦ 0, σ = 1 ↦ 1)."""
    sig = np.asarray(sigma, dtype=np.float64)
    s = math.exp(mu) if mu is not None else float(shift)
    return s * sig / (1.0 + (s - 1.0) * sig)


def get_flow_schedule(n: int, *, shift: float = 1.0, mu: float | None = None, num_train_timesteps: int = 1000):
    """(α, σ, timesteps) of a flow-matching model (x_t = (1 − σ) x_0 + σ ε, eq. (35)), each a float64 tensor of
    n+1 values: σ from 1 down to the shifted σ_min, then 0; α = 1 − σ; timesteps = T σ (T =
    ``num_train_timesteps``; the last, 0, is never passed to a model).

    The grid is diffusers' ``FlowMatchEulerDiscreteScheduler.set_timesteps(n, mu=mu)``, computed as it computes it
    (its float64 sigmas before its float32 cast; the float32 cast of these is its sigmas, exactly): σ_i = shift(u_i),
    u uniform in [σ_max, σ_min] (n values), the ends from diffusers' float32 training grid: σ_min = 1/T for the
    dynamic shift (``mu``: Flux) and σ_min = shift(1/T) for the static one (``shift``: SD3; diffusers shifts its
    training grid's minimum, then the inference grid). Where that float32 rounding puts the first σ a hair above 1
    (some shifts below 1), it is 1 exactly: the start at α = 0. ``shift`` > 0; ``mu`` (finite) selects the dynamic
    shift and must not contradict ``shift`` (leave it at 1 or give e^μ). Resolution-dependent μ (base/max
    shift, image sequence length) is the scheduler's concern.
    """
    if isinstance(n, bool) or not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"number of steps must be an integer >= 1, got {n!r}")
    if isinstance(num_train_timesteps, bool) or not (
        isinstance(num_train_timesteps, (int, np.integer)) and num_train_timesteps >= 2
    ):
        raise ValueError(f"num_train_timesteps must be an integer >= 2, got {num_train_timesteps!r}")
    shift = _real("shift", shift)
    if not shift > 0:
        raise ValueError(f"shift must be a finite number > 0, got {shift!r}")
    T = int(num_train_timesteps)
    if mu is not None:
        mu = _real("mu", mu)
        if abs(mu) > 700:  # e^mu overflows float64
            raise ValueError(f"mu={mu!r} is out of range: |mu| <= 700 (e^mu must be a finite float64)")
        if shift != 1.0 and not math.isclose(shift, math.exp(mu), rel_tol=1e-12):
            raise ValueError(
                f"mu={mu!r} (dynamic shift e^mu = {math.exp(mu):.6g}) contradicts shift={shift!r}: give one of them"
            )
    # diffusers' training grid σ = k/T, k = T … 1, in float32 (shifted there unless the shift is dynamic): its ends
    # bound the inference grid, which is then built and shifted in float64, as diffusers does
    train = torch.tensor([float(T), 1.0], dtype=torch.float32) / T
    if mu is None:
        train = shift * train / (1 + (shift - 1) * train)
    sigma_max, sigma_min = (float(v) for v in train)
    u = np.linspace(sigma_max * T, sigma_min * T, n) / T
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if mu is None:
            shifted = shift * u / (1 + (shift - 1) * u)
        else:
            shifted = math.exp(mu) / (math.exp(mu) + (1 / u - 1) ** 1.0)  # Flux's exponential time shift
        sig = np.append(shifted, 0.0)
    if 1.0 < sig[0] <= 1.0 + 1e-6:  # float32 rounding of diffusers' σ_max (shifts below 1): the start is σ = 1
        sig[0] = 1.0
    if not np.all(np.isfinite(sig)) or np.any(np.diff(sig) >= 0) or not (sig[0] == 1.0 and sig[-2] > 0):
        what, nearer = (f"mu={mu!r}", "mu nearer 0") if mu is not None else (f"shift={shift!r}", "shift nearer 1")
        raise ValueError(
            f"{what} gives no usable {n}-step flow schedule (its sigmas must fall strictly from 1 to above 0, got "
            f"{float(sig[0]):.6g} … {float(sig[-2]):.6g}): use a {nearer}"
        )
    alphas = 1.0 - sig
    return torch.from_numpy(alphas), torch.from_numpy(sig), torch.from_numpy(T * sig)
