"""``ERSDEScheduler``: ER-SDE-Solver-1/2/3 as a diffusers scheduler for VP pipelines (DDPMPipeline and the like).

The update is the one of :func:`ersde_theory.sample_er_sde_vp`, driven one step at a time through the same
step functions (``fused_weights``, ``er_sde_step``, ``third_order_start`` of ``ersde_theory.solvers.ersde``,
``docs/theory.md`` eqs. (26)–(28)), with coefficients from
:func:`~ersde_theory.coefficients.ersde.ersde_coefficients` on λ = σ/α: with x̄ = x/α (eq. (20)),

    x_{i+1} = α_{i+1} [ r x̄_i + (1 − r) x_θ + C_1 x_θ' + C_2 x_θ'' + sqrt(λ_{i+1}² − λ_i² r²) z ],

x_θ from the model output by the prediction type (ε: (x − σ ε̂)/α; v: α x − σ v̂; sample: as is). So a
pipeline loop gives the samples of ``sample_er_sde_vp`` for the same schedule and noise.

Timesteps are continuous (``get_vp_schedule``: uniform in t or in log-SNR, log ᾱ interpolated between the
integer timesteps); with ``final_zero`` (default) the last step goes to σ = 0 and returns the data
prediction. ``order`` is diffusers' attribute (model calls per step: 1, it is a multistep method);
``solver_order`` ∈ {1, 2, 3} is the ER-SDE order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import KarrasDiffusionSchedulers, SchedulerMixin
from diffusers.utils import BaseOutput

from ..coefficients.ersde import QUADRATURES
from ..coefficients.schedules import get_vp_schedule, vp_at_timesteps
from ..solvers._common import check_model_output, make_noise
from ..solvers.ersde import check_order, er_sde_step, fused_weights, third_order_start, to_x0, vp_coefficients
from .adapters import PREDICTION_TYPES, alphas_cumprod_from_config
from .sampling import parse_nsf


@dataclass
class ERSDESchedulerOutput(BaseOutput):
    """``prev_sample``: x at the next timestep; ``pred_original_sample``: the data prediction x_θ."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor | None = None


