"""The step plan of ER-SDE-Solver-1/2/3: every number of every step, computed once per schedule in float64 on
the host, for VE, VP and flow-matching schedules alike (``docs/theory.md`` eqs. (26)–(28), (36)–(40)).

Substituting the multistep derivative estimates (eq. (23), or eq. (25) for ``derivatives="corrected"``) into the
Taylor step eq. (16) makes every step one linear combination of stored denoiser outputs. On a VP schedule
x_t = α_t x_0 + σ_t ε the step is that of the VE solver on λ = σ/α, scaled by α (eq. (36)):

    x_{i+1} = g_i x_i + w_i0 D_i + w_i1 D_{i−1} + w_i2 D_{i−2} + noise_std_i z,

g_i = α_{i+1} r_i/α_i, w_i = α_{i+1} (a0, a1, a2) with the weights of eq. (28), noise_std_i = α_{i+1} sqrt(λ_{i+1}²
− λ_i² r_i²). A VE schedule is the case α ≡ 1 (λ = σ, g = r, eq. (27)); a flow schedule starts at α_0 = 0 (σ_0 = 1,
λ_0 = ∞), whose first step is the limit of eqs. (37)–(40): nothing divides by α_0. One builder, :func:`_build`,
makes the plan of all three, including the one third-order start eq. (26) (``start_step``, ``start_weight``).

The samplers (:mod:`~ersde_theory.solvers.ersde`) and the two diffusers schedulers
(``ersde_theory.diffusers_integration``) run their steps with :meth:`StepPlan.start` and :meth:`StepPlan.step`,
so a GPU loop reads no device value.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from ..coefficients.ersde import (
    QUADRATURES,
    StepCoefficients,
    check_admissible_lambda,
    delta_ell_to_infinity,
    ersde_coefficients,
    flow_expansion_coefficients,
    flow_time,
    validate_sigmas,
)
from ..theory.nsf import DEFAULT_NSF, NSFLike

__all__ = [
    "DERIVATIVES",
    "EXPANSIONS",
    "ORDERS",
    "StepPlan",
    "VPStepCoefficients",
    "check_order",
    "check_plan",
    "er_sde_step",
    "fused_weights",
    "step_plan",
    "vp_step_coefficients",
]

ORDERS = (1, 2, 3)
DERIVATIVES = ("published", "corrected")
EXPANSIONS = ("lambda", "flow")  # the variable D is expanded in: λ = σ/α (eq. (20)) or s = λ/(1 + λ) (eq. (54))


def check_expansion(expansion) -> str:
    if not isinstance(expansion, str) or expansion not in EXPANSIONS:
        raise ValueError(f"expansion must be 'lambda' or 'flow', got {expansion!r}")
    return expansion


def check_order(order, derivatives) -> None:
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order not in ORDERS:
        raise ValueError(f"order must be 1, 2 or 3 (an int), got {order!r} ({type(order).__name__})")
    if derivatives not in DERIVATIVES:
        raise ValueError(f"derivatives must be one of {DERIVATIVES}, got {derivatives!r}")


def fused_weights(sig, r, c1, c2, i: int, k: int, derivatives: str, prev=None) -> tuple[float, float, float]:
    """Weights (a0, a1, a2) of D_i, D_{i−1}, D_{i−2} in step i of ER-SDE-Solver-k, eq. (28).

    ``sig``, ``r``, ``c1``, ``c2`` are host float64 sequences (one entry per step, ``sig`` N+1 entries).
    ``prev``: the σ's of the stored outputs D_{i−1}, D_{i−2} when they are not σ_{i−1}, σ_{i−2} (a schedule
    with repeated σ's keeps only outputs at distinct σ's).
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
    """x_{i+1} = r x_i + a0 D_i + a1 D_{i−1} + a2 D_{i−2} + std z, eq. (27) (eq. (36) with g_i for r).

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


@dataclass(frozen=True)
class StepPlan:
    """ER-SDE-Solver-k on a schedule (α, σ), every step precomputed (module docstring, eq. (36)):

        x_{i+1} = g_i x_i + w_i0 D_i + w_i1 D_{i−1} + w_i2 D_{i−2} + noise_std_i z.

    The order k_i = min(order, steps taken + 1) is lowered while the history fills. A step to σ = 0 returns α_N D_i
    (``final``); a step of zero length (a repeated σ of a VE schedule, ``moves`` False) leaves x as it is and
    stores no output. ``start_step``/``start_weight``: the third-order start eq. (26), x ← x + start_weight
    (D_i − D_{i−1}) at step ``start_step`` (the second step that moves; −1 and 0.0 when not applied). Float64
    host arrays, one row per step; ``ve`` holds the λ-space coefficients (eqs. (9), (14), (15)) of the steps with
    finite λ_i. Built by :func:`step_plan` (VE) and :func:`vp_step_coefficients` (VP, flow).
    """

    alphas: np.ndarray  # N+1
    sigmas: np.ndarray  # N+1 (VP σ; the σ of a VE schedule)
    lambdas: np.ndarray  # N+1, λ = σ/α (inf where α = 0)
    gain: np.ndarray  # N
    weights: np.ndarray  # (N, 3)
    noise_std: np.ndarray  # N
    start_weight: float
    order: int
    derivatives: str
    ve: StepCoefficients
    start_step: int = -1
    moves: np.ndarray | None = None  # N, False for a zero-length step (None: every step moves)
    expansion: str = "lambda"  # the variable of the Taylor expansion of D: λ (eq. (20)) or s = λ/(1 + λ) (eq. (54))

    @property
    def final(self) -> np.ndarray:
        """Steps that end at σ = 0 (they return α_N x_θ)."""
        return self.sigmas[1:] == 0

    def draws_noise(self, i: int, s_noise: float = 1.0) -> bool:
        """Whether step i draws z: every step to σ > 0 while ``s_noise > 0`` and some step of the schedule has
        noise, so the draws do not depend on which steps have std 0."""
        return s_noise > 0 and self.sigmas[i + 1] > 0 and bool(np.any(self.noise_std > 0))

    def start(self, x: torch.Tensor, denoised: torch.Tensor, first_denoised: torch.Tensor) -> torch.Tensor:
        """Eq. (26) at ``start_step``, once D_1 is known (no model call): x + start_weight (D_1 − D_0)."""
        return x + (denoised - first_denoised) * self.start_weight

    def step(self, i: int, x, denoised, history, z=None, s_noise: float = 1.0) -> torch.Tensor:
        """x_{i+1} from x_i, D_i and ``history`` = [D_{i−1}, D_{i−2}] (as far as known), eq. (36) via
        :func:`er_sde_step`; ``z`` ~ N(0, I) (None when no noise is injected), scaled by ``s_noise``."""
        if self.sigmas[i + 1] == 0:
            return denoised * float(self.alphas[i + 1])  # the last step to σ = 0: α_N x_θ
        if self.moves is not None and not self.moves[i]:
            return x  # a zero-length step: x stays
        w = tuple(float(v) for v in self.weights[i])
        std = float(self.noise_std[i]) * s_noise if z is not None else 0.0
        return er_sde_step(x, float(self.gain[i]), denoised, history, w, std, z)


VPStepCoefficients = StepPlan  # the name of 0.4.0–0.5.0, when only VP schedules had a plan


def _build(
    a, s, lam, ve: StepCoefficients, nsf, *, order: int, derivatives: str, correct_start: bool, flow=None
) -> StepPlan:
    """The plan of (α, σ, λ = σ/α) from the λ-space coefficients ``ve`` of the steps with finite λ (all but the
    first when α_0 = 0): eq. (36) per step, the limit eqs. (37)–(40) for a start at λ_0 = ∞, the weights of
    eq. (28) at the order the loop uses, and the third-order start eq. (26). ``flow``: (s, c_1, c_2) of the flow
    expansion (eqs. (53)–(56)), whose s-grid and c_n then replace λ and C_n in eqs. (26) and (28); gain and noise
    stay those of eqs. (36)–(38)."""
    n = s.size - 1
    first = 1 if a[0] == 0 else 0  # step 0 from λ = ∞ (eqs. (37)–(40))
    pad = lambda v: np.concatenate([np.full(first, np.nan), v])  # noqa: E731   step 0 from λ = ∞: set below
    r, c1, c2, std_ve = pad(ve.r), pad(ve.c1), pad(ve.c2), pad(ve.noise_std)
    grid = lam
    if flow is not None:  # eq. (54): D expanded in s, divided differences in s, c_n of eq. (55)
        grid, c1, c2 = flow
    gain, std, weights = np.zeros(n), np.zeros(n), np.zeros((n, 3))
    moves = s[1:] < s[:-1]
    grid_l, r_l, c1_l, c2_l = grid.tolist(), r.tolist(), c1.tolist(), c2.tolist()
    nodes: list[float] = []  # λ's (s's) of the stored outputs D_{i−1}, D_{i−2}: those of the steps that moved
    start_step, start_weight, first_moving = -1, 0.0, None
    for i in range(n):
        if s[i + 1] == 0:
            weights[i] = (a[i + 1], 0.0, 0.0)  # the last step to σ = 0 returns α_N x_θ
            continue
        if not moves[i]:
            continue  # a zero-length step: gain 0, weights 0 (never used)
        if first_moving is None:
            first_moving = i
        elif start_step < 0 and correct_start and order >= 3 and len(nodes) == 1:
            # eq. (26) at the second step that moves: C_1(λ_0, λ_1)/(λ_1 − λ_0), times α_1 (1 from λ_0 = ∞, eq. (40));
            # in s (eq. (56)) always the quotient: s_0 = 1 is finite
            j = first_moving
            start_step = i
            h0 = grid_l[j + 1] - grid_l[j]
            start_weight = float(a[j + 1]) * (1.0 if grid_l[j] == math.inf else c1_l[j] / h0)
        if first and i == 0:  # eqs. (37), (38): g_0 = (σ_1/σ_0) e^{−Δℓ(λ_1, ∞)}, data weight α_1
            dl = delta_ell_to_infinity(nsf, float(lam[1]))
            gain[0] = s[1] / s[0] * math.exp(-dl)
            std[0] = s[1] * math.sqrt(-math.expm1(-2.0 * dl))
            weights[0] = (a[1], 0.0, 0.0)
        else:
            gain[i] = a[i + 1] * r[i] / a[i]
            std[i] = a[i + 1] * std_ve[i]
            k = min(order, len(nodes) + 1)
            # eq. (28) on λ; with λ_0 = inf its weights of D_0 and its divisions by λ_1 − λ_0 give the limits of
            # eq. (40) in IEEE arithmetic (finite/∓inf = ∓0)
            prev = (nodes + [None, None])[:2]
            weights[i] = np.multiply(a[i + 1], fused_weights(grid_l, r_l, c1_l, c2_l, i, k, derivatives, prev))
        nodes = [grid_l[i], *nodes[:1]]
    if not (np.all(np.isfinite(gain)) and np.all(np.isfinite(weights)) and np.all(np.isfinite(std))):
        raise ValueError("non-finite step coefficients (check the schedule and the NSF)")
    return StepPlan(
        a, s, lam, gain, weights, std, start_weight, order, derivatives, ve, start_step,
        None if moves.all() else moves, "lambda" if flow is None else "flow",
    )  # fmt: skip


def step_plan(
    sigmas,
    nsf: NSFLike = DEFAULT_NSF,
    quadrature: str = "exact",
    *,
    order: int = 3,
    derivatives: str = "published",
    correct_start: bool | None = None,
    coefficients: StepCoefficients | None = None,
) -> StepPlan:
    """The plan of ER-SDE-Solver-``order`` on the VE schedule ``sigmas`` (non-increasing, repeats allowed: a
    zero-length step), α ≡ 1 (eq. (27)). ``coefficients``: precomputed :class:`StepCoefficients` on the same
    sigmas, used instead of ``nsf``/``quadrature``. ``correct_start`` (default: on for ``derivatives="corrected"``)
    sets the third-order start eq. (26) at order 3."""
    check_order(order, derivatives)
    if coefficients is None:
        coefficients = ersde_coefficients(sigmas, nsf, quadrature)  # eqs. (9), (14), (15): once per schedule
    elif not np.array_equal(coefficients.sigmas, validate_sigmas(sigmas, allow_repeats=True)):
        raise ValueError("coefficients were computed for other sigmas than the ones given")
    if correct_start is None:
        correct_start = derivatives == "corrected"
    s = coefficients.sigmas
    return _build(
        np.ones_like(s), s, s, coefficients, None, order=order, derivatives=derivatives, correct_start=correct_start
    )


def check_plan(plan: StepPlan, sigmas, alphas=None) -> StepPlan:
    """``plan`` if it is a :class:`StepPlan` of exactly this schedule (σ's, and α's when given), else ValueError:
    a sampler given a precomputed plan runs it only on the schedule it was built for."""
    if not isinstance(plan, StepPlan):
        raise ValueError(f"plan must be a StepPlan (step_plan, vp_step_coefficients), got {type(plan).__name__}")
    same = np.array_equal(plan.sigmas, validate_sigmas(sigmas, allow_repeats=alphas is None))
    if alphas is not None:
        a = np.asarray(alphas.detach().cpu() if hasattr(alphas, "detach") else alphas, dtype=np.float64)
        same = same and np.array_equal(plan.alphas, a)
    if not same:
        raise ValueError("the plan was computed for another schedule than the one given")
    return plan


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


def vp_step_coefficients(
    alphas,
    sigmas,
    nsf: NSFLike = "er_sde_5",
    quadrature: str = "exact",
    *,
    order: int = 3,
    derivatives: str = "published",
    correct_start: bool | None = None,
    expansion: str = "lambda",
) -> StepPlan:
    """The plan of ER-SDE-Solver-``order`` on the VP schedule (α, σ), eq. (36), computed once in float64 (see
    :class:`StepPlan`). ``alphas[0]`` may be 0 (σ_0 > 0): the first step is then the limit λ_0 → ∞ of eqs.
    (37)–(40), and φ must be admissible up to λ = ∞ (ValueError naming the first failing λ otherwise).
    ``correct_start`` (default: on for ``derivatives="corrected"``) sets the third-order start eq. (26) at order 3.

    ``expansion``: the variable the denoiser output D is Taylor-expanded in. ``"lambda"`` (default, the paper's):
    λ = σ/α, eq. (20). ``"flow"``: s = λ/(1 + λ) = σ/(α + σ), eqs. (53)–(56) (the flow time: s = σ on a
    rectified-flow schedule α = 1 − σ), with the exact gain and noise of eqs. (36)–(38), the weights c_n of
    eq. (55) and the divided differences and the third-order start in s; it keeps the third order from σ = 1.
    It is a change of the expansion variable only, so it applies to any VP schedule (α² + σ² = 1 too), not
    just flow models; with φ = λ on α = 1 − σ it is the VE solver on (x, σ) (eq. (57)). Its c_n are always the
    exact integrals (the published codes' Riemann sums of ``quadrature`` exist for the λ expansion only; gain and
    noise still follow ``quadrature``)."""
    check_order(order, derivatives)
    check_expansion(expansion)
    if quadrature not in QUADRATURES:
        raise ValueError(f"unknown quadrature {quadrature!r}; use one of {QUADRATURES}")
    a, s = _vp_arrays(alphas, sigmas)
    if correct_start is None:
        correct_start = derivatives == "corrected"
    first = 1 if a[0] == 0 else 0  # steps from a finite λ
    with np.errstate(divide="ignore"):
        lam = s / a  # λ_0 = inf when α_0 = 0
    if lam.size - first >= 2:
        validate_sigmas(lam[first:], "lambdas = sigmas/alphas")
    pos = lam[lam > 0]
    nsf = check_admissible_lambda(nsf, float(pos.min()), float(pos.max()))  # the error names λ
    flow = None
    if expansion == "flow":  # eqs. (53)–(55): once per schedule
        flow = (flow_time(a, s), *flow_expansion_coefficients(lam, nsf))
    if lam.size - first >= 2:
        ve = ersde_coefficients(lam[first:], nsf, quadrature)  # eqs. (9), (14), (15) on λ
    else:  # one step, from λ = ∞ to λ_1
        ve = StepCoefficients(lam[first:], *(np.zeros(0) for _ in range(4)), nsf=nsf.name, quadrature=quadrature)
    return _build(a, s, lam, ve, nsf, order=order, derivatives=derivatives, correct_start=correct_start, flow=flow)
