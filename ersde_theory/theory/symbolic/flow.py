"""Flow-matching models (docs/theory.md §9, eqs. (35)–(44)): the velocity parametrisation, the VP → VE map on the
flow path, and the limit of the first ER-SDE step at σ = 1 (α = 0, λ = σ/α = ∞).

* :func:`flow_map_derivation`: x_0 = (x − σ v)/(α + σ) from x = α x_0 + σ ε, v = ε − x_0; on α = 1 − σ,
  λ = σ/(1 − σ), σ = λ/(1 + λ), α = 1/(1 + λ) (eq. (35)).
* :func:`start_limit_derivation`: for a φ (registry name or expression) the limits λ_s → ∞ of the step's
  gain α_t φ(λ_t)/(α_s φ(λ_s)) with α_s = σ_s/λ_s, its noise variance α_t²(λ_t² − λ_s² r²), its data weight
  1 − r and C_1(λ_s, λ_t)/(λ_t − λ_s) (eqs. (37)–(40)); :func:`start_limits_table` classifies the registry.
* :func:`flow_euler_derivation`: ER-SDE-Solver-1 with φ = λ is the flow Euler step (eq. (41)).
* :func:`dpmpp_start_derivation`: DPM-Solver++(2M)/SDE through the map at h = ∞ (eq. (43)).
* :func:`flow_posterior_derivation`: the exact velocity of a Gaussian in flow variables equals the one from the
  VE denoiser of x̄ = x/α at λ (eq. (44)).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from .latex import Derivation
from .sde import ell, h_tilde_sq
from .symbols import LAMBDA, NSF_NAMES, SIGMA, alpha_s, alpha_t, as_phi, lambda_s, lambda_t, sigma_s, sigma_t, x
from .taylor import taylor_coefficients

v, eps, x0 = sp.symbols("v epsilon x_0", real=True)
eta, h = sp.symbols("eta h", nonnegative=True)


def ell_at_infinity(phi) -> sp.Expr:
    """ℓ(∞) = lim_{σ→∞} log(φ(σ)/σ) (eq. (37)); +∞ when φ grows faster than σ."""
    return sp.limit(ell(phi), SIGMA, sp.oo)


def gain_constant(phi) -> sp.Expr:
    """L_φ = lim_{λ→∞} λ/φ(λ) = e^{−ℓ(∞)} (eq. (37))."""
    return sp.limit(SIGMA / as_phi(phi), SIGMA, sp.oo)


@cache
def flow_map_derivation() -> Derivation:
    """Eq. (35): the data prediction of a velocity model for any (α, σ), and the flow path's λ."""
    sol = sp.solve([sp.Eq(x, alpha_t * x0 + sigma_t * eps), sp.Eq(v, eps - x0)], [x0, eps], dict=True)[0]
    d = Derivation("Flow models: velocity v = eps - x0, x = alpha x0 + sigma eps")
    d.add("x0 from (x, v)", sol[x0], (x - sigma_t * v) / (alpha_t + sigma_t))
    d.add("eps from (x, v)", sol[eps], (x + alpha_t * v) / (alpha_t + sigma_t))
    lam = sigma_t / (1 - sigma_t)
    d.add("flow: sigma(lambda)", lam / (1 + lam), sigma_t, "sigma = lambda/(1 + lambda)")
    d.add("flow: alpha(lambda)", 1 / (1 + lam), 1 - sigma_t, "alpha = 1/(1 + lambda)")
    d.results.update(x0=sol[x0], eps=sol[eps])
    return d


@cache
def start_limit_derivation(phi) -> Derivation:
    """Eqs. (37)–(40) for one φ: the first step from λ_s = ∞, with α_s = σ_s/λ_s (σ_s fixed) and
    α_t = σ_t/λ_t. Results: ``L`` (= lim λ/φ), ``gain``, ``variance``, ``data_weight``, ``c1_ratio``."""
    ph = as_phi(phi, LAMBDA)
    phi_t, phi_s = ph.subs(LAMBDA, lambda_t), ph.subs(LAMBDA, lambda_s)
    L = gain_constant(phi)
    ell_inf = ell_at_infinity(phi)
    r = phi_t / phi_s
    a_s = sigma_s / lambda_s
    d = Derivation(f"Start at sigma/alpha = inf for phi = {ph}")
    gain = sp.limit(alpha_t * r / a_s, lambda_s, sp.oo)
    d.add("gain", gain, alpha_t * phi_t * L / sigma_s, "alpha_t phi(lambda_t) L_phi/sigma_s")
    if ell_inf.is_finite:
        via_ell = (alpha_t * lambda_t / sigma_s) * sp.exp(-(ell_inf - ell(phi, LAMBDA).subs(LAMBDA, lambda_t)))
    else:
        via_ell = sp.Integer(0)
    d.add("gain via ell", gain, via_ell, "(sigma_t/sigma_s) exp(-(ell(inf) - ell(lambda_t)))")
    var = sp.limit(alpha_t**2 * (lambda_t**2 - lambda_s**2 * r**2), lambda_s, sp.oo)
    d.add("variance", var, (alpha_t * lambda_t) ** 2 - gain**2 * sigma_s**2, "sigma_t^2 - gain^2 sigma_s^2")
    weight = sp.limit(1 - r, lambda_s, sp.oo)
    d.add("data weight 1 - r", weight, 1)
    # C_1(λ_s, λ_t) = −∫_{λ_t}^{λ_s} (1 − φ_t/φ) dλ → −∞; l'Hôpital in λ_s: the ratio of the λ_s-derivatives
    # −(1 − φ_t/φ(λ_s)) and −1
    c1 = taylor_coefficients(phi, 2, form="sign_definite", closed_form=False, var=LAMBDA, s=lambda_s, t=lambda_t)[1]
    dc1 = sp.diff(c1, lambda_s).doit()
    d.add("d C_1/d lambda_s", dc1, -(1 - r), "fundamental theorem of calculus")
    c1_ratio = sp.limit(dc1 / sp.diff(lambda_t - lambda_s, lambda_s), lambda_s, sp.oo)
    d.add("lim C_1/(lambda_t - lambda_s)", c1_ratio, 1, "l'Hopital: C_1 -> -inf")
    d.results.update(L=L, ell_inf=ell_inf, gain=gain, variance=var, data_weight=weight, c1_ratio=c1_ratio)
    return d


