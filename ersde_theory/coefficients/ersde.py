"""Per-schedule ER-SDE step coefficients, computed once in float64 (docs/theory.md eqs. (7)–(9), (13)–(15)).

For a step from σ_s down to σ_t < σ_s with G(σ) = φ_t/φ(σ) (so 0 < G ≤ 1 for admissible φ):

    r   = φ_t/φ_s                                                   (gain on x_s)
    std = sqrt(σ_t² − σ_s² r²)                                      (Itô isometry)
    C_1 = (σ_t − σ_s) + φ_t ∫_{σ_t}^{σ_s} dσ/φ          = −∫_{σ_t}^{σ_s} (1 − G(σ)) dσ
    C_2 = (σ_t − σ_s)²/2 + φ_t ∫_{σ_t}^{σ_s} (σ − σ_s)/φ dσ = ∫_{σ_t}^{σ_s} (σ_s − σ)(1 − G(σ)) dσ

The right-hand forms (integration by parts of C_n = φ_t ∫ φ'/φ² (σ−σ_s)^n/n! dσ) have sign-definite
integrands, so no O(h) terms cancel. ``quadrature``:

* ``"exact"`` (default): closed form for φ = c σ^p, otherwise Gauss–Legendre in log σ on panels of
  width ≤ 0.25, vectorised over all steps (relative error ~1e-14).
* ``"official"``: the official code's 100-point left Riemann sums of the left-hand forms, and its
  clipping of step variances |σ_t² − σ_s² r²| < 1e-6 to zero.
* ``"comfyui"``: ComfyUI's 200-point left Riemann sums (no clipping) at ComfyUI's float32 integration points
  p_k = fl32(fl32(σ_t) + fl32(k · fl32(Δ))), Δ = (σ_s − σ_t)/200, and its float32 offsets
  fl32(p_k − fl32(σ_s)) (its ``torch.arange(..., dtype=float32)`` wins type promotion over the float64 σ's);
  φ and the sums are then evaluated here in float64.
* ``"comfyui_f64"``: the same sums at float64 points σ_t + kΔ.

A step to σ_t = 0 has r = 0 and std = 0 (φ(0) = 0 for admissible φ): the solver returns x_θ there. A
zero-length step σ_t = σ_s (a repeated σ) has r = 1 and std = C_1 = C_2 = 0: it leaves x unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..theory.nsf import NoiseScaleFunction, NSFLike, resolve_nsf
from ..theory.quadrature import cumulative_integrate_log, log_nodes

QUADRATURES = ("exact", "official", "comfyui", "comfyui_f64")
_RIEMANN_POINTS = {"official": 100, "comfyui": 200, "comfyui_f64": 200}
OFFICIAL_VARIANCE_CLIP = 1e-6


@dataclass(frozen=True)
class StepCoefficients:
    """Float64 arrays of length N (one entry per step σ_i → σ_{i+1})."""

    sigmas: np.ndarray  # N+1 noise levels (VE σ, or λ for VP)
    r: np.ndarray
    noise_std: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    nsf: str
    quadrature: str

    @property
    def final(self) -> np.ndarray:
        """Steps that end at σ = 0 (the solver returns the denoiser output there)."""
        return self.sigmas[1:] == 0


def _psi(c: float, L: np.ndarray) -> np.ndarray:
    """ψ(c, L) = ∫_0^L e^{cv} dv."""
    return L.copy() if c == 0 else np.expm1(c * L) / c


def _exp_series(L: np.ndarray, coef, start: int, terms: int = 40) -> np.ndarray:
    """Σ_{k≥start} L^k/k! · coef(k), evaluated at min(L, 1) (used for L < 1 only)."""
    Ls = np.minimum(L, 1.0)
    series, term = np.zeros_like(L), Ls ** (start - 1) / math.factorial(start - 1)
    for k in range(start, terms):
        term = term * Ls / k  # L^k / k!
        series += term * coef(k)
    return series


def _dpsi(a: float, b: float, L: np.ndarray) -> np.ndarray:
    """ψ(a, L) − ψ(b, L) without cancellation: Σ_{k≥2} L^k/k! (a^{k−1} − b^{k−1}) for L < 1."""
    return np.where(L < 1.0, _exp_series(L, lambda k: a ** (k - 1) - b ** (k - 1), 2), _psi(a, L) - _psi(b, L))


def _power_c1_c2(p: float, t: np.ndarray, s: np.ndarray):
    """Closed forms for φ = c σ^p (``theory.symbolic.taylor.power_family_coefficients``); with
    v = log(σ/σ_t), L = log(σ_s/σ_t):
    ∫(1−G)dσ = σ_t [ψ(1,L) − ψ(1−p,L)],
    ∫(σ_s−σ)(1−G)dσ = σ_t² [e^L (ψ(1,L) − ψ(1−p,L)) − (ψ(2,L) − ψ(2−p,L))]
                    = σ_t² Σ_{k≥3} L^k/k! Σ_{j=1}^{k−2} (2^j − (2−p)^j)   (used for L < 1: no cancellation;
    both series are ``theory.symbolic.taylor.power_family_series``)."""
    L = np.log1p((s - t) / t)  # log(σ_s/σ_t); s − t is exact for close steps
    d1 = _dpsi(1.0, 1.0 - p, L)
    c2_series = _exp_series(L, lambda k: sum(2.0**j - (2.0 - p) ** j for j in range(1, k - 1)), 3)
    c2 = np.where(L < 1.0, c2_series, np.exp(L) * d1 - _dpsi(2.0, 2.0 - p, L))
    return -t * d1, t * t * c2


def _gl_c1_c2(nsf: NoiseScaleFunction, t: np.ndarray, s: np.ndarray):
    """C_1, C_2 by Gauss–Legendre in u = log σ (dσ = σ du), vectorised over steps."""
    sig, wu = log_nodes(t, s)  # (N, P, Q), increasing along P·Q
    # 1 − φ_t/φ(σ) = 1 − (σ_t/σ) e^{−Δℓ(σ)}, Δℓ(σ) = ℓ(σ) − ℓ(σ_t) = ∫_{σ_t}^{σ} h̃² du/u ≥ 0 (eq. (9)): for
    # an exact h̃² integrated from it (sign-definite, no cancellation of ℓ values), else ℓ differences
    tt = t[:, None, None]
    if nsf.exact_h2:
        dl = cumulative_integrate_log(nsf.h_tilde_sq, t, sig.reshape(t.size, -1)).reshape(sig.shape)
    else:
        dl = nsf.ell(sig) - nsf.ell(tt)
    one_minus_g = -np.expm1(np.log(tt / sig) - dl)
    w = wu * sig  # dσ weights
    i1 = np.sum(w * one_minus_g, axis=(1, 2))
    i2 = np.sum(w * (s[:, None, None] - sig) * one_minus_g, axis=(1, 2))
    return -i1, i2


def _riemann_c1_c2(nsf: NoiseScaleFunction, t: np.ndarray, s: np.ndarray, n: int, float32_points: bool = False):
    """The official left Riemann sums: points σ_t + k (σ_s − σ_t)/n, k = 0…n−1. ``float32_points``: ComfyUI's
    float32 points and float32 offsets point − σ_s, eq. (45), the sums still in float64."""
    dt = (s - t) / n
    if float32_points:
        pts32 = t.astype(np.float32)[:, None] + np.arange(n, dtype=np.float32)[None, :] * dt.astype(np.float32)[:, None]
        pts, offsets = pts32.astype(np.float64), (pts32 - s.astype(np.float32)[:, None]).astype(np.float64)
    else:
        pts = t[:, None] + np.arange(n)[None, :] * dt[:, None]
        offsets = pts - s[:, None]
    inv_phi = 1.0 / nsf(pts)
    s_int = np.sum(inv_phi, axis=1) * dt
    s_d_int = np.sum(offsets * inv_phi, axis=1) * dt
    phi_t = nsf(t)
    return (t - s) + s_int * phi_t, (t - s) ** 2 / 2 + s_d_int * phi_t


def validate_sigmas(sigmas, name: str = "sigmas", *, allow_repeats: bool = False) -> np.ndarray:
    """Float64 host copy of a noise-level schedule, checked: 1-D, ≥ 2 entries, finite, ≥ 0, decreasing, and
    only the last entry may be 0. ``allow_repeats``: non-increasing (a repeated σ is a zero-length step, as
    k-diffusion accepts); otherwise strictly decreasing."""
    try:
        raw = np.asarray(sigmas.detach().cpu() if hasattr(sigmas, "detach") else sigmas)
        if raw.dtype.kind not in "fiu":  # strings, objects, booleans: not numbers (numpy would convert "80")
            raise TypeError(f"got {raw.dtype.kind == 'U' and 'strings' or raw.dtype}")
        arr = raw.astype(np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a 1-D array of numbers: {e}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {tuple(arr.shape)}")
    if arr.size < 2:
        raise ValueError(f"{name} needs at least 2 entries (one step), got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{name} must be finite, got non-finite entries at {np.flatnonzero(~np.isfinite(arr)).tolist()}"
        )
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got {arr[arr < 0][0]!r} at index {int(np.argmax(arr < 0))}")
    d = np.diff(arr)
    bad = (d > 0) | ((d == 0) & (arr[1:] == 0)) if allow_repeats else d >= 0
    if np.any(bad):
        j = int(np.argmax(bad))
        rule = "non-increasing with a single trailing 0" if allow_repeats else "strictly decreasing"
        raise ValueError(f"{name} must be {rule}, but {name}[{j}]={arr[j]!r}, {name}[{j + 1}]={arr[j + 1]!r}")
    return arr


def ersde_coefficients(sigmas, nsf: NSFLike = "er_sde_5", quadrature: str = "exact") -> StepCoefficients:
    """r, noise std, C_1, C_2 for every step of ``sigmas`` (eqs. in the module docstring).

    Checks the schedule (non-increasing: a repeated σ is a zero-length step) and the admissibility of φ
    over its positive σ range first.
    """
    if quadrature not in QUADRATURES:
        raise ValueError(f"unknown quadrature {quadrature!r}; use one of {QUADRATURES}")
    sig = validate_sigmas(sigmas, allow_repeats=True)
    nsf = resolve_nsf(nsf)
    pos = sig[sig > 0]
    nsf.check_admissible(pos.min(), pos.max())
    s, t_all = sig[:-1], sig[1:]
    reg = t_all > 0
    t = t_all[reg]
    s_reg = s[reg]
    n = s.size
    r, std, c1, c2 = (np.zeros(n) for _ in range(4))
    if quadrature != "exact":  # the published codes' Riemann sums
        r[reg] = nsf(t) / nsf(s_reg)
        var = t**2 - s_reg**2 * r[reg] ** 2
        if quadrature == "official":
            var = np.where(np.abs(var) < OFFICIAL_VARIANCE_CLIP, 0.0, var)
        std[reg] = np.sqrt(np.maximum(var, 0.0))
        if t.size:
            c1[reg], c2[reg] = _riemann_c1_c2(nsf, t, s_reg, _RIEMANN_POINTS[quadrature], quadrature == "comfyui")
    else:
        dl = nsf.delta_ell(t, s_reg)  # log(φ_s σ_t / (φ_t σ_s)) ≥ 0
        r[reg] = (t / s_reg) * np.exp(-dl)
        var = -(t**2) * np.expm1(-2.0 * dl)  # σ_t² − σ_s² r²
        std[reg] = np.sqrt(np.maximum(var, 0.0))
        if t.size:
            c1[reg], c2[reg] = _power_c1_c2(nsf.power, t, s_reg) if nsf.power is not None else _gl_c1_c2(nsf, t, s_reg)
    return StepCoefficients(sigmas=sig, r=r, noise_std=std, c1=c1, c2=c2, nsf=nsf.name, quadrature=quadrature)


# ------------------------------------------------------------------ the start at λ = σ/α = ∞ (α = 0, σ = 1)
# "up to λ = ∞": admissibility is checked on [λ_min, 1e8] (σ = 1 − 1e-8 of a flow; er_sde_4 fails near 1e3)
LAMBDA_CHECK_MAX = 1e8


def check_admissible_lambda(nsf: NSFLike, lam_min: float, lam_max: float) -> NoiseScaleFunction:
    """The resolved NSF, admissible (eq. (5)) on [lam_min, lam_max] of λ = σ/α (``lam_max = inf``: up to
    :data:`LAMBDA_CHECK_MAX`, for a start at α = 0); otherwise a ValueError naming the first failing λ and
    how to avoid it."""
    nsf = resolve_nsf(nsf)
    top = LAMBDA_CHECK_MAX if math.isinf(lam_max) else lam_max
    lam_min = min(lam_min, top)
    try:
        nsf.check_admissible(lam_min, top)
    except ValueError:
        grid = np.geomspace(lam_min, top, 4001)
        with np.errstate(all="ignore"):
            phi, h2 = nsf(grid), nsf.h_tilde_sq(grid)
        bad = ~(np.isfinite(phi) & (phi > 0) & np.isfinite(h2) & (h2 >= -1e-9))
        lam = float(grid[np.argmax(bad)]) if bad.any() else top
        start = "a start at alpha = 0 (lambda = inf)" if math.isinf(lam_max) else f"lambda up to {lam_max:.6g}"
        raise ValueError(
            f"noise scale function {nsf.name!r} is not admissible at lambda = sigma/alpha = {lam:.6g} "
            f"(h~^2 < 0, or phi or h~^2 not finite there), and {start} needs it; start below it "
            f"(sigma/alpha < {lam:.6g}, e.g. a flow schedule with sigma_max < {lam / (1.0 + lam):.6g} instead of 1) "
            "or use another NSF"
        ) from None
    return nsf


def ell_at_infinity(nsf: NSFLike) -> float:
    """ℓ(∞) = lim_{λ→∞} log(φ(λ)/λ) ∈ (−∞, ∞] (docs/theory.md eq. (37)); lim λ/φ(λ) = e^{−ℓ(∞)}.

    φ = cλ^p: ℓ(∞) = ∞ for p > 1 and log c for p = 1. Otherwise the NSF's ℓ evaluated at ∞ in IEEE
    arithmetic (exact for the registry: a value or +inf); where that is indeterminate (NaN), sympy's limit of
    the NSF's expression; a callable φ without one gets a ValueError.
    """
    nsf = resolve_nsf(nsf)
    if nsf.power is not None:
        return math.inf if nsf.power > 1.0 else float(nsf.ell(np.array(1.0)))
    with np.errstate(all="ignore"):
        val = float(nsf.ell(np.array(np.inf)))
    if math.isnan(val) and nsf.expr_source is not None:
        from ..theory.symbolic.flow import ell_at_infinity as symbolic_limit  # sympy only here

        val = float(symbolic_limit(nsf.expr))
    if math.isnan(val) or val == -math.inf:
        raise ValueError(
            f"cannot take lim lambda/phi(lambda) as lambda -> inf for the noise scale function {nsf.name!r} "
            "(needed by a start at alpha = 0, sigma = 1): give phi as a sympy expression in sigma, or start at "
            "sigma < 1"
        )
    return val


def delta_ell_to_infinity(nsf: NSFLike, lam_t: float) -> float:
    """Δℓ(λ_t, ∞) = ℓ(∞) − ℓ(λ_t) = ∫_{λ_t}^∞ h̃² dλ/λ ∈ [0, ∞] of the first step from λ_s = ∞
    (eqs. (37), (38)): its gain is (σ_t/σ_s) e^{−Δℓ}, its noise std σ_t sqrt(1 − e^{−2Δℓ})."""
    nsf = resolve_nsf(nsf)
    top = ell_at_infinity(nsf)
    if math.isinf(top):
        return math.inf
    return max(top - float(nsf.ell(np.array(float(lam_t)))), 0.0)


# ---------------------------------------------------- the flow expansion (docs/theory.md §9, eqs. (53)–(56))
# The first step from λ = ∞ integrates over log λ up to λ_1 e^{FLOW_TAIL}: the rest of the s-interval, of
# length 1 − s(λ_1 e^{FLOW_TAIL}) < e^{−FLOW_TAIL}/λ_1, carries a relative weight below e^{−FLOW_TAIL}.
FLOW_TAIL = 45.0


def flow_time(alphas, sigmas) -> np.ndarray:
    """s = λ/(1 + λ) = σ/(α + σ) of each point of a VP schedule (eq. (53)): 1 at α = 0, σ itself on α = 1 − σ.
    Never divides by α."""
    a, s = np.asarray(alphas, dtype=np.float64), np.asarray(sigmas, dtype=np.float64)
    return s / (a + s)


def _one_minus_g(nsf: NoiseScaleFunction, t: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """1 − G(λ) = 1 − φ(λ_t)/φ(λ) at nodes ``lam`` (N, K), increasing along K from λ_t = ``t``: from
    Δℓ = ∫ h̃² dλ/λ (eq. (9), no cancellation when G is close to 1) as in :func:`_gl_c1_c2`; where that is
    not finite (φ overflows at large λ, e.g. er_sde_5 above λ ≈ 1e9), directly from φ (G is tiny there)."""
    tt = t[:, None]
    with np.errstate(all="ignore"):
        if nsf.power is not None:
            dl = (nsf.power - 1.0) * np.log(lam / tt)
        elif nsf.exact_h2:
            dl = cumulative_integrate_log(nsf.h_tilde_sq, t, lam)
        else:
            dl = nsf.ell(lam) - nsf.ell(tt)
        omg = -np.expm1(np.log(tt / lam) - dl)
        direct = 1.0 - nsf(tt) / nsf(lam)
    out = np.where(np.isfinite(omg), omg, direct)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"noise scale function {nsf.name!r}: phi(lambda_t)/phi(lambda) is not finite on a step")
    return out


def _flow_c1_c2(nsf: NoiseScaleFunction, t: np.ndarray, s: np.ndarray):
    """c_1, c_2 of eq. (55) for the steps λ_s = ``s`` → λ_t = ``t`` (λ_s may be inf), by Gauss–Legendre in
    u = log λ (ds = λ du/(1 + λ)²), vectorised over steps of finite λ_s; a step from λ_s = ∞ separately, on
    [λ_t, λ_t e^{FLOW_TAIL}]."""
    c1, c2 = np.zeros(t.size), np.zeros(t.size)
    for part in (np.isfinite(s), ~np.isfinite(s)):
        if not part.any():
            continue
        tp, sp_ = t[part], s[part]
        top = np.where(np.isfinite(sp_), sp_, tp * math.exp(FLOW_TAIL))
        lam, wu = log_nodes(tp, top)  # (N, P, Q)
        lam = lam.reshape(tp.size, -1)
        wu = wu.reshape(1, -1) if wu.shape[0] == 1 else wu.reshape(tp.size, -1)
        ds = wu * lam / (1.0 + lam) ** 2  # ds = dλ/(1 + λ)²
        omg = _one_minus_g(nsf, tp, lam)
        # s_i − s(λ) = (λ_s − λ)/((1 + λ_s)(1 + λ)), and 1/(1 + λ) at λ_s = ∞
        si = sp_[:, None]
        with np.errstate(invalid="ignore"):
            gap = np.where(np.isfinite(si), (si - lam) / ((1.0 + si) * (1.0 + lam)), 1.0 / (1.0 + lam))
        c1[part] = -np.sum(ds * omg, axis=1)
        c2[part] = np.sum(ds * gap * omg, axis=1)
    return c1, c2


def flow_expansion_coefficients(lambdas, nsf: NSFLike = "er_sde_5") -> tuple[np.ndarray, np.ndarray]:
    """(c_1, c_2) of the flow expansion, eq. (55), one entry per step λ_i → λ_{i+1} of a decreasing λ schedule
    (λ_0 may be inf: a start at α = 0), 0 for a step to λ = 0 (the solver returns α_N D there):

        c_1 = −∫_{s_{i+1}}^{s_i} (1 − G) ds,   c_2 = ∫_{s_{i+1}}^{s_i} (s_i − s)(1 − G) ds,   G = φ(λ_{i+1})/φ(λ),

    s = λ/(1 + λ). The weights of D's s-derivatives in the step are α_{i+1} c_n (eq. (54)). Finite for every
    admissible φ, also from s_i = 1 (|c_n| ≤ (1 − s_{i+1})^n/n!). Computed once per schedule."""
    lam = np.asarray(lambdas, dtype=np.float64)
    nsf = resolve_nsf(nsf)
    s, t = lam[:-1], lam[1:]
    reg = t > 0
    c1, c2 = np.zeros(s.size), np.zeros(s.size)
    if reg.any():
        c1[reg], c2[reg] = _flow_c1_c2(nsf, t[reg], s[reg])
    return c1, c2
