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
* The flow expansion (eqs. (53)–(57)): the denoiser expanded in the flow time s = λ/(1 + λ) instead of λ.
  :func:`flow_expansion_weights` gives c_n = W_n/α_t in three forms (the λ-integral of the exact solution, the
  same integral in s with dλ = ds/(1 − s)², and the sign-definite form used by the float64 code);
  :func:`flow_expansion_derivation` proves that they agree (change of variables, integration by parts in s),
  that the ODE weights on α = 1 − σ are the VE ones on σ (eq. (57)), and finds the closed forms for φ = λ, λ²;
  :func:`flow_weight_density_table` classifies the registry by the s-density of the weights at s = 1 (eq. (56)).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from .calculus import antiderivative
from .latex import Derivation
from .sde import ell, h_tilde_sq
from .symbols import LAMBDA, NSF_NAMES, SIGMA, alpha_s, alpha_t, as_phi, lambda_s, lambda_t, phi_f, sigma_s, sigma_t, x
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


# ---------------------------------------------------------------- the flow expansion, eqs. (53)–(57)
S_FLOW = sp.Symbol("s", positive=True)  # the flow time s = λ/(1 + λ) ∈ (0, 1)
s_s, s_t = sp.symbols("s_s s_t", positive=True)  # a step s_s → s_t < s_s (s_s = 1: the start at α = 0)
EXPANSION_FORMS = ("lambda_integral", "s_integral", "sign_definite")


def lambda_of_s(s=S_FLOW) -> sp.Expr:
    """λ = s/(1 − s), the inverse of s = λ/(1 + λ) (eq. (53))."""
    return s / (1 - s)


def s_of_lambda(lam=LAMBDA) -> sp.Expr:
    """s = λ/(1 + λ) = σ/(α + σ) (eq. (53))."""
    return lam / (1 + lam)


def flow_expansion_weights(phi, k: int = 3, form: str = "sign_definite") -> list:
    """[c_0, …, c_{k−1}] of eq. (54) for the step s_s → s_t (c_n = W_n/α_t: the weight of D^{(n)}(s_s), the n-th
    s-derivative of the denoiser, divided by α_t) as unevaluated integrals, in ``form``:

    * "lambda_integral": φ(λ_t) ∫_{λ_t}^{λ_s} φ'(λ)/φ(λ)² (s(λ) − s_s)^n/n! dλ (eq. (54), from the exact solution);
    * "s_integral": the same with λ = s/(1 − s), dλ = ds/(1 − s)² (finite at s_s = 1);
    * "sign_definite": −∫_{s_t}^{s_s} (1 − G)(s − s_s)^{n−1}/(n−1)! ds, G = φ(λ_t)/φ(λ(s)) (eq. (55)), n ≥ 1.

    c_0 = 1 − φ(λ_t)/φ(λ_s) in every form but the integral ones (there the n = 0 integral)."""
    if form not in EXPANSION_FORMS:
        raise ValueError(f"form must be one of {EXPANSION_FORMS}, got {form!r}")
    ph = as_phi(phi, LAMBDA)
    lam_t, lam_s = lambda_of_s(s_t), lambda_of_s(s_s)
    pt = ph.subs(LAMBDA, lam_t)
    out = []
    for n in range(k):
        if form == "lambda_integral":
            f = pt * sp.diff(ph, LAMBDA) / ph**2 * (s_of_lambda(LAMBDA) - s_s) ** n / sp.factorial(n)
            out.append(sp.Integral(f, (LAMBDA, lam_t, lam_s)))
            continue
        ph_s = ph.subs(LAMBDA, lambda_of_s(S_FLOW))
        if form == "s_integral":
            dphi = sp.diff(ph, LAMBDA).subs(LAMBDA, lambda_of_s(S_FLOW))
            f = pt * dphi / ph_s**2 * (S_FLOW - s_s) ** n / sp.factorial(n) / (1 - S_FLOW) ** 2
            out.append(sp.Integral(f, (S_FLOW, s_t, s_s)))
        elif n == 0:
            out.append(1 - pt / ph.subs(LAMBDA, lam_s))
        else:
            f = -(1 - pt / ph_s) * (S_FLOW - s_s) ** (n - 1) / sp.factorial(n - 1)
            out.append(sp.Integral(f, (S_FLOW, s_t, s_s)))
    return out


