"""Baseline samplers for flow-matching models (docs/theory.md eqs. (35), (42), (43)).

A flow model sees x = α x_0 + σ ε with α = 1 − σ and returns the velocity v = ε − x_0: ``model(x, t_batch) -> v``
with t = ``timesteps[i]`` (or σ_i when ``timesteps`` is None). Every sampler takes ``model, x, sigmas`` (σ in
[0, 1], strictly decreasing, may start at 1 and end in 0; ``x`` the state at ``sigmas[0]``) and the keywords of
:class:`~ersde_theory.solvers._common.SamplerOptions`; the callback's ``denoised`` is x_θ = x − σ v (eq. (35)).

* Euler and Heun integrate the flow ODE dx/dσ = v(x, σ) (eq. (42)) in σ itself: no division by α anywhere, so
  σ_0 = 1 needs nothing special. Heun's step to σ = 0 is an Euler step (2N − 1 model calls, as diffusers'
  ``FlowMatchHeunDiscreteScheduler``).
* DPM-Solver++(2M) and its SDE form are the VE samplers of :mod:`.baselines` on (x̄ = x/α, λ = σ/α) mapped
  back to x (eq. (43)); at σ_0 = 1 (λ_0 = ∞, h_0 = ∞) their first step is the limit given there.
"""

from __future__ import annotations

import math

import torch

from ._common import ModelTimes, SamplerOptions, SamplerRun, Unpack, check_model_output, check_nonneg, check_s_noise

__all__ = ["sample_flow_euler", "sample_flow_heun", "sample_flow_dpmpp_2m", "sample_flow_dpmpp_2m_sde"]


