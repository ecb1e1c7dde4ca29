"""The one sampler registry, beside the samplers: name → :class:`Sampler` (function, default keywords, model
calls per step, stochastic, label), with the NFE → steps rule, and the names each kind of model is sampled with
(:func:`available_samplers`). The benchmarks, the image models, the sample command's choices and the notebooks
read it.

Community samplers carry their community names (``dpmpp_3m_sde`` is k-diffusion's and ComfyUI's DPM++ 3M
SDE, ``sa_solver`` is diffusers' SASolverScheduler); the project's variants stand beside them under their own
(``dpmpp_3m_sde_exact``, ``sa_solver_paper``).

Schedules are VE, Karras ρ = 7 from :data:`SIGMA_MAX` to :data:`SIGMA_MIN`, then 0. Every sampler makes one
model call per step except Heun (2 per step, 1 on the last step to σ = 0), so for a budget of ``nfe`` calls:
steps = nfe, or (nfe + 1) // 2 for Heun (2·steps − 1 ≤ nfe calls).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..coefficients.schedules import get_sigmas_karras
from . import baselines as B
from . import flow as F
from .ersde import sample_er_sde

__all__ = [
    "Sampler",
    "SAMPLERS",
    "FLOW_SAMPLERS",
    "MODEL_KINDS",
    "available_samplers",
    "solver_functions",
    "steps_for_nfe",
    "schedule_for",
    "run_sampler",
    "SIGMA_MIN",
    "SIGMA_MAX",
    "RHO",
]

SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0


@dataclass(frozen=True)
class Sampler:
    """One registry entry: ``fn(model, x, sigmas, extra_args, callback, disable, **kwargs)`` (k-diffusion's
    positional convention; ``generator``, ``noise_sampler`` and ``check_finite`` as keywords)."""

    fn: Callable
    kwargs: dict = field(default_factory=dict)
    stochastic: bool = True
    calls_per_step: int = 1
    label: str = ""

    @property
    def solver(self) -> str:
        """The solver function's name without ``sample_`` (``er_sde``, ``heun``, …)."""
        return self.fn.__name__.removeprefix("sample_")

    def steps(self, nfe: int) -> int:
        """Steps that spend at most ``nfe`` model calls (schedules end in 0)."""
        return (nfe + 1) // 2 if self.calls_per_step == 2 else nfe

    def nfe(self, nfe_budget: int) -> int:
        """Model calls actually made for a budget (schedules end in 0)."""
        s = self.steps(nfe_budget)
        return 2 * s - 1 if self.calls_per_step == 2 else s


SAMPLERS: dict[str, Sampler] = {
    "euler": Sampler(B.sample_euler, stochastic=False, label="Euler / DDIM (ODE)"),
    "heun": Sampler(B.sample_heun, stochastic=False, calls_per_step=2, label="Heun, EDM (ODE)"),
    "dpmpp_2m": Sampler(B.sample_dpmpp_2m, stochastic=False, label="DPM-Solver++(2M) (ODE)"),
    "er_sde_3_ode": Sampler(sample_er_sde, dict(order=3, nsf="ode"), stochastic=False, label="ER-SDE-3, φ=σ (ODE)"),
    "euler_ancestral": Sampler(B.sample_euler_ancestral, label="Euler ancestral / DDPM"),
    "euler_maruyama": Sampler(B.sample_euler_maruyama, label="Euler–Maruyama, reverse SDE"),
    "dpmpp_2m_sde": Sampler(B.sample_dpmpp_2m_sde, label="SDE-DPM-Solver++(2M)"),
    "dpmpp_3m_sde": Sampler(B.sample_dpmpp_3m_sde, label="SDE-DPM-Solver++(3M), k-diffusion"),
    "dpmpp_3m_sde_exact": Sampler(B.sample_dpmpp_3m_sde_exact, label="SDE-DPM-Solver++(3M), exact quadratic"),
    "sa_solver": Sampler(B.sample_sa_solver, label="SA-Solver (2,2), diffusers' SASolverScheduler"),
    "sa_solver_paper": Sampler(B.sample_sa_solver_paper, label="SA-Solver (3,4), paper variant"),
    "er_sde_1": Sampler(sample_er_sde, dict(order=1), label="ER-SDE-1 (er_sde_5)"),
    "er_sde_2": Sampler(sample_er_sde, dict(order=2), label="ER-SDE-2 (er_sde_5)"),
    "er_sde_3": Sampler(sample_er_sde, dict(order=3), label="ER-SDE-3 (er_sde_5)"),
}