def _sign_definite_integrand(phi, n: int) -> sp.Expr:
    """−(1 − G)(s − s_s)^{n−1}/(n−1)! of eq. (55) with G = φ(λ_t)/φ(s/(1 − s)), λ_t kept as the symbol λ_t."""
    ph = as_phi(phi, LAMBDA)
    G = ph.subs(LAMBDA, lambda_t) / ph.subs(LAMBDA, lambda_of_s(S_FLOW))
    return -(1 - G) * (S_FLOW - s_s) ** (n - 1) / sp.factorial(n - 1)


@cache
def flow_weight_antiderivatives(phi, k: int = 3) -> list:
    """Antiderivatives in s of the sign-definite integrands of c_1 … c_{k−1} (eq. (55)), λ_t as a symbol, where
    sympy's rule-based integrator finds them (φ = λ, λ²: rational in s after partial fractions); None otherwise."""
    out = []
    for n in range(1, k):
        f = sp.apart(sp.together(sp.expand(_sign_definite_integrand(phi, n))), S_FLOW)
        out.append(antiderivative(f, S_FLOW))
    return out


def flow_weight_closed_forms(phi, k: int = 3) -> list:
    """[c_0, …, c_{k−1}] of eq. (55) in closed form in (s_s, s_t) where :func:`flow_weight_antiderivatives` finds
    them (None entries otherwise); c_0 = 1 − φ(λ_t)/φ(λ_s)."""
    lt = lambda_of_s(s_t)
    out = [flow_expansion_weights(phi, 1)[0]]
    for F in flow_weight_antiderivatives(phi, k):
        out.append(None if F is None else (F.subs(S_FLOW, s_s) - F.subs(S_FLOW, s_t)).subs(lambda_t, lt))
    return out


def _by_parts_in_s(n: int) -> tuple[sp.Expr, sp.Expr]:
    """(definition integrand in s, d/ds[boundary] + sign-definite integrand + head) for the general φ: the
    integration by parts behind eq. (55), with B = −G (s − s_s)^n/n! and the head (s_t − s_s)^n/n! written as
    ∫ d/ds[−(s − s_s)^n/n!]."""
    ph = phi_f(LAMBDA)
    lam = lambda_of_s(S_FLOW)
    G = phi_f(lambda_of_s(s_t)) / phi_f(lam)
    lhs = -sp.diff(G, S_FLOW) * (S_FLOW - s_s) ** n / sp.factorial(n)
    boundary = -G * (S_FLOW - s_s) ** n / sp.factorial(n)
    head = sp.diff(-((S_FLOW - s_s) ** n) / sp.factorial(n), S_FLOW)
    sd = -(1 - G) * (S_FLOW - s_s) ** (n - 1) / sp.factorial(n - 1)
    del ph
    return lhs, sp.diff(boundary, S_FLOW) + sd - head