class ERSDEScheduler(SchedulerMixin, ConfigMixin):
    """ER-SDE-Solver (Cui et al., arXiv 2309.06169) for diffusers VP models (module docstring).

    Config: the diffusers β-schedule keys (``num_train_timesteps``, ``beta_start``, ``beta_end``,
    ``beta_schedule`` ∈ {linear, scaled_linear, squaredcos_cap_v2}, ``trained_betas``), ``prediction_type``
    ∈ {epsilon, v_prediction, sample}, ``solver_order`` 1–3, ``nsf`` (ode, sde, er_sde_1…5 or a sympy
    expression in sigma), ``quadrature`` (exact, official, comfyui), ``derivatives`` (published, corrected),
    ``spacing`` (time, logsnr), ``final_zero``.
    """

    _compatibles = [e.name for e in KarrasDiffusionSchedulers]
    order = 1

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        trained_betas=None,
        prediction_type: str = "epsilon",
        solver_order: int = 3,
        nsf: str = "er_sde_5",
        quadrature: str = "exact",
        derivatives: str = "published",
        spacing: str = "time",
        final_zero: bool = True,
    ):
        check_order(solver_order, derivatives)
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {tuple(PREDICTION_TYPES)}, got {prediction_type!r}")
        if quadrature not in QUADRATURES:
            raise ValueError(f"quadrature must be one of {QUADRATURES}, got {quadrature!r}")
        if spacing not in ("time", "logsnr"):
            raise ValueError(f"spacing must be 'time' or 'logsnr', got {spacing!r}")
        if trained_betas is not None and len(trained_betas) != num_train_timesteps:
            self.register_to_config(num_train_timesteps=len(trained_betas))
        self._nsf = parse_nsf(nsf)
        self.alphas_cumprod_f64 = alphas_cumprod_from_config(self.config)
        self.alphas_cumprod = torch.from_numpy(self.alphas_cumprod_f64)
        self.init_noise_sigma = 1.0
        self.num_inference_steps = None
        self.timesteps = torch.from_numpy(np.arange(self.config.num_train_timesteps, dtype=np.float64)[::-1].copy())
        self._coeffs = None
        self._step_index = None

    def __len__(self) -> int:
        return self.config.num_train_timesteps

    @property
    def step_index(self) -> int | None:
        return self._step_index

    def scale_model_input(self, sample: torch.Tensor, timestep=None) -> torch.Tensor:
        """VP models take x_t as is."""
        return sample

    def set_timesteps(self, num_inference_steps: int | None = None, device=None, timesteps=None) -> None:
        """Build the schedule: ``num_inference_steps`` (model calls), or the custom model-call ``timesteps``
        (strictly decreasing values in [0, T−1], continuous allowed); both given must agree in length."""
        T = self.config.num_train_timesteps
        if timesteps is not None:
            ts = np.asarray(timesteps.detach().cpu() if hasattr(timesteps, "detach") else timesteps, dtype=np.float64)
            if ts.ndim != 1 or ts.size < 1:
                raise ValueError("timesteps must be a non-empty 1-D sequence")
            if num_inference_steps is not None and num_inference_steps != ts.size:
                raise ValueError(
                    f"num_inference_steps={num_inference_steps} does not match the {ts.size} custom timesteps given"
                )
            if np.any(np.diff(ts) >= 0) or ts[0] > T - 1 or ts[-1] < 0:
                raise ValueError(f"custom timesteps must be strictly decreasing within [0, {T - 1}]")
            if self.config.final_zero:  # the last step goes to σ = 0 (timestep −1, no model call)
                a, s = vp_at_timesteps(ts, self.alphas_cumprod_f64)
                a, s, ts = np.append(a, 1.0), np.append(s, 0.0), np.append(ts, -1.0)
            else:  # the last step goes to t = 0
                if ts[-1] <= 0:
                    raise ValueError(
                        "with final_zero=False the custom timesteps must end above 0 (the last step goes to t = 0)"
                    )
                ts = np.append(ts, 0.0)
                a, s = vp_at_timesteps(ts, self.alphas_cumprod_f64)
        else:
            if num_inference_steps is None:
                raise ValueError("give num_inference_steps or timesteps")
            n = int(num_inference_steps)
            if n != num_inference_steps or not 1 <= n <= T:
                raise ValueError(
                    f"num_inference_steps must be an integer in [1, {T}] (num_train_timesteps), "
                    f"got {num_inference_steps!r}"
                )
            a, s, ts = (
                v.numpy()
                for v in get_vp_schedule(
                    n,
                    spacing=self.config.spacing,
                    alphas_cumprod=self.alphas_cumprod_f64,
                    final_zero=self.config.final_zero,
                )
            )
        self._alphas, self._sigmas, coeffs = vp_coefficients(a, s, self._nsf, self.config.quadrature)
        self._sig_t = torch.from_numpy(self._sigmas)
        self._coeffs = coeffs
        self._lam, self._r, self._c1, self._c2, self._std = (
            v.tolist() for v in (coeffs.sigmas, coeffs.r, coeffs.c1, coeffs.c2, coeffs.noise_std)
        )  # host float64: no device reads while stepping
        self._history = []  # [D_{i−1}, D_{i−2}] of the steps taken since set_timesteps
        self.num_inference_steps = len(self._lam) - 1
        self._t_host = ts[: self.num_inference_steps]
        self.timesteps = torch.from_numpy(self._t_host.copy()).to(device)
        self._step_index = None

    def _init_step_index(self, timestep) -> None:
        t = float(timestep)  # one host read, on the first step only
        hits = np.flatnonzero(np.abs(self._t_host - t) <= 1e-4 * max(1.0, abs(t)))
        if hits.size == 0:
            raise ValueError(f"timestep {t} is not in the scheduler's timesteps; step with scheduler.timesteps")
        self._step_index = int(hits[0])

    def step(
        self, model_output: torch.Tensor, timestep, sample: torch.Tensor, generator=None, return_dict: bool = True
    ):
        """One ER-SDE step from ``timestep`` to the next one (module docstring). ``generator``: one
        ``torch.Generator`` or a list with one per sample (as ``sample_er_sde_vp``)."""
        if self._coeffs is None:
            raise ValueError("call set_timesteps(num_inference_steps) before step()")
        check_model_output(model_output, sample)
        if self._step_index is None:
            self._init_step_index(timestep)
        i = self._step_index
        if i >= self.num_inference_steps:
            raise ValueError(f"all {self.num_inference_steps} steps have been taken; call set_timesteps again")
        a_i, s_i = float(self._alphas[i]), float(self._sigmas[i])
        x0 = to_x0(model_output.to(sample.dtype), sample, a_i, s_i, PREDICTION_TYPES[self.config.prediction_type])
        lam, hist, cfg = self._lam, self._history, self.config
        xbar = sample * (1.0 / a_i)
        if cfg.derivatives == "corrected" and cfg.solver_order >= 3 and i == 1 and len(hist) == 1 and lam[2] > 0:
            xbar = third_order_start(xbar, x0, hist[0], self._c1[0], lam)  # eq. (26)
        if lam[i + 1] == 0:
            xbar = x0  # the last step to σ = 0 returns the data prediction
        else:
            k = min(cfg.solver_order, len(hist) + 1)  # lowered while the history fills
            a = fused_weights(lam, self._r, self._c1, self._c2, i, k, cfg.derivatives)  # eq. (28)
            z = make_noise(sample, generator, None, self._sig_t)(i) if self._std[i] > 0 else None
            xbar = er_sde_step(xbar, self._r[i], x0, hist, a, self._std[i], z)  # eq. (27)
        self._history = [x0, *hist[:1]]
        prev = xbar * float(self._alphas[i + 1])
        self._step_index += 1
        if not return_dict:
            return (prev, x0)
        return ERSDESchedulerOutput(prev_sample=prev, pred_original_sample=x0)

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps) -> torch.Tensor:
        """x_t = α_t x_0 + σ_t ε at (integer or continuous) ``timesteps``, one per sample or a scalar."""
        t = np.asarray(timesteps.detach().cpu() if hasattr(timesteps, "detach") else timesteps, dtype=np.float64)
        a, s = vp_at_timesteps(np.atleast_1d(t), self.alphas_cumprod_f64)
        shape = (-1,) + (1,) * (original_samples.ndim - 1)
        a_t = torch.from_numpy(a).to(original_samples.device, original_samples.dtype).reshape(shape)
        s_t = torch.from_numpy(s).to(original_samples.device, original_samples.dtype).reshape(shape)
        return a_t * original_samples + s_t * noise
