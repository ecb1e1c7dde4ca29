"""The exact one-step solution by variation of constants, verified with Itô's formula (docs/theory.md §2,
eqs. (7)–(8); VP: eq. (20)).

VE, σ-time run backwards (forward time τ = −σ): with Y = x/φ(σ), Itô's formula gives

    dY = φ'(σ)/φ(σ)² x_θ dτ + sqrt(2σ h̃²)/φ dB_τ                 (the linear drift cancels)

so, from σ_s down to σ_t,

    x_t = (φ_t/φ_s) x_s + φ_t ∫_{σ_t}^{σ_s} φ'/φ² x_θ dσ + noise,
    Var = φ_t² ∫_{σ_t}^{σ_s} 2σ h̃²/φ² dσ = φ_t² [−σ²/φ²]_{σ_t}^{σ_s} = σ_t² − σ_s² φ_t²/φ_s²   (Itô isometry).

VP, t-time run backwards (τ = −t): with λ = σ/α and Y = x/(α φ(λ)),
dY = φ'(λ) λ'(t)/φ(λ)² x_θ dτ + h/(α φ(λ)) dB_τ, h²/(α²φ²) = 2λ λ' h̃²(λ)/φ(λ)², hence
x_t = (α_t φ(λ_t))/(α_s φ(λ_s)) x_s + α_t φ(λ_t) ∫ φ'/φ² x_θ dλ + noise, Var = α_t² (λ_t² − λ_s² r²).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from .calculus import definite
from .latex import Derivation
from .sde import alpha_of_t, h_tilde_sq, ve_er_sde_sigma_time, vp_er_sde
from .symbols import LAMBDA, SIGMA, alpha_s, alpha_t, as_phi, lambda_s, lambda_t, sigma_s, sigma_t, t, x, x_theta


def ito(F: sp.Expr, time_derivative: sp.Expr, drift: sp.Expr, diffusion2: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """Itô's formula for F(x, τ) with dx = μ dτ + b dB: (F_τ + F_x μ + ½ F_xx b², F_x² b²).

    ``time_derivative`` is ∂F/∂τ (passed in, since the forward time τ is −σ or −t here)."""
    fx = sp.diff(F, x)
    return time_derivative + fx * drift + sp.diff(F, x, 2) * diffusion2 / 2, fx**2 * diffusion2


def ve_exact_step(phi=None) -> dict:
    """The exact VE step σ_s → σ_t (eqs. (7)–(8)): gain r = φ_t/φ_s on x_s, the x_θ kernel φ_t φ'(σ)/φ(σ)² (integrated
    over [σ_t, σ_s]) and the noise variance σ_t² − σ_s² r²."""
    ph = as_phi(phi)
    pt, ps = ph.subs(SIGMA, sigma_t), ph.subs(SIGMA, sigma_s)
    r = pt / ps
    return dict(gain=r, kernel=pt * sp.diff(ph, SIGMA) / ph**2, variance=sigma_t**2 - sigma_s**2 * r**2)


def vp_exact_step(phi=None) -> dict:
    """The exact VP step in (α, λ) (eq. (20)): gain (α_t/α_s) r(λ), x_θ kernel α_t φ(λ_t) φ'(λ)/φ(λ)² (over
    [λ_t, λ_s]), noise variance α_t² (λ_t² − λ_s² r²)."""
    ph = as_phi(phi, LAMBDA)
    pt, ps = ph.subs(LAMBDA, lambda_t), ph.subs(LAMBDA, lambda_s)
    r = pt / ps
    return dict(
        gain=alpha_t / alpha_s * r,
        kernel=alpha_t * pt * sp.diff(ph, LAMBDA) / ph**2,
        variance=alpha_t**2 * (lambda_t**2 - lambda_s**2 * r**2),
    )


def noise_variance(phi=None) -> sp.Expr:
    """φ_t² ∫_{σ_t}^{σ_s} 2σ h̃²/φ² dσ by direct integration (closed form where sympy finds one, else an
    unevaluated integral): the left side of the Itô-isometry identity, independent of its right side."""
    ph = as_phi(phi)
    integrand = 2 * SIGMA * h_tilde_sq(phi) / ph**2
    return ph.subs(SIGMA, sigma_t) ** 2 * definite(
        sp.simplify(integrand), SIGMA, sigma_t, sigma_s, None if phi is None else ph
    )


@cache
def ve_variation_of_constants(phi=None) -> Derivation:
    """Eqs. (7)–(8), VE: Itô on Y = x/φ(σ), cancellation of the linear drift, the Itô-isometry variance."""
    ph = as_phi(phi)
    sde = ve_er_sde_sigma_time(phi)
    Y = x / ph
    drift_Y, diff2_Y = ito(Y, -sp.diff(Y, SIGMA), -sde["drift"], sde["diffusion2"])  # τ = −σ
    F = -(SIGMA**2) / ph**2  # antiderivative of 2σh̃²/φ²
    step = ve_exact_step(phi)
    pt = ph.subs(SIGMA, sigma_t)
    d = Derivation("VE: variation of constants (Y = x/phi)")
    d.add("Ito drift of Y", drift_Y, sp.diff(ph, SIGMA) / ph**2 * x_theta, "only the x_theta term is left")
    d.add("linear drift cancels", sp.diff(drift_Y, x), 0)
    d.add("Ito diffusion of Y", diff2_Y, 2 * SIGMA * sde["h2"] / ph**2)
    d.add("isometry antiderivative", sp.Derivative(F, SIGMA), diff2_Y, "d/dsigma(-sigma^2/phi^2) = 2 sigma h~^2/phi^2")
    d.add("step variance", pt**2 * (F.subs(SIGMA, sigma_s) - F.subs(SIGMA, sigma_t)), step["variance"])
    d.add(
        "frozen x_theta weight",
        pt * ((-1 / ph).subs(SIGMA, sigma_s) - (-1 / ph).subs(SIGMA, sigma_t)),
        1 - step["gain"],
        "C_0 = 1 - r",
    )
    d.add("kernel antiderivative", sp.Derivative(-1 / ph, SIGMA), sp.diff(ph, SIGMA) / ph**2)
    d.results.update(step)
    return d


@cache
def vp_variation_of_constants(phi=None) -> Derivation:
    """Eqs. (7)–(8) and (20), VP: Itô on Y = x/(α φ(λ)), λ = σ/α; the drift reduces to φ'(λ)λ'/φ² x_θ and the
    diffusion to the VE λ-integrand times λ', so Var = α_t² (λ_t² − λ_s² r²)."""
    sde = vp_er_sde(phi)
    lam = sde["lam"]
    ph_L = as_phi(phi, LAMBDA)
    ph = ph_L.subs(LAMBDA, lam)
    dph = sp.diff(ph_L, LAMBDA).subs(LAMBDA, lam)
    Y = x / (alpha_of_t * ph)
    drift_Y, diff2_Y = ito(Y, -sp.diff(Y, t), -sde["drift"], sde["diffusion2"])  # τ = −t
    dlam = sp.diff(lam, t)
    h2_L = h_tilde_sq(phi, LAMBDA).subs(LAMBDA, lam)
    F = -(LAMBDA**2) / ph_L**2
    step = vp_exact_step(phi)
    pt = ph_L.subs(LAMBDA, lambda_t)
    d = Derivation("VP: variation of constants (Y = x/(alpha phi(lambda)))")
    d.add("Ito drift of Y", drift_Y, dph * dlam / ph**2 * x_theta, "only the x_theta term is left")
    d.add("linear drift cancels", sp.diff(drift_Y, x), 0)
    d.add("Ito diffusion of Y", diff2_Y, 2 * lam * h2_L / ph**2 * dlam, "VE integrand in lambda times lambda'")
    d.add(
        "step variance",
        alpha_t**2 * pt**2 * (F.subs(LAMBDA, lambda_s) - F.subs(LAMBDA, lambda_t)),
        step["variance"],
        "alpha_t^2 (lambda_t^2 - lambda_s^2 r^2)",
    )
    d.results.update(step)
    return d
