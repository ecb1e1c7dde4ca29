"""ER-SDE-Solver-1/2/3 (Cui et al., arXiv 2309.06169), VE and VP, one solver core.

One step from σ_s = σ_i to σ_t = σ_{i+1} of ER-SDE-Solver-k (notes §2–3; paper eqs. for the VE Taylor
solution):

    x_t = r x_s + (1 − r) x_θ(x_s, σ_s) + C_1 x_θ' + C_2 x_θ'' + sqrt(σ_t² − σ_s² r²) z,   z ~ N(0, I)

with r, C_1, C_2 from :func:`ersde_theory.coefficients.ersde_coefficients` (terms above order k dropped).
The derivatives are multistep estimates from stored denoiser outputs (one model call per step):

* ``derivatives="published"`` (the paper and the official code): x_θ' ≈ D1 = (x0_i − x0_{i−1})/(σ_i − σ_{i−1}),
  x_θ'' ≈ D2 = 2 (D1_i − D1_{i−1})/(σ_i − σ_{i−2}). D1 is the derivative at the midpoint, so order 3 is only
  globally second order (issue 7).
* ``derivatives="corrected"`` (issue 7; derived in :mod:`ersde_theory.theory.multistep`): the derivatives
  at σ_i of the quadratic through the last three outputs, x_θ' ≈ D1 − (σ_{i−1} − σ_i)/2 · D2, x_θ'' ≈ D2;
  and a third-order start: the first (Euler) step has local error C_1 x_θ' = O(h²), which alone would cap
  the global order at 2, so once x0_1 is known the state x_1 is corrected to
  x_1 + C_1(σ_0, σ_1) · (x0_1 − x0_0)/(σ_1 − σ_0)   (local error O(h³), no extra model call).
  Identical to ``published`` for order ≤ 2.

The first steps use lower order while the history fills; the step to σ = 0 returns x_θ.
VP runs the same core on x̄ = x/α with λ = σ/α (notes §2) and returns α_N x̄_N.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from tqdm import trange

from ..coefficients.ersde import StepCoefficients, ersde_coefficients, validate_sigmas
from ..theory.nsf import NSFLike
from ._common import CHECK_FINITE, Generator, check_model_output, check_state, make_noise

DERIVATIVES = ("published", "corrected")
PREDICTIONS = ("eps", "x0", "v", "score")


def check_order(order, derivatives) -> None:
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
    if derivatives not in DERIVATIVES:
        raise ValueError(f"derivatives must be one of {DERIVATIVES}, got {derivatives!r}")


def _check_common(x, order, derivatives, check_finite):
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.ndim < 1:
        raise ValueError("x must be a floating-point tensor with a leading batch dimension")
    check_order(order, derivatives)
    if check_finite not in CHECK_FINITE:
        raise ValueError(f"check_finite must be one of {CHECK_FINITE}, got {check_finite!r}")


def step_weights(coeffs: StepCoefficients, derivatives: str) -> list:
    """The ER-SDE-Solver-k step written as one linear combination of stored denoiser outputs:

        x_{i+1} = r_i x_i + a0 D_i + a1 D_{i−1} + a2 D_{i−2} + std_i z.

    Substituting D1 = (D_i − D_{i−1})/Δ_i, Δ_i = σ_i − σ_{i−1}, and D2 = 2 (D1_i − D1_{i−1})/(σ_i − σ_{i−2})
    into (1 − r) D_i + C_1 x_θ' + C_2 x_θ'' (module docstring) gives, with e = 2 C_2'/(σ_i − σ_{i−2}):
    a0 = 1 − r + C_1/Δ_i + e/Δ_i,  a1 = −C_1/Δ_i − e/Δ_i − e/Δ_{i−1},  a2 = e/Δ_{i−1}, where
    C_2' = C_2 ("published") or C_2 + C_1 Δ_i/2 ("corrected": x_θ' = D1 − (σ_{i−1} − σ_i)/2 · D2).
    Returns host floats (float64) w[k − 1][j][i] for the k-th order step (k = 1, 2, 3; j = 0, 1, 2)."""
    sig = coeffs.sigmas
    n = sig.size - 1
    w = np.zeros((3, 3, n))
    w[:, 0, :] = 1.0 - coeffs.r
    for i in range(1, n):
        if coeffs.final[i]:
            continue
        d_new = sig[i] - sig[i - 1]
        w[1:, 0, i] += coeffs.c1[i] / d_new
        w[1:, 1, i] -= coeffs.c1[i] / d_new
        if i >= 2:
            c2 = coeffs.c2[i] + (0.5 * coeffs.c1[i] * d_new if derivatives == "corrected" else 0.0)
            e = 2.0 * c2 / (sig[i] - sig[i - 2])
            d_old = sig[i - 1] - sig[i - 2]
            w[2, 0, i] += e / d_new
            w[2, 1, i] -= e / d_new + e / d_old
            w[2, 2, i] += e / d_old
    return w.tolist()


class ERSDEStepper:
    """One step of the ER-SDE-Solver-k recursion (module docstring) at a time, holding the denoiser
    history. :func:`ersde_loop` and the diffusers scheduler (``ersde_theory.images.scheduler``) both drive
    it, so the recursion is written once, in the combined form of :func:`step_weights` (four passes over
    the state per step, plus the noise). All weights are host floats (float64): no host–device sync.
    """

    def __init__(self, coeffs: StepCoefficients, *, order: int, derivatives: str, correct_start: bool | None = None):
        self.sig = coeffs.sigmas.tolist()
        self.r, self.c1, self.std = coeffs.r.tolist(), coeffs.c1.tolist(), coeffs.noise_std.tolist()
        self.w = step_weights(coeffs, derivatives)
        self.final = coeffs.final.tolist()
        self.order, self.derivatives = order, derivatives
        self.correct_start = derivatives == "corrected" if correct_start is None else correct_start
        self.old_den = self.older_den = None
        self.taken = 0  # steps taken so far: the history available for derivatives

    def __len__(self) -> int:
        return len(self.sig) - 1

    def start(self, i: int, x: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        """The third-order start (module docstring), applied to x_1 once x0_1 = ``den`` is known, when
        ``correct_start`` and order ≥ 3 and the run began at i = 0; otherwise x unchanged."""
        if self.correct_start and self.order >= 3 and i == 1 and self.taken == 1 and not self.final[i]:
            return x + (den - self.old_den) * (self.c1[0] / (self.sig[1] - self.sig[0]))
        return x

    def __call__(
        self, i: int, x: torch.Tensor, den: torch.Tensor, noise: Callable[[int], torch.Tensor]
    ) -> torch.Tensor:
        """x_{i+1} from x_i and x_θ(x_i, σ_i) = ``den``. Steps come in order i, i + 1, … (a run may start at
        any i > 0, e.g. img2img: the order is lowered while the history fills, as at i = 0)."""
        if self.final[i]:
            x_next = den
        else:
            k = min(self.order, self.taken + 1)
            w0, w1, w2 = (self.w[k - 1][j][i] for j in range(3))
            x_next = torch.mul(x, self.r[i])
            x_next.add_(den, alpha=w0)
            if k >= 2 and w1 != 0.0:
                x_next.add_(self.old_den, alpha=w1)
            if k >= 3 and w2 != 0.0:
                x_next.add_(self.older_den, alpha=w2)
            if self.std[i] > 0:
                x_next.add_(noise(i), alpha=self.std[i])
        self.older_den, self.old_den = self.old_den, den
        self.taken += 1
        return x_next


def ersde_loop(
    denoise: Callable[[torch.Tensor, int], torch.Tensor],
    x: torch.Tensor,
    coeffs: StepCoefficients,
    *,
    order: int,
    derivatives: str,
    noise: Callable[[int], torch.Tensor],
    on_step: Callable | None,
    disable: bool | None,
    check_finite: str,
    correct_start: bool | None = None,
) -> torch.Tensor:
    """The ER-SDE-Solver-k recursion (module docstring) in the VE variables of ``coeffs.sigmas``.

    ``denoise(x, i)`` returns x_θ at σ_i. All coefficients are host floats (float64), so the loop does no
    host–device synchronisation (unless ``check_finite="step"``). ``correct_start`` (default: on for
    ``derivatives="corrected"``) applies the third-order start of the module docstring when order ≥ 3;
    studies switch it off to measure the start's effect. ``on_step`` sees the corrected x_1.
    """
    step = ERSDEStepper(coeffs, order=order, derivatives=derivatives, correct_start=correct_start)
    for i in trange(len(step), disable=disable):
        den = denoise(x, i)
        x = step.start(i, x, den)
        if on_step is not None:
            on_step(i, x, den)
        x = step(i, x, den, noise)
        if check_finite == "step":
            check_state(x, "step", i, step.sig[i + 1])
    if check_finite == "end":
        check_state(x, "end")
    return x


def vp_coefficients(alphas, sigmas, nsf: NSFLike, quadrature: str):
    """Checked float64 (α, σ) of a VP schedule and the step coefficients on λ = σ/α (notes §2)."""
    a = np.asarray(alphas.detach().cpu() if hasattr(alphas, "detach") else alphas, dtype=np.float64)
    s = validate_sigmas(sigmas)
    if a.shape != s.shape:
        raise ValueError(f"alphas and sigmas must have the same length, got {a.shape} and {s.shape}")
    if not np.all(np.isfinite(a) & (a > 0) & (a <= 1)):
        raise ValueError(f"alphas must lie in (0, 1], got min {a.min()!r}, max {a.max()!r}")
    lam = validate_sigmas(s / a, "lambdas = sigmas/alphas")
    return a, s, ersde_coefficients(lam, nsf, quadrature)


@torch.no_grad()
def sample_er_sde(
    model,
    x: torch.Tensor,
    sigmas,
    *,
    order: int = 3,
    nsf: NSFLike = "er_sde_5",
    quadrature: str = "exact",
    derivatives: str = "published",
    noise_sampler: Callable | None = None,
    generator: Generator = None,
    callback: Callable | None = None,
    disable: bool | None = None,
    check_finite: str = "end",
    extra_args: dict | None = None,
) -> torch.Tensor:
    """ER-SDE-Solver-``order`` for a VE model (k-diffusion calling convention).

    ``model(x, sigma_batch, **extra_args)`` returns the denoised estimate x_θ; ``x`` is the initial state at
    ``sigmas[0]`` (already scaled noise); ``sigmas`` is strictly decreasing and may end in 0. ``nsf`` is a
    registry name, a sympy expression in ``sigma`` or a callable φ(σ). ``noise_sampler(sigma, sigma_next)``,
    when given, is the only noise source; ``generator`` is one ``torch.Generator`` or a list with one per
    sample. ``callback`` receives ``dict(x, i, sigma, sigma_hat, denoised)`` once per step.
    """
    _check_common(x, order, derivatives, check_finite)
    coeffs = ersde_coefficients(sigmas, nsf, quadrature)
    sig = torch.from_numpy(coeffs.sigmas)
    sig_dev = sig.to(device=x.device, dtype=x.dtype)
    s_in = x.new_ones(x.shape[0])
    extra_args = extra_args or {}

    def denoise(xi, i):
        return check_model_output(model(xi, sig_dev[i] * s_in, **extra_args), xi)

    def on_step(i, xi, den):
        callback(dict(x=xi, i=i, sigma=sig[i], sigma_hat=sig[i], denoised=den))

    noise = make_noise(x, generator, noise_sampler, sig)
    return ersde_loop(
        denoise,
        x,
        coeffs,
        order=order,
        derivatives=derivatives,
        noise=noise,
        on_step=on_step if callback else None,
        disable=disable,
        check_finite=check_finite,
    )


def to_x0(out: torch.Tensor, x: torch.Tensor, alpha: float, sigma: float, prediction: str) -> torch.Tensor:
    """Convert a VP model output to the data prediction x_θ (notes §2):
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
    noise_sampler: Callable | None = None,
    generator: Generator = None,
    callback: Callable | None = None,
    disable: bool | None = None,
    check_finite: str = "end",
    extra_args: dict | None = None,
) -> torch.Tensor:
    """ER-SDE-Solver-``order`` for a VP model x_t = α_t x_0 + σ_t ε, through the VP → VE map.

    With x̄ = x/α and λ = σ/α the VP ER SDE is the VE ER SDE in (x̄, λ) with the same φ (notes §2), so
    one step is x_t = α_t [r x̄_s + (1 − r) x_θ + C_1 x_θ' + C_2 x_θ''] + α_t sqrt(λ_t² − λ_s² r²) z with
    coefficients computed on λ. ``alphas``/``sigmas`` hold N+1 values; the model is called as
    ``model(x, timesteps[i] * ones(B))`` (or with ``sigmas[i]`` when ``timesteps`` is None) and its output
    is read as ``prediction`` ∈ {eps, x0, v, score}. ``noise_sampler`` is called with VP σ's.
    """
    _check_common(x, order, derivatives, check_finite)
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")
    a, s, coeffs = vp_coefficients(alphas, sigmas, nsf, quadrature)
    if timesteps is not None:
        ts = torch.as_tensor(timesteps)
        if ts.ndim != 1 or ts.shape[0] != s.shape[0]:
            raise ValueError(f"timesteps must have {s.shape[0]} entries like sigmas, got shape {tuple(ts.shape)}")
        ts = ts.to(x.device)
    sig_vp = torch.from_numpy(s)
    sig_dev = sig_vp.to(device=x.device, dtype=x.dtype)
    s_in = x.new_ones(x.shape[0])
    extra_args = extra_args or {}

    def denoise(xbar, i):
        xi = xbar * float(a[i])
        t_in = ts[i] * s_in.to(ts.dtype) if timesteps is not None else sig_dev[i] * s_in
        out = check_model_output(model(xi, t_in, **extra_args), xi)
        return to_x0(out, xi, float(a[i]), float(s[i]), prediction)

    def on_step(i, xbar, den):
        callback(dict(x=xbar * float(a[i]), i=i, sigma=sig_vp[i], sigma_hat=sig_vp[i], denoised=den))

    noise = make_noise(x, generator, noise_sampler, sig_vp)
    xbar = ersde_loop(
        denoise,
        x * float(1.0 / a[0]),
        coeffs,
        order=order,
        derivatives=derivatives,
        noise=noise,
        on_step=on_step if callback else None,
        disable=disable,
        check_finite=check_finite,
    )
    return xbar * float(a[-1])