class _FlowRun:
    """A :class:`SamplerRun` on a flow schedule (σ checked to lie in [0, 1]) with ``velocity(i, x, sigma_i)``
    calling ``model(x, t_i * ones(B))``; t = ``timesteps`` (N+1 entries like ``sigmas``) or σ."""

    def __init__(self, model, x: torch.Tensor, sigmas, timesteps, options: dict):
        extra = options.pop("extra_args", None) or {}
        self.run = run = SamplerRun(model, x, sigmas, **options)
        if run.sig[0] > 1.0:
            raise ValueError(f"flow sigmas must lie in [0, 1] (alpha = 1 - sigma), got sigmas[0]={run.sig[0]!r}")
        self.times = ModelTimes(timesteps, run.sig, x)
        self._model, self._extra = model, extra

    def velocity(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """v(x, σ_i) = model(x, t_i · ones(B)), checked."""
        return check_model_output(self._model(x, self.times.at(i), **self._extra), x)

    def report(self, i: int, x: torch.Tensor, v: torch.Tensor) -> None:
        """Callback with x_θ = x − σ_i v (eq. (35) with α + σ = 1)."""
        s = self.run.sig[i]
        self.run.report(i, x, s, x - v * s)


@torch.no_grad()
def sample_flow_euler(
    model, x: torch.Tensor, sigmas, *, timesteps=None, **options: Unpack[SamplerOptions]
) -> torch.Tensor:
    """Euler's method for the flow ODE dx/dσ = v (eq. (42)): x_{i+1} = x_i + (σ_{i+1} − σ_i) v(x_i, σ_i)
    (diffusers' ``FlowMatchEulerDiscreteScheduler``); = ER-SDE-Solver-1 with φ = λ (eq. (41))."""
    fr = _FlowRun(model, x, sigmas, timesteps, options)
    for i, s, t in fr.run.range():
        v = fr.velocity(i, x)
        fr.report(i, x, v)
        x = x + v * (t - s)
    return fr.run.finish(x)


@torch.no_grad()
def sample_flow_heun(
    model, x: torch.Tensor, sigmas, *, timesteps=None, **options: Unpack[SamplerOptions]
) -> torch.Tensor:
    """Heun's method (explicit trapezoid) for dx/dσ = v (eq. (42)):

        x' = x_i + (σ_{i+1} − σ_i) v_i,   x_{i+1} = x_i + (σ_{i+1} − σ_i) (v_i + v(x', σ_{i+1}))/2,

    and the step to σ = 0 is the Euler step x' (2N − 1 model calls when the schedule ends in 0)."""
    fr = _FlowRun(model, x, sigmas, timesteps, options)
    for i, s, t in fr.run.range():
        v = fr.velocity(i, x)
        fr.report(i, x, v)
        x_next = x + v * (t - s)
        if t > 0:
            x_next = x + (v + fr.velocity(i + 1, x_next)) * (0.5 * (t - s))
        x = x_next
    return fr.run.finish(x)


@torch.no_grad()
def sample_flow_dpmpp_2m(
    model, x: torch.Tensor, sigmas, *, timesteps=None, **options: Unpack[SamplerOptions]
) -> torch.Tensor:
    """DPM-Solver++(2M) on a flow model through the VP → VE map (eq. (43) with η = 0): the VE
    :func:`~ersde_theory.solvers.baselines.sample_dpmpp_2m` on (x/α, σ/α), times α. Runs through
    :func:`sample_flow_dpmpp_2m_sde` with η = 0."""
    return sample_flow_dpmpp_2m_sde(model, x, sigmas, timesteps=timesteps, eta=0.0, **options)


@torch.no_grad()
def sample_flow_dpmpp_2m_sde(
    model,
    x: torch.Tensor,
    sigmas,
    *,
    timesteps=None,
    eta: float = 1.0,
    s_noise: float = 1.0,
    **options: Unpack[SamplerOptions],
) -> torch.Tensor:
    """SDE-DPM-Solver++(2M) on a flow model through the VP → VE map, eq. (43): with λ = σ/α, α = 1 − σ,
    h_i = log(λ_i/λ_{i+1}) and D_i = x_i − σ_i v_i,

        x_{i+1} = (σ_{i+1}/σ_i) e^{−η h_i} x_i + α_{i+1} (1 − e^{−(1+η) h_i}) [D_i + (D_i − D_{i−1}) h_i/(2 h_{i−1})]
                  + s_noise σ_{i+1} sqrt(1 − e^{−2η h_i}) z

    (α_{i+1} times the VE step of :func:`~ersde_theory.solvers.baselines.sample_dpmpp_2m_sde` on x̄ = x/α). The
    first step has no D_{i−1} term; from σ_0 = 1 (λ_0 = ∞) it is the limit h_0 = ∞: x_1 = [η = 0] σ_1 x_0 +
    α_1 D_0 + [η > 0] s_noise σ_1 z, and the next step's h_1/h_0 = 0. The step to σ = 0 returns D_i.
    ``eta`` = 0 is DPM-Solver++(2M).
    """
    check_nonneg(eta=eta)
    eta, s_noise = float(eta), check_s_noise(s_noise)
    fr = _FlowRun(model, x, sigmas, timesteps, options)
    run, h_old, d_old = fr.run, None, None
    for i, s, t in run.range():
        v = fr.velocity(i, x)
        den = x - v * s  # D_i, eq. (35)
        run.report(i, x, s, den)
        if t == 0:
            x = den
            continue
        a_s, a_t = 1.0 - s, 1.0 - t
        h = math.inf if a_s == 0 else math.log((s * a_t) / (t * a_s))  # log(λ_s/λ_t)
        gain = (t / s) * (math.exp(-eta * h) if eta > 0 else 1.0)
        w = a_t * -math.expm1(-(1.0 + eta) * h)
        x_next = x * gain + den * w
        if d_old is not None:
            x_next = x_next + (den - d_old) * (0.5 * w * h / h_old)
        if eta > 0 and s_noise > 0:
            x_next = x_next + run.noise(i) * (s_noise * t * math.sqrt(-math.expm1(-2.0 * eta * h)))
        x, h_old, d_old = x_next, h, den
    return run.finish(x)
