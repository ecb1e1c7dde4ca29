"""diffusers ``UNet2DModel`` models through :func:`ersde_theory.sample_er_sde_vp`, unchanged:

* VP models (ε-, v- or x0-prediction, e.g. google/ddpm-cifar10-32: linear β from 1e-4 to 0.02, 1000 steps): the
  UNet is called as ``unet(x, t).sample`` at the schedule's (continuous) timesteps t, x_t = α_t x_0 + σ_t ε, ᾱ from
  the scheduler config (:class:`DiffusersVPModel`);
* flow-matching models (velocity v = ε − x_0 of x_σ = (1 − σ) x_0 + σ ε, timestep 1000 σ as diffusers'
  FlowMatch schedulers give it; a ``FlowMatchEulerDiscreteScheduler`` config beside the UNet):
  :class:`DiffusersFlowModel`;
* building, saving (a pipeline folder: ``unet/`` and ``scheduler/``) and loading such models from a local folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..coefficients.schedules import get_vp_schedule, vp_alphas_cumprod
from ..solvers.ersde import sample_er_sde_vp
from ._require import require_diffusers

PREDICTION_TYPES = {"epsilon": "eps", "v_prediction": "v", "sample": "x0"}
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


def alphas_cumprod_from_config(cfg) -> np.ndarray:
    """Float64 ᾱ_t, t = 0…T−1, from a diffusers scheduler config (mapping or object with attributes):
    ``trained_betas`` if set, else ``beta_schedule`` ∈ {linear, scaled_linear, squaredcos_cap_v2}."""
    get = cfg.get if isinstance(cfg, dict) else (lambda k, d=None: getattr(cfg, k, d))
    T = int(get("num_train_timesteps", 1000))
    trained = get("trained_betas", None)
    if trained is not None:
        betas = np.asarray(trained, dtype=np.float64)
        if betas.ndim != 1 or betas.size < 2 or not np.all((betas > 0) & (betas < 1)):
            raise ValueError("trained_betas must be a 1-D array of values in (0, 1)")
        return np.cumprod(1.0 - betas)
    kind = get("beta_schedule", "linear")
    b0, b1 = float(get("beta_start", 1e-4)), float(get("beta_end", 0.02))
    if kind == "linear":
        return vp_alphas_cumprod("linear", T, beta_start=b0, beta_end=b1)
    if kind == "squaredcos_cap_v2":
        return vp_alphas_cumprod("cosine", T)
    if kind == "scaled_linear":  # Stable Diffusion's: β linear in sqrt(β)
        return np.cumprod(1.0 - np.linspace(b0**0.5, b1**0.5, T, dtype=np.float64) ** 2)
    raise ValueError(f"beta_schedule {kind!r} is not supported; use one of {BETA_SCHEDULES} or trained_betas")


class DiffusersVPModel(torch.nn.Module):
    """``model(x, t) -> unet(x, t).sample`` in the UNet's dtype, returned in x's dtype (the sampler may run
    in float64)."""

    def __init__(self, unet, class_labels=None):
        super().__init__()
        self.unet = unet
        self.class_labels = class_labels

    def forward(self, x, t):
        dt = self.unet.dtype
        kw = {"class_labels": self.class_labels} if self.class_labels is not None else {}
        return self.unet(x.to(dt), t.to(torch.float32), **kw).sample.to(x.dtype)


class DiffusersFlowModel(torch.nn.Module):
    """``model(x, sigma) -> unet(x, T sigma).sample``: a flow-matching UNet2DModel as the velocity model
    ``v(x, σ)`` of ``sample_er_sde_vp(prediction="flow")`` (T = ``num_train_timesteps``, 1000 for diffusers'
    FlowMatch schedulers), in the UNet's dtype, returned in x's dtype."""

    def __init__(self, unet, num_train_timesteps: int = 1000):
        super().__init__()
        self.unet, self.T = unet, num_train_timesteps

    def forward(self, x, sigma):
        t = torch.as_tensor(sigma, device=x.device).reshape(-1).expand(x.shape[0]) * self.T
        return self.unet(x.to(self.unet.dtype), t.to(torch.float32)).sample.to(x.dtype)


def is_flow_config(cfg) -> bool:
    """Whether a scheduler config belongs to a flow-matching model (a diffusers FlowMatch scheduler's)."""
    return "FlowMatch" in str((cfg or {}).get("_class_name", ""))


def new_unet2d(**config):
    """A randomly initialised diffusers ``UNet2DModel(**config)`` (float32, train mode)."""
    return require_diffusers().UNet2DModel(**config)


SHARD_SIZE = "8MB"  # the most tensor data in one weights file save_unet2d writes (diffusers' max_shard_size)


def save_unet2d(unet, folder, *, flow: bool, scheduler_config: dict) -> list[Path]:
    """Save ``unet`` as a pipeline folder: ``unet/`` (``save_pretrained``: safetensors shards of at most
    :data:`SHARD_SIZE` and their index, which ``from_pretrained`` reads as one checkpoint) and ``scheduler/`` with a
    ``DDPMScheduler(**scheduler_config)`` (VP; the folder is then a ``DDPMPipeline``) or a
    ``FlowMatchEulerDiscreteScheduler(**scheduler_config)`` (``flow``). Returns the files written."""
    diffusers = require_diffusers()
    folder = Path(folder)
    save = dict(safe_serialization=True, max_shard_size=SHARD_SIZE)
    if flow:
        unet.save_pretrained(folder / "unet", **save)
        diffusers.FlowMatchEulerDiscreteScheduler(**scheduler_config).save_pretrained(folder / "scheduler")
    else:
        sched = diffusers.DDPMScheduler(**scheduler_config)
        diffusers.DDPMPipeline(unet=unet, scheduler=sched).save_pretrained(folder, **save)
    return sorted(p for p in folder.rglob("*") if p.is_file())


def prediction_from_config(cfg) -> str:
    """The ``sample_er_sde_vp`` prediction of a diffusers scheduler config's ``prediction_type`` (eq. (21))."""
    cfg = getattr(cfg, "config", cfg) or {}
    ptype = (
        cfg.get("prediction_type", "epsilon") if isinstance(cfg, dict) else getattr(cfg, "prediction_type", "epsilon")
    )
    if ptype not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type {ptype!r} is not supported; use one of {tuple(PREDICTION_TYPES)}")
    return PREDICTION_TYPES[ptype]


def vp_schedule_from_config(cfg, steps: int, *, spacing: str = "time"):
    """(alphas, sigmas, timesteps): ``get_vp_schedule(steps, spacing=…, alphas_cumprod=ᾱ, final_zero=True)`` on
    the ᾱ of a diffusers scheduler config (or scheduler; default DDPM's linear β 1e-4…0.02, T = 1000): ``steps``
    model calls, the last step returning the data prediction."""
    ac = alphas_cumprod_from_config(getattr(cfg, "config", cfg) or {})
    return get_vp_schedule(steps, spacing=spacing, alphas_cumprod=ac, final_zero=True)


@torch.no_grad()
def sample_diffusers_unet(
    unet,
    x: torch.Tensor,
    steps: int,
    *,
    scheduler_config=None,
    spacing: str = "time",
    prediction: str | None = None,
    **solver_kw,
) -> torch.Tensor:
    """ER-SDE sampling of a diffusers ``UNet2DModel`` VP model with :func:`sample_er_sde_vp`.

    ``x`` is the initial state x_T ~ N(0, I) (σ_T ≈ 1); ``steps`` model calls on :func:`vp_schedule_from_config`
    (the last step returns the data prediction). ``scheduler_config`` (a diffusers scheduler or its config; default
    DDPM's linear β 1e-4…0.02, T = 1000) gives ᾱ and the prediction type. ``solver_kw`` go to
    ``sample_er_sde_vp`` (order, nsf, generator, …).
    """
    prediction = prediction or prediction_from_config(scheduler_config)
    a, s, t = vp_schedule_from_config(scheduler_config, steps, spacing=spacing)
    return sample_er_sde_vp(DiffusersVPModel(unet), x, a, s, prediction=prediction, timesteps=t, **solver_kw)


def load_diffusers_unet(path, device="cpu"):
    """(unet, scheduler_config dict) from a local folder: a pipeline folder (``unet/`` and ``scheduler/``
    subfolders, as ``DDPMPipeline.save_pretrained`` writes) or a bare ``UNet2DModel`` folder (DDPM's
    default schedule). Offline only (``local_files_only=True``): a hub id works only if already cached."""
    p = Path(path)
    if not p.is_dir():
        raise FileNotFoundError(f"{path} is not a folder: give a local diffusers model or pipeline folder (no hub ids)")
    if not (p / "config.json").is_file() and not (p / "unet" / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no UNet2DModel: neither config.json nor unet/config.json is there")
    diffusers = require_diffusers()
    sub = "unet" if (p / "unet").is_dir() else None
    bars = diffusers.utils.logging
    shown = bars.is_progress_bar_enabled()
    bars.disable_progress_bar()  # no "Loading checkpoint shards" bar for a sharded checkpoint (save_unet2d's)
    try:
        unet = diffusers.UNet2DModel.from_pretrained(
            str(path), subfolder=sub, local_files_only=True, low_cpu_mem_usage=False
        )
    except (OSError, ValueError) as e:
        raise FileNotFoundError(f"could not load a diffusers UNet2DModel from {path!s} offline: {e}") from e
    finally:
        if shown:
            bars.enable_progress_bar()
    sched_cfg = p / "scheduler" / "scheduler_config.json"
    cfg = json.loads(sched_cfg.read_text()) if sched_cfg.is_file() else {}
    return unet.to(device).eval().requires_grad_(False), cfg
