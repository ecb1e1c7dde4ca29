"""Reference solutions of the ER SDE on Gaussian mixtures, independent of the ER-SDE solver code.

Both integrate (ER-τ) of :mod:`.brownian`, the ER SDE in τ = log(σ_0/σ),

    dx = a(τ, x) dτ + b(τ) dW,   a = (1 + h̃²(σ)) σ² ∇log p_σ(x),   b = σ sqrt(2 h̃²(σ)),   σ = σ_0 e^{−τ},

with the exact mixture score (σ² ∇log p_σ = x_θ − x), in float64, vectorised over paths. They use only the
NSF's h̃² and the score: no ER-SDE coefficient (r, C_1, C_2) and no solver code.

* :func:`integrate_sra` — Rößler's SRA1 (SIAM J. Numer. Anal. 48 (2010), additive-noise SRK, strong order 1.5,
  deterministic order 2). With I = ΔW and I10 = ∫ (τ_{n+1} − τ) dW over the step (from :class:`.BrownianPath`):

      H  = X + (3/4) h a(τ_n, X) + (3/2) b(τ_{n+1}) I10/h
      X' = X + h (a(τ_n, X)/3 + 2 a(τ_n + 3h/4, H)/3) + b(τ_{n+1}) (I − I10/h) + b(τ_n) I10/h.

  Expanding in h reproduces the order-1.5 Itô–Taylor scheme for additive noise: the noise terms give
  b I + b' I_(0,1), the drift terms a h + b a_x I10 + (a_τ + a a_x) h²/2 + (3/4) b² a_xx I10²/h, whose mean is
  the Itô term b² a_xx h²/4 and whose fluctuation is O(h²) with mean 0 (global O(h^{3/2})). For a drift that is
  linear in x that fluctuation vanishes and the scheme is strong order 2.
* :func:`integrate_pf_ode` — h = 0: scipy ``solve_ivp`` (DOP853, rtol 1e-12) on the probability-flow ODE
  dx/dτ = σ² ∇log p_σ(x).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.integrate import solve_ivp

from ..theory.nsf import NSFLike, resolve_nsf
from .brownian import BrownianPath

__all__ = ["integrate_sra", "integrate_pf_ode", "sra_grid"]


def _drift(score, x: torch.Tensor, sigma: float, h2: float) -> torch.Tensor:
    """a = (1 + h̃²) σ² ∇log p_σ(x)."""
    return score(x, sigma) * ((1.0 + h2) * sigma * sigma)


def sra_grid(path: BrownianPath, stride: int = 1, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Fine-grid indices start, start + stride, …, stop of a reference run (stop − start divisible by stride)."""
    stop = path.n if stop is None else stop
    if stride < 1 or not 0 <= start < stop <= path.n or (stop - start) % stride:
        raise ValueError(
            f"need 1 <= stride and 0 <= start < stop <= {path.n} with stride | (stop - start); got "
            f"stride={stride}, start={start}, stop={stop}"
        )
    return np.arange(start, stop + 1, stride)


@torch.no_grad()
def integrate_sra(
    score,
    nsf: NSFLike,
    x0: torch.Tensor,
    path: BrownianPath,
    stride: int = 1,
    *,
    start: int = 0,
    stop: int | None = None,
    save=(),
) -> torch.Tensor | tuple[torch.Tensor, dict]:
    """SRA1 (module docstring) from σ_{start} to σ_{stop} of ``path``'s fine grid, one step per ``stride`` fine
    intervals, on the Brownian path ``path`` (shape of x0). ``score(x, sigma)`` is ∇log p_σ (e.g.
    ``GaussianMixture.score``). With ``save`` (fine indices on the run's grid) also returns {index: state}."""
    nsf = resolve_nsf(nsf)
    if tuple(x0.shape) != path.shape:
        raise ValueError(f"x0 has shape {tuple(x0.shape)}, the Brownian path {path.shape}")
    grid = sra_grid(path, stride, start, stop)
    s0, s1 = path.sigmas[grid[:-1]], path.sigmas[grid[1:]]
    h = np.log(s0 / s1)
    smid = s0 * np.exp(-0.75 * h)
    h2_0, h2_m, h2_1 = (np.maximum(nsf.h_tilde_sq(s), 0.0) for s in (s0, smid, s1))
    b0, b1 = s0 * np.sqrt(2 * h2_0), s1 * np.sqrt(2 * h2_1)
    noisy = bool(np.any(h2_0 > 0) or np.any(h2_1 > 0))
    saved = {int(i): x0.clone() for i in save if i == grid[0]}
    x = x0.to(torch.float64)
    for n in range(grid.size - 1):
        hn = float(h[n])
        a0 = _drift(score, x, float(s0[n]), float(h2_0[n]))
        stage = x + (0.75 * hn) * a0
        if noisy:
            dw, i10 = path.coarse_increments(int(grid[n]), int(grid[n + 1]))
            stage = stage + (1.5 * b1[n] / hn) * i10
        a1 = _drift(score, stage, float(smid[n]), float(h2_m[n]))
        x = x + (hn / 3.0) * (a0 + 2.0 * a1)
        if noisy:
            x = x + b1[n] * (dw - i10 / hn) + (b0[n] / hn) * i10
        if int(grid[n + 1]) in save:
            saved[int(grid[n + 1])] = x.clone()
    return (x, saved) if save else x


def integrate_pf_ode(
    score,
    x0: torch.Tensor,
    sigma_start: float,
    sigma_end: float,
    *,
    rtol: float = 1e-12,
    atol: float = 1e-12,
    sigmas_eval=None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The probability-flow ODE dx/dτ = σ² ∇log p_σ(x), τ = log(σ_start/σ), from σ_start to σ_end > 0, by
    ``solve_ivp(method="DOP853")`` on all paths at once (float64). With ``sigmas_eval`` (decreasing, inside the
    range) also returns the states there, shape (len(sigmas_eval), *x0.shape)."""
    if not 0 < sigma_end < sigma_start:
        raise ValueError(f"need 0 < sigma_end < sigma_start, got {sigma_start}, {sigma_end}")
    shape = tuple(x0.shape)
    T = math.log(sigma_start / sigma_end)

    def fun(tau, y):
        sig = sigma_start * math.exp(-tau)
        x = torch.from_numpy(y.reshape(shape))
        return (score(x, sig) * (sig * sig)).numpy().ravel()

    t_eval = np.array([T])
    if sigmas_eval is not None:
        t_eval = np.append(np.clip(np.log(sigma_start / np.asarray(sigmas_eval, dtype=np.float64)), 0.0, T), T)
    sol = solve_ivp(
        fun,
        (0.0, T),
        x0.detach().cpu().numpy().astype(np.float64).ravel(),
        method="DOP853",
        rtol=rtol,
        atol=atol,
        t_eval=t_eval,
    )
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    states = torch.from_numpy(sol.y.T.reshape(-1, *shape).copy())
    return states[-1] if sigmas_eval is None else (states[-1], states[:-1])
