"""ER-SDE-Solver-1/2/3 as diffusers schedulers: ``ERSDEScheduler`` for VP pipelines (StableDiffusion, SDXL,
img2img, DDPMPipeline and the like) and ``FlowMatchERSDEScheduler`` for flow-matching pipelines (SD3, Flux), a
drop-in for ``FlowMatchEulerDiscreteScheduler``.

Both step with the one step plan of :func:`ersde_theory.sample_er_sde_vp` (:mod:`ersde_theory.solvers.plan`,
computed once in float64 by ``set_timesteps``), ``docs/theory.md`` eqs. (26)–(28), (36)–(40): with λ = σ/α
(eq. (19)),

    x_{i+1} = g_i x_i + w_i0 x_θ,i + w_i1 x_θ,i−1 + w_i2 x_θ,i−2 + noise_std_i z,

x_θ from the model output by the prediction type (ε: (x − σ ε̂)/α; v: α x − σ v̂; sample: as is, eq. (21); the flow
velocity: x − σ v̂, eq. (35)). So a pipeline loop gives the samples of ``sample_er_sde_vp`` for the same schedule
and noise. What the two share lives in one base, :class:`_ERSDESchedulerBase`:

* **a mid-schedule start** (img2img: ``set_begin_index``, or a first ``step`` at a later timestep) is
  ``sample_er_sde_vp`` on the rest of the schedule: a fresh plan for that tail, built on the first step (the order
  is lowered while the history fills);
* **one timestep look-up**, :meth:`~_ERSDESchedulerBase.index_for_timestep`: a timestep matches an entry of
  ``timesteps`` within float32 rounding (relative 1e-6), and where it occurs twice the second is taken, as
  diffusers does;
* **one generator rule**: the noise of a step comes from ``step(generator=…)``, else from the attribute
  ``generator`` (None: torch's global RNG); pipelines pass no generator to ``step``, so set
  ``scheduler.generator`` (one ``torch.Generator`` or one per sample) to make a pipeline call reproducible.

``order`` is diffusers' attribute (model calls per step: 1, a multistep method); ``solver_order`` ∈ {1, 2, 3} is
the ER-SDE order. float16/bfloat16 samples are stepped in float32 (the coefficients are float64 on the host) and
returned in their own dtype.

``ERSDEScheduler``'s timesteps (``set_timesteps``), as diffusers' multistep schedulers (DPMSolverMultistepScheduler)
build them:

* default: integer timesteps by ``timestep_spacing`` ∈ {linspace, leading, trailing} and ``steps_offset``
  (:func:`~ersde_theory.coefficients.schedules.discrete_timesteps`; n = 2 gives [999, 500]), or Karras σ's
  (``use_karras_sigmas``); at most ``num_train_timesteps`` steps. A timestep repeated by rounding is dropped,
  so ``num_inference_steps`` may come out smaller than asked;
* ``continuous_timesteps`` ∈ {"time", "logsnr"}: :func:`~ersde_theory.coefficients.schedules.get_vp_schedule`'s
  continuous grids (uniform in t from T−1 to 0, or in log-SNR; log ᾱ interpolated between integers).

``final_sigmas_type="zero"`` (default): the last step goes to σ = 0 and returns the data prediction (no model
call at σ = 0); ``"sigma_min"``: it ends at t = 0 (a last model call already at t = 0, as with Karras σ's, is
dropped with its zero-length step). Where DPMSolverMultistepScheduler's grid is degenerate this one differs:
repeated timesteps are dropped, "trailing" never gets diffusers' extra timestep −1, "leading" past T − 1 and
a timestep not in ``timesteps`` are errors, and Karras timesteps are rounded for every β schedule.

Needs the ``diffusers`` extra: without it, importing this module raises an ImportError that says how to
install it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from ..coefficients.ersde import QUADRATURES
from ..coefficients.schedules import (
    DISCRETE_SPACINGS,
    VP_SPACINGS,
    flow_shift,
    get_flow_schedule,
    get_vp_discrete_schedule,
    get_vp_schedule,
    vp_at_timesteps,
)
from ..solvers._common import check_generator, check_model_output, make_noise
from ..solvers.ersde import to_x0
from ..solvers.plan import StepPlan, check_expansion, check_order, vp_step_coefficients
from ..theory.nsf import parse_nsf
from ._require import require_diffusers
from .unet import PREDICTION_TYPES, alphas_cumprod_from_config

require_diffusers()  # an ImportError that says `pip install "ersde-theory[diffusers]"`
from diffusers.configuration_utils import ConfigMixin, register_to_config  # noqa: E402
from diffusers.schedulers.scheduling_utils import KarrasDiffusionSchedulers, SchedulerMixin  # noqa: E402
from diffusers.utils import BaseOutput, logging  # noqa: E402

logger = logging.get_logger("diffusers.schedulers.ersde")  # under diffusers: its verbosity settings apply

FINAL_SIGMAS_TYPES = ("zero", "sigma_min")
CONTINUOUS_TIMESTEPS = (None, *VP_SPACINGS)
# FlowMatchEulerDiscreteScheduler's config keys that FlowMatchERSDEScheduler refuses when set
_FLOW_UNSUPPORTED = (
    "invert_sigmas",
    "shift_terminal",
    "use_karras_sigmas",
    "use_exponential_sigmas",
    "use_beta_sigmas",
)


@dataclass
class ERSDESchedulerOutput(BaseOutput):
    """``prev_sample``: x at the next timestep; ``pred_original_sample``: the data prediction x_θ."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor | None = None