# Flow-model baselines (``model(x, t) -> v`` on a flow schedule from σ = 1, ``ersde_theory.solvers.flow``), by name
# without ``sample_``; ER-SDE on flow models is ``sample_er_sde_vp(prediction="flow")``. Same NFE → steps rule.
FLOW_SAMPLERS: dict[str, Sampler] = {
    "flow_euler": Sampler(F.sample_flow_euler, stochastic=False, label="flow Euler"),
    "flow_heun": Sampler(F.sample_flow_heun, stochastic=False, calls_per_step=2, label="flow Heun"),
    "flow_dpmpp_2m": Sampler(F.sample_flow_dpmpp_2m, stochastic=False, label="DPM-Solver++(2M)"),
    "flow_dpmpp_2m_sde": Sampler(F.sample_flow_dpmpp_2m_sde, label="SDE-DPM-Solver++(2M)"),
}


def solver_functions() -> dict[str, Sampler]:
    """One entry per distinct solver function of :data:`SAMPLERS`, by :attr:`Sampler.solver` name, with
    no default keywords (``er_sde`` then takes its order and NSF from the caller)."""
    out: dict[str, Sampler] = {}
    for s in SAMPLERS.values():
        stochastic = any(t.stochastic for t in SAMPLERS.values() if t.fn is s.fn)
        out.setdefault(s.solver, Sampler(s.fn, {}, stochastic, s.calls_per_step, s.fn.__name__))
    return out


MODEL_KINDS = ("ve", "vp", "flow")  # VE denoisers, VP (ε/v/x0) models, flow-matching velocity models


def available_samplers(kind: str = "ve") -> list[str]:
    """The sampler names that sample a model of ``kind`` (:data:`MODEL_KINDS`): ``er_sde`` (ER-SDE-Solver-1/2/3,
    order and NSF given separately) and, for VE models, every other solver of :data:`SAMPLERS` by function name
    without ``sample_``; for flow models, the flow baselines :data:`FLOW_SAMPLERS`; VP models: ``er_sde`` only."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
    if kind == "flow":
        return ["er_sde", *FLOW_SAMPLERS]
    if kind == "vp":
        return ["er_sde"]
    return ["er_sde"] + sorted(n for n in solver_functions() if n != "er_sde")


def _lookup(sampler: Sampler | str) -> Sampler:
    if isinstance(sampler, Sampler):
        return sampler
    if sampler in SAMPLERS:
        return SAMPLERS[sampler]
    if sampler in FLOW_SAMPLERS:
        return FLOW_SAMPLERS[sampler]
    funcs = solver_functions()
    if sampler in funcs:
        return funcs[sampler]
    raise ValueError(f"unknown sampler {sampler!r}; registered: {', '.join(SAMPLERS)}, {', '.join(funcs)}")


def steps_for_nfe(sampler: Sampler | str, nfe: int) -> int:
    """The NFE → steps rule (module docstring) for a registry name, a solver name or an entry."""
    return _lookup(sampler).steps(nfe)


def schedule_for(sampler: Sampler | str, nfe: int) -> torch.Tensor:
    """The Karras schedule (ρ = 7, σ 80 → 0.002, then 0) that spends the NFE budget ``nfe``."""
    return get_sigmas_karras(_lookup(sampler).steps(nfe), SIGMA_MIN, SIGMA_MAX, RHO)


def run_sampler(
    sampler: Sampler | str, model, x: torch.Tensor, nfe: int, *, generator=None, noise_sampler=None, **overrides
) -> torch.Tensor:
    """Run ``sampler`` on the Karras schedule of its NFE budget (``overrides`` update its keywords)."""
    s = _lookup(sampler)
    kw = {**s.kwargs, **overrides}
    return s.fn(model, x, schedule_for(s, nfe), generator=generator, noise_sampler=noise_sampler, disable=True, **kw)