def start_limits_table(names=NSF_NAMES) -> dict[str, dict]:
    """For each registry NSF: L_φ = lim λ/φ(λ), the kind of the first step's gain from σ = 1 ("α_t φ(λ_t)/(σ_s
    L_φ^{-1})": finite nonzero, zero, or none: inadmissible at large λ), and whether h̃² ≥ 0 for large λ."""
    out = {}
    for name in names:
        h2_inf = sp.limit(h_tilde_sq(name), SIGMA, sp.oo)
        admissible = bool(h2_inf >= 0)
        L = gain_constant(name)
        if not admissible:
            kind = "inadmissible at large lambda (no limit)"
        elif L == 0:
            kind = "zero gain: x_1 = alpha_1 D_0 + sigma_1 z"
        else:
            kind = "finite nonzero gain"
        out[name] = dict(L=L, h2_at_infinity=h2_inf, admissible_at_infinity=admissible, kind=kind)
    return out


@cache
def flow_euler_derivation() -> Derivation:
    """Eq. (41): ER-SDE-Solver-1 with φ = λ on α = 1 − σ, x_θ = x_s − σ_s v (eq. (35)), is x_s + (σ_t − σ_s) v."""
    a_s, a_t = 1 - sigma_s, 1 - sigma_t
    lam_s, lam_t = sigma_s / a_s, sigma_t / a_t
    r = lam_t / lam_s  # φ = λ
    D = x - sigma_s * v
    step = (a_t / a_s) * r * x + a_t * (1 - r) * D  # eq. (36) at order 1, no noise (h̃ = 0)
    d = Derivation("ER-SDE-1 with phi = lambda is flow Euler")
    d.add("gain", (a_t / a_s) * r, sigma_t / sigma_s)
    d.add("update", step, x + (sigma_t - sigma_s) * v)
    return d


@cache
def dpmpp_start_derivation() -> Derivation:
    """Eq. (43) at the start λ_0 = ∞ (h_0 = ∞): the gain (σ_1/σ_0) e^{−η h}, the data weight 1 − e^{−(1+η)h}
    and the noise 1 − e^{−2ηh}; with η > 0 the gain vanishes, with η = 0 it is σ_1/σ_0."""
    d = Derivation("DPM-Solver++(2M) through the map, first step from lambda = inf")
    eta_p = sp.Symbol("eta", positive=True)
    d.add("gain factor (eta > 0)", sp.limit(sp.exp(-eta_p * h), h, sp.oo), 0)
    d.add("data weight", sp.limit(1 - sp.exp(-(1 + eta) * h), h, sp.oo), 1)
    d.add("noise variance factor (eta > 0)", sp.limit(1 - sp.exp(-2 * eta_p * h), h, sp.oo), 1)
    h_old = sp.Symbol("h_old", positive=True)
    d.add("next step's slope weight h/(2 h_old)", sp.limit(h / (2 * h_old), h_old, sp.oo), 0)
    return d


@cache
def flow_posterior_derivation() -> Derivation:
    """Eq. (44) for one Gaussian component N(μ, ℓ) (per eigen-direction): in flow variables
    E[x_0|x] = μ + α ℓ (x − α μ)/(α² ℓ + σ²), E[ε|x] = σ (x − α μ)/(α² ℓ + σ²); their difference is the
    velocity (x − (α + σ) D)/σ of the VE denoiser D = μ + ℓ/(ℓ + λ²)(x̄ − μ) at x̄ = x/α, λ = σ/α."""
    mu = sp.Symbol("mu", real=True)
    ll = sp.Symbol("ell_k", positive=True)
    a, s = alpha_t, sigma_t
    q = a**2 * ll + s**2
    ex0 = mu + a * ll * (x - a * mu) / q
    eeps = s * (x - a * mu) / q
    lam = s / a
    D = mu + ll / (ll + lam**2) * (x / a - mu)
    d = Derivation("Exact velocity of a Gaussian in flow variables")
    d.add("E[x0|x] = VE denoiser at (x/alpha, sigma/alpha)", ex0, D)
    d.add("x = alpha E[x0|x] + sigma E[eps|x]", a * ex0 + s * eeps, x)
    d.add("v = E[eps|x] - E[x0|x]", eeps - ex0, (x - (a + s) * D) / s)
    return d


def flow_derivations() -> list[Derivation]:
    """Every derivation of §9 for the registry NSFs admissible at λ = ∞."""
    table = start_limits_table()
    ds = [flow_map_derivation(), flow_euler_derivation(), dpmpp_start_derivation(), flow_posterior_derivation()]
    return ds + [start_limit_derivation(n) for n, row in table.items() if row["admissible_at_infinity"]]


__all__ = [
    "ell_at_infinity",
    "gain_constant",
    "flow_map_derivation",
    "start_limit_derivation",
    "start_limits_table",
    "flow_euler_derivation",
    "dpmpp_start_derivation",
    "flow_posterior_derivation",
    "flow_derivations",
    "alpha_s",
]