class _ERSDESchedulerBase:
    """What both schedulers share (module docstring): diffusers' step and begin indices, the model input taken as
    is, the step plan of the schedule (``_coeffs``) and of the run from the first step taken (``_run``), the one
    rule for a mid-schedule start, the one timestep look-up, the one generator rule, and ``step`` itself."""

    order = 1  # diffusers' attribute: model calls per step (a multistep method)
    _prediction = "eps"  # how the model output reads (solvers.ersde.to_x0); set per scheduler

    def __len__(self) -> int:
        return self.config.num_train_timesteps

    @property
    def step_index(self) -> int | None:
        """Index of the next step in ``timesteps`` (None before the first ``step`` after ``set_timesteps``)."""
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        """Index of the first step, set by a pipeline with :meth:`set_begin_index` (img2img starts late)."""
        return self._begin_index

    def scale_model_input(self, sample: torch.Tensor, timestep=None) -> torch.Tensor:
        """VP and flow models take x_t as is."""
        return sample

    # config keys of other diffusers schedulers that switch on what this one does not do, with their "off" values:
    # from_config warns, through diffusers' logger, when one of them is on (diffusers itself drops them silently)
    _unsupported: dict = {}

    @classmethod
    def from_config(cls, config=None, return_unused_kwargs=False, **kwargs):
        given = {**dict(getattr(config, "config", config) or {}), **kwargs}
        on = {k: given[k] for k, off in cls._unsupported.items() if k in given and given[k] not in off}
        if on:
            listed = ", ".join(f"{k}={v!r}" for k, v in on.items())
            logger.warning(f"{cls.__name__} does not support {listed}: ignored (it samples without them)")
        return super().from_config(config, return_unused_kwargs=return_unused_kwargs, **kwargs)

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Start at step ``begin_index`` (called by pipelines after ``set_timesteps``; img2img skips the first
        steps and noises the image to that step's σ): the solver then runs on the schedule from there."""
        n = self.num_inference_steps
        if isinstance(begin_index, bool) or not isinstance(begin_index, numbers.Integral) or begin_index < 0:
            raise ValueError(f"begin_index must be an integer >= 0, got {begin_index!r}")
        if n is not None and begin_index >= n:
            raise ValueError(f"begin_index must be below the {n} steps of the schedule, got {begin_index}")
        self._begin_index = int(begin_index)

    def _plan(self, alphas, sigmas) -> StepPlan:
        cfg = self.config
        kw = dict(order=cfg.solver_order, derivatives=cfg.derivatives)
        if "expansion" in cfg:  # FlowMatchERSDEScheduler: λ (eq. (20)) or the flow time s (eqs. (53)–(56))
            kw["expansion"] = cfg["expansion"]
        return vp_step_coefficients(alphas, sigmas, self._nsf, cfg.quadrature, **kw)  # eq. (36), float64

    def _set_plan(self, plan: StepPlan, timesteps: np.ndarray) -> None:
        """After ``set_timesteps``: the schedule's plan and its model-call timesteps (host float64); no step taken,
        no stored outputs, no begin index."""
        self._coeffs, self._run, self._begin = plan, None, 0
        self.num_inference_steps = plan.sigmas.size - 1
        self._t_host = np.asarray(timesteps, dtype=np.float64)[: self.num_inference_steps]
        self._history = []  # [D_{i−1}, D_{i−2}] of the steps taken since set_timesteps
        self._step_index = None
        self._begin_index = None

    def index_for_timestep(self, timestep, schedule_timesteps=None) -> int:
        """Index of ``timestep`` in ``timesteps`` (or ``schedule_timesteps``): equal within float32 rounding
        (relative 1e-6, so float32 copies match); where it occurs twice, the second (as diffusers does, so that a
        start in the middle of a schedule does not skip a step). ValueError if it is not there."""
        if schedule_timesteps is None:
            sched = self._t_host
        else:
            st = schedule_timesteps
            sched = np.asarray(st.detach().cpu() if hasattr(st, "detach") else st, dtype=np.float64)
        t = float(torch.as_tensor(timestep).reshape(-1)[0])  # one host read
        hits = np.flatnonzero(np.abs(sched - t) <= 1e-6 * max(1.0, abs(t)))
        if hits.size == 0:
            raise ValueError(f"timestep {t} is not in the scheduler's timesteps; step with scheduler.timesteps")
        return int(hits[1] if hits.size > 1 else hits[0])

    def _check_timestep(self, timestep) -> None:
        """``timestep`` must be the schedule's at the step index (every step). Read on the host when that costs
        nothing (a number, a CPU tensor); a timestep on a GPU is checked on the first step only, so that the loop
        never waits for the device."""
        on_device = isinstance(timestep, torch.Tensor) and timestep.device.type != "cpu"
        if on_device and self._step_index != self._begin:
            return
        t, want = float(torch.as_tensor(timestep).reshape(-1)[0]), float(self._t_host[self._step_index])
        if abs(t - want) > 1e-6 * max(1.0, abs(want)):
            raise ValueError(
                f"step {self._step_index} is at timestep {want:g}, got {t:g}: step with scheduler.timesteps in order"
            )

    def _start_run(self, begin: int) -> None:
        """The one rule for where a run starts: at step ``begin`` the solver starts afresh on the rest of the
        schedule (its plan built once, here; the whole schedule's when ``begin`` is 0)."""
        c = self._coeffs
        self._run = c if begin == 0 else self._plan(c.alphas[begin:], c.sigmas[begin:])
        self._begin = self._step_index = begin

    def _index_now(self, timesteps) -> list[int | None]:
        """The schedule index of noising at ``timesteps`` (one per sample, or one), diffusers' rule: with no begin
        index (training, or a pipeline that sets none) each timestep is looked up in ``timesteps`` (None where it is
        not there), also after ``step``; with a begin index, the current step (inpainting, after a step) or else the
        begin index (img2img, before the first step)."""
        if self._begin_index is not None:
            return [self._step_index if self._step_index is not None else self._begin_index]
        out = []
        for t in torch.as_tensor(timesteps).reshape(-1).tolist():
            try:
                out.append(self.index_for_timestep(t))
            except ValueError:
                out.append(None)
        return out

    def step(
        self, model_output: torch.Tensor, timestep, sample: torch.Tensor, generator=None, return_dict: bool = True
    ):
        """One ER-SDE step from ``timestep`` to the next one: returns ``prev_sample`` and ``pred_original_sample``
        x_θ (both in the sample's dtype). ``generator``: one ``torch.Generator`` or a list with one per sample
        (default: the attribute ``generator``)."""
        if self._coeffs is None:
            raise ValueError("call set_timesteps(num_inference_steps) before step()")
        check_model_output(model_output, sample)
        check_generator(generator if generator is not None else self.generator, sample.shape[0])
        if self._step_index is None:  # the first step: at the begin index, else where ``timestep`` is
            self._start_run(self._begin_index if self._begin_index is not None else self.index_for_timestep(timestep))
        if self._step_index >= self.num_inference_steps:
            raise ValueError(f"all {self.num_inference_steps} steps have been taken; call set_timesteps again")
        self._check_timestep(timestep)
        c, j, hist = self._run, self._step_index - self._begin, self._history
        dtype = torch.promote_types(sample.dtype, torch.float32)  # half-precision samples are stepped in float32
        x = sample.to(dtype)
        x0 = to_x0(model_output.to(dtype), x, float(c.alphas[j]), float(c.sigmas[j]), self._prediction)  # D_j
        z = None
        if c.draws_noise(j):  # the noise-draw rule of sample_er_sde_vp
            z = make_noise(x, generator if generator is not None else self.generator, None, None)(j)
        if j == c.start_step:
            x = c.start(x, x0, hist[0])  # eq. (26)
        prev = c.step(j, x, x0, hist, z)  # eq. (36)
        self._history = [x0, *hist[:1]]
        self._step_index += 1
        prev, x0 = prev.to(sample.dtype), x0.to(sample.dtype)
        if not return_dict:
            return (prev, x0)
        return ERSDESchedulerOutput(prev_sample=prev, pred_original_sample=x0)


class ERSDEScheduler(_ERSDESchedulerBase, SchedulerMixin, ConfigMixin):
    """ER-SDE-Solver (Cui et al., arXiv 2309.06169) for diffusers VP models (module docstring).

    Config: the diffusers β-schedule keys (``num_train_timesteps``, ``beta_start``, ``beta_end``,
    ``beta_schedule`` ∈ {linear, scaled_linear, squaredcos_cap_v2}, ``trained_betas``), ``prediction_type``
    ∈ {epsilon, v_prediction, sample}, the timestep keys of diffusers' multistep schedulers
    (``timestep_spacing`` ∈ {linspace, leading, trailing}, ``steps_offset``, ``use_karras_sigmas``,
    ``final_sigmas_type`` ∈ {zero, sigma_min}), and the ER-SDE ones: ``solver_order`` 1–3, ``nsf`` (ode, sde,
    er_sde_1…5 or a sympy expression in sigma), ``quadrature`` (exact, official, comfyui), ``derivatives``
    (published, corrected), ``continuous_timesteps`` (None: integer timesteps; "time" or "logsnr": the
    continuous grids of ``get_vp_schedule``). Noise: the one generator rule of the module docstring.
    """

    _compatibles = [e.name for e in KarrasDiffusionSchedulers]
    _unsupported = {
        "thresholding": (False, None),
        "rescale_betas_zero_snr": (False, None),
        "use_exponential_sigmas": (False, None),
        "use_beta_sigmas": (False, None),
        "use_lu_lambdas": (False, None),
        "variance_type": (None, "fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log"),
    }

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
        timestep_spacing: str = "linspace",
        steps_offset: int = 0,
        use_karras_sigmas: bool = False,
        final_sigmas_type: str = "zero",
        continuous_timesteps: str | None = None,
    ):
        check_order(solver_order, derivatives)
        if isinstance(num_train_timesteps, bool) or not isinstance(num_train_timesteps, numbers.Integral):
            raise ValueError(f"num_train_timesteps must be an integer >= 2, got {num_train_timesteps!r}")
        if num_train_timesteps < 2 and trained_betas is None:
            raise ValueError(f"num_train_timesteps must be an integer >= 2, got {num_train_timesteps!r}")
        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {tuple(PREDICTION_TYPES)}, got {prediction_type!r}")
        if quadrature not in QUADRATURES:
            raise ValueError(f"quadrature must be one of {QUADRATURES}, got {quadrature!r}")
        if timestep_spacing not in DISCRETE_SPACINGS:
            raise ValueError(f"timestep_spacing must be one of {DISCRETE_SPACINGS}, got {timestep_spacing!r}")
        if final_sigmas_type not in FINAL_SIGMAS_TYPES:
            raise ValueError(f"final_sigmas_type must be one of {FINAL_SIGMAS_TYPES}, got {final_sigmas_type!r}")
        if continuous_timesteps not in CONTINUOUS_TIMESTEPS:
            raise ValueError(
                f"continuous_timesteps must be one of {CONTINUOUS_TIMESTEPS}, got {continuous_timesteps!r}"
            )
        if isinstance(steps_offset, bool) or not isinstance(steps_offset, (int, np.integer)) or steps_offset < 0:
            raise ValueError(f"steps_offset must be an integer >= 0, got {steps_offset!r}")
        if continuous_timesteps is not None and use_karras_sigmas:
            raise ValueError(f"use_karras_sigmas=True conflicts with continuous_timesteps={continuous_timesteps!r}")
        if trained_betas is not None and len(trained_betas) != num_train_timesteps:
            self.register_to_config(num_train_timesteps=len(trained_betas))
        self._nsf = parse_nsf(nsf)
        self._prediction = PREDICTION_TYPES[prediction_type]
        self.generator = None
        self.alphas_cumprod_f64 = alphas_cumprod_from_config(self.config)
        ab = self.alphas_cumprod_f64
        self.alphas_cumprod = torch.from_numpy(ab)
        self.alphas = torch.from_numpy(ab / np.append(1.0, ab[:-1]))  # α_t = 1 − β_t = ᾱ_t/ᾱ_{t−1}
        self.betas = 1.0 - self.alphas
        self.init_noise_sigma = 1.0
        self.num_inference_steps = None
        self.timesteps = torch.arange(self.config.num_train_timesteps - 1, -1, -1, dtype=torch.int64)
        self.sigmas = torch.from_numpy(np.sqrt((1.0 - ab) / ab)).float()  # λ_t, t = 0…T−1 (as DPM-Solver)
        self._coeffs = None
        self._step_index = None
        self._begin_index = None

    def set_timesteps(self, num_inference_steps: int | None = None, device=None, timesteps=None) -> None:
        """Build the schedule (module docstring): ``num_inference_steps`` model calls, or the custom model-call
        ``timesteps`` (strictly decreasing values in [0, T−1], continuous allowed); both given must agree in
        length."""
        T = self.config.num_train_timesteps
        ab, final_zero = self.alphas_cumprod_f64, self.config.final_sigmas_type == "zero"
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
            if not final_zero and ts[-1] <= 0:
                raise ValueError(
                    "with final_sigmas_type='sigma_min' the custom timesteps must end above 0 (the last step goes "
                    "to t = 0)"
                )
            ts = np.append(ts, -1.0 if final_zero else 0.0)
            a, s = vp_at_timesteps(np.maximum(ts, 0.0), ab)
            if final_zero:
                a[-1], s[-1] = 1.0, 0.0
        elif num_inference_steps is None:
            raise ValueError("give num_inference_steps or timesteps")
        elif self.config.continuous_timesteps is not None:
            n = num_inference_steps
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"num_inference_steps must be an integer >= 1, got {n!r}")
            kw = dict(spacing=self.config.continuous_timesteps, alphas_cumprod=ab, final_zero=final_zero)
            a, s, ts = (v.numpy() for v in get_vp_schedule(int(n), **kw))
        else:
            kw = dict(
                spacing=self.config.timestep_spacing,
                steps_offset=self.config.steps_offset,
                karras=self.config.use_karras_sigmas,
                final_zero=final_zero,
            )
            a, s, ts = (v.numpy() for v in get_vp_discrete_schedule(num_inference_steps, ab, **kw))
        try:
            plan = self._plan(a, s)
        except ValueError as e:
            if "strictly decreasing" not in str(e):
                raise
            cfg = self.config
            raise ValueError(
                f"the noise levels of this {len(s) - 1}-step schedule are not distinct: alphas_cumprod falls below "
                f"float64 resolution for the β schedule {cfg.beta_schedule} ({cfg.beta_start}, {cfg.beta_end}); "
                "use smaller betas or fewer steps"
            ) from None
        self._set_plan(plan, ts)
        self.sigmas = torch.from_numpy(self._coeffs.lambdas).float()  # diffusers' σ: λ = σ/α, as DPM-Solver's
        integer = bool(np.all(self._t_host == np.rint(self._t_host)))
        t_dev = torch.from_numpy(self._t_host.astype(np.int64) if integer else self._t_host.copy())
        self.timesteps = t_dev.to(device)

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps) -> torch.Tensor:
        """x_t = α_t x_0 + σ_t ε at ``timesteps`` (one per sample or a scalar). After ``set_timesteps``,
        (α, σ) are the schedule's at the step index (begin index, as for img2img, or the current step, as
        for inpainting) or at a schedule timestep; otherwise ᾱ at t (log ᾱ interpolated between integers)."""
        t = np.atleast_1d(
            np.asarray(timesteps.detach().cpu() if hasattr(timesteps, "detach") else timesteps, dtype=np.float64)
        )
        T = self.config.num_train_timesteps
        if not np.all((t >= 0) & (t <= T - 1)):
            raise ValueError(f"add_noise timesteps must lie in [0, {T - 1}], got {t[(t < 0) | (t > T - 1)][0]!r}")
        a, s = vp_at_timesteps(t, self.alphas_cumprod_f64)
        if self._coeffs is not None:
            idx = self._index_now(t)
            for k, j in enumerate(idx * t.size if len(idx) == 1 else idx):
                if j is not None:
                    a[k], s[k] = self._coeffs.alphas[j], self._coeffs.sigmas[j]
        shape = (-1,) + (1,) * (original_samples.ndim - 1)
        a_t = torch.from_numpy(a).to(original_samples.device, original_samples.dtype).reshape(shape)
        s_t = torch.from_numpy(s).to(original_samples.device, original_samples.dtype).reshape(shape)
        return a_t * original_samples + s_t * noise


