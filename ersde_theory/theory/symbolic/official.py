"""The official code's step formulas (github.com/QinpengCui/ER-SDE-Solver, ``er_sde_solver.py``), written
symbolically from its behaviour (not its code) so they can be compared with the derivation.

VE step i (σ_s = σ_i → σ_t = σ_{i+1}): r_fn = φ(σ_t)/φ(σ_s); x ← r_fn x + (1 − r_fn) x0 +
(σ_t − σ_s + s_int φ(σ_t)) D1 + ((σ_t − σ_s)²/2 + s_d_int φ(σ_t)) D2 + sqrt(clip(σ_t² − σ_s² r_fn²)) z,
s_int ≈ ∫_{σ_t}^{σ_s} dσ/φ, s_d_int ≈ ∫_{σ_t}^{σ_s} (σ − σ_s)/φ dσ (100-point left Riemann sums),
clip(v) = 0 for |v| < 1e-6. VP: the same in λ = σ/α, the x-gain times α_{i+1}/α_i, every other term
times α_{i+1}. Derivatives: D1 = (x0_i − x0_{i−1})/(σ_i − σ_{i−1}), D2 = 2 (D1_i − D1_{i−1})/(σ_i − σ_{i−2}).
"""

from __future__ import annotations

import sympy as sp

from .symbols import LAMBDA, SIGMA, alpha_s, alpha_t, as_phi, lambda_s, lambda_t, sigma_s, sigma_t


def official_ve_step(phi=None, var=SIGMA, s=sigma_s, t=sigma_t) -> dict:
    """gain, weights [1 − r, C_1, C_2] (the by-parts form, eq. (13)) and variance of the official VE step (exact
    integrals in place of
    the Riemann sums; the clipping is not part of the formula)."""
    ph = as_phi(phi, var)
    pt, ps = ph.subs(var, t), ph.subs(var, s)
    r_fn = pt / ps
    s_int = sp.Integral(1 / ph, (var, t, s))
    s_d_int = sp.Integral((var - s) / ph, (var, t, s))
    return dict(
        gain=r_fn,
        weights=[1 - r_fn, t - s + s_int * pt, (t - s) ** 2 / 2 + s_d_int * pt],
        variance=t**2 - s**2 * r_fn**2,
    )


def official_vp_step(phi=None) -> dict:
    """The official VP step in (α, λ): gain r_alphas r_fn, weights α_{i+1} × the VE weights in λ,
    std α_{i+1} sqrt(λ_{i+1}² − λ_i² r_fn²)."""
    ve = official_ve_step(phi, LAMBDA, lambda_s, lambda_t)
    return dict(
        gain=alpha_t / alpha_s * ve["gain"],
        weights=[alpha_t * w for w in ve["weights"]],
        variance=alpha_t**2 * ve["variance"],
    )


def official_derivative_estimates(x0, sig, i: int):
    """D1 and D2 of eq. (23) at step i from stored outputs ``x0[j]`` at ``sig[j]`` (sympy expressions, numbers,
    or numpy arrays with an index array ``i``)."""
    d1 = lambda j: (x0[j] - x0[j - 1]) / (sig[j] - sig[j - 1])  # noqa: E731
    return d1(i), 2 * (d1(i) - d1(i - 1)) / (sig[i] - sig[i - 2])