@cache
def flow_expansion_derivation(phi=None) -> Derivation:
    """Eqs. (53)–(57): the change of variables λ = s/(1 − s), the by-parts identity in s (general φ), c_0 = 1 − r;
    for a registry φ with closed forms (ode, sde) the closed-form c_1, c_2 and their sign-definite integrals; for
    the ODE on α = 1 − σ: α_t c_n = C_n(σ_s, σ_t) of eq. (12) on σ (eq. (57))."""
    d = Derivation("Flow expansion: the denoiser expanded in s = lambda/(1 + lambda)")
    lam = lambda_of_s(S_FLOW)
    d.add("s(lambda(s))", sp.simplify(s_of_lambda(lam)), S_FLOW)
    d.add("d lambda / d s", sp.diff(lam, S_FLOW), 1 / (1 - S_FLOW) ** 2, "d lambda = ds/(1 - s)^2")
    d.add("s = sigma/(alpha + sigma)", s_of_lambda(sigma_t / alpha_t), sigma_t / (alpha_t + sigma_t))
    # the λ-integrand of eq. (54) at λ = λ(s), times dλ/ds, is the s-integrand (general φ)
    ph = phi_f(LAMBDA)
    for n in range(3):
        f_lam = ph.subs(LAMBDA, lambda_of_s(s_t)) * sp.diff(ph, LAMBDA) / ph**2 * (s_of_lambda(LAMBDA) - s_s) ** n
        g = sp.Function("g")
        f_s = g(S_FLOW) * ph.subs(LAMBDA, lambda_of_s(s_t)) / phi_f(lam) ** 2 * (S_FLOW - s_s) ** n / (1 - S_FLOW) ** 2
        lhs = f_lam.subs(sp.Derivative(ph, LAMBDA), g(S_FLOW)).subs(LAMBDA, lam) * sp.diff(lam, S_FLOW)
        d.add(f"change of variables n={n}", lhs, f_s, "phi'(lambda(s)) written g(s)")
    for n in (1, 2):
        lhs, rhs = _by_parts_in_s(n)
        d.add(f"by parts in s, n={n}", lhs, rhs, "-G' (s - s_s)^n/n! = B' + (1 - G) form - head'")
    if phi is not None:
        ph = as_phi(phi, LAMBDA)
        cs = flow_weight_closed_forms(phi, 3)
        lam_t, lam_s = lambda_of_s(s_t), lambda_of_s(s_s)
        d.add("c_0", cs[0], 1 - ph.subs(LAMBDA, lam_t) / ph.subs(LAMBDA, lam_s))
        for n, F in enumerate(flow_weight_antiderivatives(phi, 3), start=1):
            if F is not None:
                d.add(
                    f"c_{n}: antiderivative", sp.diff(F, S_FLOW), _sign_definite_integrand(phi, n), "d/ds F = integrand"
                )
                d.add(f"c_{n} at s_s = s_t", cs[n].subs(s_s, s_t), 0)
        d.results.update(closed_forms=cs)
        if as_phi(phi, LAMBDA) == LAMBDA:  # eq. (57): the ODE on α = 1 − σ, s = σ
            a_t = 1 - s_t
            g_flow = (lambda_of_s(s_t) / lam).subs(S_FLOW, SIGMA)
            d.add("ODE: alpha_t (1 - G_flow) = 1 - sigma_t/sigma", sp.simplify(a_t * (1 - g_flow)), 1 - s_t / SIGMA)
            for n in (1, 2):
                ve = taylor_coefficients("ode", 3, form="sign_definite", closed_form=True)[n]
                d.add(f"ODE: alpha_t c_{n} = C_{n}(sigma)", a_t * cs[n], ve.subs({sigma_s: s_s, sigma_t: s_t}))
    return d


def flow_weight_density_table(names=NSF_NAMES) -> dict[str, dict]:
    """For each registry NSF: the s-density of the weights at s = 1, lim_{λ→∞} (1 + h̃²) λ/φ(λ) (the integrand of
    eq. (54) in s: φ'/φ² · (1 + λ)², up to φ_t), and whether the c_n from s_s = 1 are finite (every NSF admissible
    up to λ = ∞: |c_n| ≤ (1 − s_t)^n/n!, eq. (56))."""
    out = {}
    for name, row in start_limits_table(names).items():
        ph = as_phi(name, LAMBDA)
        density = sp.limit((1 + h_tilde_sq(name, LAMBDA)) * LAMBDA / ph, LAMBDA, sp.oo)
        out[name] = dict(density_at_s_1=density, finite_weights=row["admissible_at_infinity"], **row)
    return out


def flow_derivations() -> list[Derivation]:
    """Every derivation of §9 for the registry NSFs admissible at λ = ∞."""
    table = start_limits_table()
    ds = [flow_map_derivation(), flow_euler_derivation(), dpmpp_start_derivation(), flow_posterior_derivation()]
    ds += [flow_expansion_derivation(), flow_expansion_derivation("ode"), flow_expansion_derivation("sde")]
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
    "flow_expansion_weights",
    "flow_weight_closed_forms",
    "flow_weight_antiderivatives",
    "flow_expansion_derivation",
    "flow_weight_density_table",
    "lambda_of_s",
    "s_of_lambda",
    "S_FLOW",
    "s_s",
    "s_t",
    "alpha_s",
]