class FlowMatchERSDEScheduler(_ERSDESchedulerBase, SchedulerMixin, ConfigMixin):
    """ER-SDE-Solver-1/2/3 for flow-matching pipelines (Stable Diffusion 3, Flux, …): a drop-in for diffusers'
    ``FlowMatchEulerDiscreteScheduler``.

    The model predicts the velocity v = ε − x_0 of x_t = (1 − σ) x_0 + σ ε; x_θ = x − σ v. The update is the one of
    :func:`ersde_theory.sample_er_sde_vp` with ``prediction="flow"``, driven one step at a time: the per-schedule
    coefficients of :func:`~ersde_theory.solvers.ersde.vp_step_coefficients` (the VP form of eqs. (26)–(28),
    stepped in x itself, with the exact limit of the first step from σ = 1, α = 0), so a pipeline loop gives the
    samples of ``sample_er_sde_vp`` for the same schedule and noise.

    The schedule is ``FlowMatchEulerDiscreteScheduler``'s (:func:`ersde_theory.get_flow_schedule`): ``shift``
    (SD3's static shift) or, with ``use_dynamic_shifting``, the ``mu`` that the pipeline passes (Flux's
    resolution-dependent shift); ``set_timesteps(sigmas=…)`` shifts the given sigmas, as diffusers does. Without
    dynamic shifting a ``mu`` is ignored, as diffusers does (FluxPipeline always passes one; FLUX.1-schnell's config
    has dynamic shifting off). ``timesteps`` = 1000 σ (float32, the model's input); ``sigmas`` holds the float64
    schedule with its final 0.

    Config: ``FlowMatchEulerDiscreteScheduler``'s keys, so ``from_config(pipe.scheduler.config)`` works
    (``invert_sigmas``, ``shift_terminal``, ``use_karras_sigmas``, ``use_exponential_sigmas``,
    ``use_beta_sigmas`` and a linear ``time_shift_type`` are not supported and refused; ``stochastic_sampling``
    is ignored: the NSF sets the noise), plus ``solver_order`` 1–3, ``nsf`` (ode, sde, er_sde_1…5 or a sympy
    expression in sigma; admissible up to λ = σ/α = ∞ for the start at σ = 1), ``quadrature`` (exact, official,
    comfyui) and ``derivatives`` (published, corrected), as in :class:`ERSDEScheduler`, and ``expansion``:
    ``"lambda"`` (default, the paper's: the denoiser expanded in λ = σ/α) or ``"flow"`` (expanded in the flow time
    s = σ, eqs. (53)–(56): corrected ER-SDE-3 keeps order 3 from σ = 1), as in ``sample_er_sde_vp(expansion=…)``.

    Noise: the one generator rule of the module docstring (``step(generator=…)``, else ``scheduler.generator``).
    """

    _compatibles = ["FlowMatchEulerDiscreteScheduler"]
    _unsupported = {"stochastic_sampling": (False, None)}

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        shift: float = 1.0,
        use_dynamic_shifting: bool = False,
        base_shift: float | None = 0.5,
        max_shift: float | None = 1.15,
        base_image_seq_len: int = 256,
        max_image_seq_len: int = 4096,
        invert_sigmas: bool = False,
        shift_terminal: float | None = None,
        use_karras_sigmas: bool = False,
        use_exponential_sigmas: bool = False,
        use_beta_sigmas: bool = False,
        time_shift_type: str = "exponential",
        stochastic_sampling: bool = False,
        solver_order: int = 3,
        nsf: str = "er_sde_5",
        quadrature: str = "exact",
        derivatives: str = "published",
        expansion: str = "lambda",
    ):
        check_order(solver_order, derivatives)
        check_expansion(expansion)
        if quadrature not in QUADRATURES:
            raise ValueError(f"quadrature must be one of {QUADRATURES}, got {quadrature!r}")
        if isinstance(shift, bool) or not isinstance(shift, numbers.Real) or not 0 < shift < math.inf:
            raise ValueError(f"shift must be a finite number > 0, got {shift!r}")
        if isinstance(num_train_timesteps, bool) or not isinstance(num_train_timesteps, numbers.Integral):
            raise ValueError(f"num_train_timesteps must be a positive integer, got {num_train_timesteps!r}")
        if num_train_timesteps < 1:
            raise ValueError(f"num_train_timesteps must be a positive integer, got {num_train_timesteps!r}")
        for key in _FLOW_UNSUPPORTED:  # the config holds the values given (register_to_config runs first)
            if self.config[key]:
                raise ValueError(
                    f"{key}={self.config[key]!r} is not supported by FlowMatchERSDEScheduler (leave it off)"
                )
        if time_shift_type != "exponential":
            raise ValueError(f"time_shift_type must be 'exponential' (Flux's shift), got {time_shift_type!r}")
        self._nsf = parse_nsf(nsf)
        self._prediction = "flow"
        self.init_noise_sigma = 1.0
        self.generator = None
        self.num_inference_steps = None
        self._coeffs = None
        self._step_index = None
        self._begin_index = None
        # before set_timesteps: the training grid σ = k/T, shifted (diffusers' attributes, for completeness)
        n_train = np.arange(num_train_timesteps, 0, -1, dtype=np.float64) / num_train_timesteps
        self.sigmas = torch.from_numpy(n_train if use_dynamic_shifting else flow_shift(n_train, shift=shift))
        self.timesteps = (self.sigmas * num_train_timesteps).float()

    @property
    def shift(self) -> float:
        return self.config.shift

    def set_timesteps(self, num_inference_steps: int | None = None, device=None, sigmas=None, mu: float | None = None):
        """Build the schedule of ``num_inference_steps`` model calls ``FlowMatchEulerDiscreteScheduler`` builds
        for this config, or shift the given ``sigmas`` (strictly decreasing in (0, 1]; Flux passes them, and
        ``num_inference_steps``, when given too, must equal their count). ``mu``: the dynamic shift, required with
        ``use_dynamic_shifting`` (ignored without it, as in diffusers). The coefficients are computed here, once."""
        cfg = self.config
        if cfg.use_dynamic_shifting:
            if mu is None:
                raise ValueError("mu must be given to set_timesteps when use_dynamic_shifting is True")
            if isinstance(mu, bool) or not isinstance(mu, numbers.Real) or not math.isfinite(mu):
                raise ValueError(f"mu must be a finite number, got {mu!r}")
        kw = dict(shift=1.0, mu=float(mu)) if cfg.use_dynamic_shifting else dict(shift=float(cfg.shift))
        if sigmas is not None:
            base = np.asarray(sigmas.detach().cpu() if hasattr(sigmas, "detach") else sigmas, dtype=np.float64)
            if base.ndim != 1 or base.size < 1:
                raise ValueError(f"sigmas must be a non-empty 1-D sequence, got shape {base.shape}")
            if num_inference_steps is not None and num_inference_steps != base.size:
                raise ValueError(
                    f"num_inference_steps={num_inference_steps} does not match the {base.size} custom sigmas given"
                )
            if np.any(np.diff(base) >= 0) or not (base[0] <= 1 and base[-1] > 0):
                raise ValueError(f"custom sigmas must be strictly decreasing within (0, 1], got {base.tolist()}")
            s = np.append(flow_shift(base, **kw), 0.0)  # diffusers shifts the given sigmas
            a = 1.0 - s
        else:
            if num_inference_steps is None:
                raise ValueError("give num_inference_steps or sigmas")
            n = num_inference_steps
            if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= cfg.num_train_timesteps:
                raise ValueError(f"num_inference_steps must be an integer in [1, {cfg.num_train_timesteps}], got {n!r}")
            a, s, _ = (v.numpy() for v in get_flow_schedule(int(n), **kw, num_train_timesteps=cfg.num_train_timesteps))
        plan = self._plan(a, s)  # may refuse the NSF: before anything is set
        # the model's input T σ in float32, computed as diffusers does (float32 σ times T), so that a pipeline's
        # model sees the timesteps it sees with FlowMatchEulerDiscreteScheduler
        t32 = torch.from_numpy(s[:-1]).float() * cfg.num_train_timesteps
        self._set_plan(plan, t32.numpy())
        self.sigmas = torch.from_numpy(s.copy())
        self.timesteps = t32.to(device)

    def scale_noise(self, sample: torch.Tensor, timestep, noise: torch.Tensor) -> torch.Tensor:
        """The flow forward process x_t = (1 − σ) x_0 + σ ε (img2img), at the σ of the current step, else of the
        begin index, else of each entry of ``timestep`` (one per sample, or one) looked up in ``timesteps``."""
        if self._coeffs is None:
            raise ValueError("call set_timesteps before scale_noise()")
        idx = self._index_now(timestep)
        if None in idx:  # a timestep not in the schedule
            self.index_for_timestep(torch.as_tensor(timestep).reshape(-1)[idx.index(None)])  # raises, naming it
        s = self._coeffs.sigmas
        shape = (-1,) + (1,) * (sample.ndim - 1)
        sig = torch.tensor(s[idx], dtype=sample.dtype, device=sample.device).reshape(shape)
        return (1 - sig) * sample + sig * noise.to(sample.dtype)
