"""diffusers' own schedulers as baselines, and the one sampling loop that every scheduler, ours included, runs in.

:func:`vp_schedulers` and :func:`flow_schedulers` build the compared schedulers from a model's scheduler config (label →
:class:`SchedulerSpec`): ER-SDE-Solver-1/2/3 as :class:`~.schedulers.ERSDEScheduler` /
:class:`~.schedulers.FlowMatchERSDEScheduler`, and diffusers' DPM-Solver++ (2M, and its SDE variant), UniPC, DDIM
(η = 0 and 1), Euler ancestral, SA-Solver and DEIS on VP models; flow Euler and flow Heun on flow models. Every
VP scheduler gets ``timestep_spacing="trailing"`` (its first model call at t = T − 1, the pure-noise end, whatever
the number of steps) so that none starts later in the schedule than another, and none clips or thresholds its data
prediction (DDIM's default ``clip_sample`` is turned off).

:func:`run_scheduler` is diffusers' own loop (``scale_model_input``, the model, ``step``) with one ``torch.Generator``
per sample for every noise draw, so an image depends only on its seed; it counts the model calls.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ._require import require_diffusers

__all__ = ["SchedulerSpec", "flow_schedulers", "run_scheduler", "vp_schedulers"]


@dataclass(frozen=True)
class SchedulerSpec:
    """A compared scheduler: ``make()`` builds it fresh; ``step_kwargs`` go to its ``step`` (DDIM's ``eta``);
    ``calls_per_step``: model calls per inference step (2 for Heun), for the NFE → steps rule; ``stochastic``:
    whether it draws noise; ``ersde``: one of ours."""

    make: Callable
    step_kwargs: dict = field(default_factory=dict)
    calls_per_step: int = 1
    stochastic: bool = False
    ersde: bool = False

    def steps_for(self, nfe: int) -> int:
        """Inference steps that spend at most ``nfe`` model calls (Heun: 2 per step, 1 on the last)."""
        return (nfe + 1) // 2 if self.calls_per_step == 2 else nfe


ERSDE_VARIANTS = (  # (order, NSF, derivatives): ER-SDE-Solver-1/2/3 with er_sde_5 and the ODE, both estimates at 3
    (3, "er_sde_5", "published"),
    (3, "er_sde_5", "corrected"),
    (2, "er_sde_5", "published"),
    (1, "er_sde_5", "published"),
    (3, "ode", "published"),
    (3, "ode", "corrected"),
    (2, "ode", "published"),
    (1, "ode", "published"),
)


def ersde_label(order: int, nsf: str, derivatives: str) -> str:
    return f"ER-SDE-{order} {nsf}" + (" corrected" if derivatives == "corrected" else "")


def vp_schedulers(config: dict, *, quick: bool = False) -> dict[str, SchedulerSpec]:
    """The compared schedulers of a VP model with the scheduler ``config`` (a diffusers scheduler config: β schedule,
    ``num_train_timesteps``, ``prediction_type``), ours first (module docstring). ``quick``: three of them (ER-SDE-3,
    diffusers' DPM-Solver++(2M) with and without noise)."""
    diffusers = require_diffusers()
    from .schedulers import ERSDEScheduler

    keys = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas", "prediction_type")
    base = {k: config[k] for k in keys if k in config} | {"timestep_spacing": "trailing"}

    def ours(order, nsf, derivatives):
        kw = dict(solver_order=order, nsf=nsf, derivatives=derivatives)
        return SchedulerSpec(lambda: ERSDEScheduler(**base, **kw), stochastic=nsf != "ode", ersde=True)

    def theirs(cls, stochastic=False, **kw):
        return lambda: getattr(diffusers, cls)(**base, **kw)

    specs = {ersde_label(*v): ours(*v) for v in ERSDE_VARIANTS}
    specs |= {
        "DPM-Solver++(2M) (DPMSolverMultistepScheduler)": SchedulerSpec(
            theirs("DPMSolverMultistepScheduler", algorithm_type="dpmsolver++", solver_order=2)
        ),
        "SDE-DPM-Solver++(2M) (DPMSolverMultistepScheduler)": SchedulerSpec(
            theirs("DPMSolverMultistepScheduler", algorithm_type="sde-dpmsolver++", solver_order=2), stochastic=True
        ),
        "UniPC (UniPCMultistepScheduler)": SchedulerSpec(theirs("UniPCMultistepScheduler")),
        "DDIM η=0 (DDIMScheduler)": SchedulerSpec(theirs("DDIMScheduler", clip_sample=False), {"eta": 0.0}),
        "DDIM η=1 (DDIMScheduler)": SchedulerSpec(
            theirs("DDIMScheduler", clip_sample=False), {"eta": 1.0}, stochastic=True
        ),
        "Euler ancestral (EulerAncestralDiscreteScheduler)": SchedulerSpec(
            theirs("EulerAncestralDiscreteScheduler"), stochastic=True
        ),
        "SA-Solver (SASolverScheduler)": SchedulerSpec(theirs("SASolverScheduler"), stochastic=True),
        "DEIS (DEISMultistepScheduler)": SchedulerSpec(theirs("DEISMultistepScheduler")),
    }
    if quick:
        keep = (
            "ER-SDE-3 er_sde_5",
            "SDE-DPM-Solver++(2M) (DPMSolverMultistepScheduler)",
            "DPM-Solver++(2M) (DPMSolverMultistepScheduler)",
        )
        return {k: specs[k] for k in keep}
    return specs


def flow_schedulers(config: dict, *, quick: bool = False) -> dict[str, SchedulerSpec]:
    """The compared schedulers of a flow model with the ``FlowMatchEulerDiscreteScheduler`` ``config``:
    :class:`~.schedulers.FlowMatchERSDEScheduler` of orders 1–3 with ``ode`` and ``er_sde_5`` (published estimates),
    order 3 corrected (``er_sde_5``, the λ expansion) and corrected with ``expansion="flow"`` (the denoiser expanded
    in the flow time s = σ, docs/theory.md eqs. (53)–(57); labels "… corrected flow-exp."), then diffusers' flow
    Euler and flow Heun. ``quick``: two of them."""
    diffusers = require_diffusers()
    from .schedulers import FlowMatchERSDEScheduler

    base = {k: v for k, v in config.items() if not k.startswith("_")}
    specs = {}
    for nsf in ("er_sde_5", "ode"):
        for order in (3, 2, 1):
            make = lambda order=order, nsf=nsf: FlowMatchERSDEScheduler.from_config(base, solver_order=order, nsf=nsf)  # noqa: E731
            specs[ersde_label(order, nsf, "published")] = SchedulerSpec(make, stochastic=nsf != "ode", ersde=True)
    make = lambda: FlowMatchERSDEScheduler.from_config(base, solver_order=3, nsf="er_sde_5", derivatives="corrected")  # noqa: E731
    specs[ersde_label(3, "er_sde_5", "corrected")] = SchedulerSpec(make, stochastic=True, ersde=True)
    for nsf in ("er_sde_5", "ode"):  # order 3, corrected, the flow expansion

        def make(nsf=nsf):
            kw = dict(solver_order=3, nsf=nsf, derivatives="corrected", expansion="flow")
            return FlowMatchERSDEScheduler.from_config(base, **kw)

        specs[ersde_label(3, nsf, "corrected") + " flow-exp."] = SchedulerSpec(
            make, stochastic=nsf != "ode", ersde=True
        )
    specs["flow Euler (FlowMatchEulerDiscreteScheduler)"] = SchedulerSpec(
        lambda: diffusers.FlowMatchEulerDiscreteScheduler.from_config(base)
    )
    specs["flow Heun (FlowMatchHeunDiscreteScheduler)"] = SchedulerSpec(
        lambda: diffusers.FlowMatchHeunDiscreteScheduler.from_config(base), calls_per_step=2
    )
    if quick:
        return {k: specs[k] for k in ("ER-SDE-3 er_sde_5", "flow Euler (FlowMatchEulerDiscreteScheduler)")}
    return specs


@torch.no_grad()
def run_scheduler(unet, scheduler, noise: torch.Tensor, steps: int, *, generator=None, step_kwargs=None):
    """diffusers' loop: ``x = noise · init_noise_sigma``, then per timestep ``unet(scale_model_input(x, t), t)`` and
    ``step(…, generator=generator)``; the UNet runs in its dtype, the state in ``noise``'s. Returns (x, model calls).
    ``generator``: one ``torch.Generator`` per sample (diffusers draws sample b's noise from generator b)."""
    scheduler.set_timesteps(steps, device=noise.device)
    accepted = inspect.signature(scheduler.step).parameters
    kw = dict(step_kwargs or {})
    if "generator" in accepted:
        kw["generator"] = generator
    x, calls = noise * getattr(scheduler, "init_noise_sigma", 1.0), 0  # flow schedulers start at x = noise
    scale = getattr(scheduler, "scale_model_input", lambda sample, t: sample)
    for t in scheduler.timesteps:
        inp = scale(x, t)
        out = unet(inp.to(unet.dtype), t.expand(x.shape[0]).to(noise.device)).sample.to(x.dtype)
        calls += 1
        x = scheduler.step(out, t, x, **kw).prev_sample
    return x, calls
