"""VP ≡ VE (docs/theory.md §5, eqs. (19)–(20)): with x̄ = x/α and λ = σ/α the VP ER SDE is the VE ER SDE in
(x̄, λ) with the same φ, and the discrete VP update is α_t times the VE update on (x̄, λ), coefficient by
coefficient.

Continuous: Itô on x̄ = x/α (reverse time τ = −t) gives dx̄ = −D(x̄, λ) λ'(t) dτ + sqrt(2λ h̃²(λ) λ') dB with
D = (1 + h̃²)(x̄ − x_θ)/λ the VE drift in λ-time: exactly the VE ER SDE run in λ.
Discrete: x_t = (α_t/α_s) r x_s + α_t Σ C_n(λ) x_θ^(n) + α_t sqrt(λ_t² − λ_s² r²) z
        = α_t [ r x̄_s + Σ C_n(λ) x_θ^(n) + sqrt(λ_t² − λ_s² r²) z ],  x̄_s = x_s/α_s.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from .latex import Derivation
from .official import official_vp_step
from .sde import alpha_of_t, ve_er_sde_sigma_time, vp_er_sde
from .solution import ito, ve_exact_step, vp_exact_step
from .symbols import LAMBDA, SIGMA, alpha_s, alpha_t, lambda_s, lambda_t, sigma_s, sigma_t, t, x
from .taylor import taylor_coefficients, taylor_coefficients_vp

xbar = sp.Symbol("xbar", real=True)
z = sp.Symbol("z", real=True)


@cache
def vp_to_ve_derivation(phi=None) -> Derivation:
    """Eq. (19): the VP ER SDE in (x̄ = x/α, λ = σ/α) is the VE ER SDE in λ-time (drift and diffusion)."""
    vp = vp_er_sde(phi)
    lam = vp["lam"]
    F = x / alpha_of_t
    drift, diff2 = ito(F, -sp.diff(F, t), -vp["drift"], vp["diffusion2"])  # τ = −t
    drift = drift.subs(x, alpha_of_t * xbar)
    ve = ve_er_sde_sigma_time(phi, LAMBDA)
    dlam = sp.diff(lam, t)
    d = Derivation("VP = VE: x_bar = x/alpha, lambda = sigma/alpha")
    d.add(
        "drift", drift, -(ve["drift"].subs(x, xbar).subs(LAMBDA, lam)) * dlam, "VE drift in lambda times d lambda/d tau"
    )
    d.add("diffusion", diff2, ve["diffusion2"].subs(LAMBDA, lam) * dlam, "2 lambda h~^2(lambda) d lambda")
    d.add("g^2 = 2 alpha^2 lambda lambda'", vp["g2"], 2 * alpha_of_t**2 * lam * dlam)
    return d


@cache
def vp_update_derivation(phi=None, k: int = 3) -> Derivation:
    """Eq. (20): the VP update from the VP derivation equals α_t × the VE update on (x̄, λ), coefficient by
    coefficient, and equals the official code's VP formulas."""
    vps = vp_exact_step(phi)
    ves = {key: v.subs({sigma_s: lambda_s, sigma_t: lambda_t}) for key, v in ve_exact_step(phi).items()}
    X = sp.symbols(f"X0:{k}")  # x_θ^(n)(λ_s)
    xs = sp.Symbol("x_s", real=True)
    vp_w = taylor_coefficients_vp(phi, k)  # α_t C_n(λ) from the VP kernel
    ve_w = [c.subs({sigma_s: lambda_s, sigma_t: lambda_t}).subs(SIGMA, LAMBDA) for c in taylor_coefficients(phi, k)]
    # the x_θ weights of the VP exact solution, built from its own kernel α_t φ(λ_t) φ'/φ²
    ker = [
        sp.Integral(vps["kernel"] * (LAMBDA - lambda_s) ** n / sp.factorial(n), (LAMBDA, lambda_t, lambda_s))
        for n in range(k)
    ]
    d = Derivation("Discrete VP update = alpha_t x VE update in lambda")
    d.add("gain", vps["gain"] * xs, alpha_t * ves["gain"] * (xs / alpha_s), "on x_s = alpha_s x_bar_s")
    for n in range(k):
        d.add(
            f"weight C_{n}",
            ker[n] if phi is None else vp_w[n],
            alpha_t
            * (
                ve_w[n]
                if phi is not None
                else sp.Integral(
                    ves["kernel"].subs(SIGMA, LAMBDA) * (LAMBDA - lambda_s) ** n / sp.factorial(n),
                    (LAMBDA, lambda_t, lambda_s),
                )
            ),
        )
    d.add("variance", vps["variance"], alpha_t**2 * ves["variance"])
    vp_update = vps["gain"] * xs + sum(w * Xn for w, Xn in zip(ker, X)) + sp.sqrt(vps["variance"]) * z
    ve_update = (
        ves["gain"] * xs / alpha_s
        + sum(
            sp.Integral(
                ves["kernel"].subs(SIGMA, LAMBDA) * (LAMBDA - lambda_s) ** n / sp.factorial(n),
                (LAMBDA, lambda_t, lambda_s),
            )
            * Xn
            for n, Xn in enumerate(X)
        )
        + sp.sqrt(ves["variance"]) * z
    )
    d.add("whole update", vp_update, alpha_t * ve_update)
    if phi is None:  # the official code's formulas (k ≤ 3)
        off = official_vp_step(None)
        by_parts = taylor_coefficients(None, min(k, 3), form="by_parts", var=LAMBDA, s=lambda_s, t=lambda_t)
        d.add("official gain", off["gain"], vps["gain"])
        d.add("official variance", off["variance"], vps["variance"])
        for n, w in enumerate(by_parts):
            d.add(
                f"official weight C_{n}",
                off["weights"][n],
                alpha_t * w,
                "our by-parts form (= definition, see the Taylor derivation)",
            )
    return d
