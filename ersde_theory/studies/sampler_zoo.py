"""The samplers the benchmarks compare, by name, each with its NFE → steps rule (VE, Karras ρ = 7 schedules).

All samplers make one model call per step except Heun (2 per step, 1 on the last step to σ = 0), so for a
budget of ``nfe`` calls: steps = nfe, or (nfe + 1) // 2 for Heun (2·steps − 1 ≤ nfe calls).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..coefficients.schedules import get_sigmas_karras
from ..solvers.baselines import (
    sample_dpmpp_2m,
    sample_dpmpp_2m_sde,
    sample_dpmpp_3m_sde,
    sample_euler,
    sample_euler_ancestral,
    sample_euler_maruyama,
    sample_heun,
    sample_sa_solver,
)
from ..solvers.ersde import sample_er_sde

__all__ = ["Sampler", "SAMPLERS", "schedule_for", "run_sampler", "SIGMA_MIN", "SIGMA_MAX"]

SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0


@dataclass(frozen=True)
class Sampler:
    fn: Callable
    kwargs: dict = field(default_factory=dict)
    stochastic: bool = True
    calls_per_step: int = 1
    label: str = ""

    def steps(self, nfe: int) -> int:
        return (nfe + 1) // 2 if self.calls_per_step == 2 else nfe

    def nfe(self, nfe_budget: int) -> int:
        """Model calls actually made for a budget (schedules end in 0)."""
        s = self.steps(nfe_budget)
        return 2 * s - 1 if self.calls_per_step == 2 else s


SAMPLERS: dict[str, Sampler] = {
    "euler": Sampler(sample_euler, stochastic=False, label="Euler / DDIM (ODE)"),
    "heun": Sampler(sample_heun, stochastic=False, calls_per_step=2, label="Heun, EDM (ODE)"),
    "dpmpp_2m": Sampler(sample_dpmpp_2m, stochastic=False, label="DPM-Solver++(2M) (ODE)"),
    "er_sde_3_ode": Sampler(sample_er_sde, dict(order=3, nsf="ode"), stochastic=False, label="ER-SDE-3, φ=σ (ODE)"),
    "euler_ancestral": Sampler(sample_euler_ancestral, label="Euler ancestral / DDPM"),
    "euler_maruyama": Sampler(sample_euler_maruyama, label="Euler–Maruyama, reverse SDE"),
    "dpmpp_2m_sde": Sampler(sample_dpmpp_2m_sde, label="SDE-DPM-Solver++(2M)"),
    "dpmpp_3m_sde": Sampler(sample_dpmpp_3m_sde, label="SDE-DPM-Solver++(3M)"),
    "sa_solver": Sampler(sample_sa_solver, label="SA-Solver (3,4), paper τ"),
    "er_sde_1": Sampler(sample_er_sde, dict(order=1), label="ER-SDE-1 (er_sde_5)"),
    "er_sde_2": Sampler(sample_er_sde, dict(order=2), label="ER-SDE-2 (er_sde_5)"),
    "er_sde_3": Sampler(sample_er_sde, dict(order=3), label="ER-SDE-3 (er_sde_5)"),
}


def schedule_for(sampler: Sampler, nfe: int) -> torch.Tensor:
    return get_sigmas_karras(sampler.steps(nfe), SIGMA_MIN, SIGMA_MAX, RHO)


def run_sampler(
    sampler: Sampler | str, model, x: torch.Tensor, nfe: int, *, generator=None, noise_sampler=None, **overrides
) -> torch.Tensor:
    """Run ``sampler`` on the Karras schedule of its NFE budget (``overrides`` update its keywords)."""
    s = SAMPLERS[sampler] if isinstance(sampler, str) else sampler
    kw = {**s.kwargs, **overrides}
    return s.fn(model, x, schedule_for(s, nfe), generator=generator, noise_sampler=noise_sampler, disable=True, **kw)
