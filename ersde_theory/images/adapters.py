"""Adapters from real checkpoints to the project's solvers, unchanged.

* diffusers ``UNet2DModel`` VP models (ε-, v- or x0-prediction, e.g. google/ddpm-cifar10-32: linear β from
  1e-4 to 0.02, 1000 steps) through :func:`ersde_theory.sample_er_sde_vp`: the UNet is called as
  ``unet(x, t).sample`` at the schedule's (continuous) timesteps t, x_t = α_t x_0 + σ_t ε, ᾱ from the
  scheduler config. diffusers is an optional extra (``pip install 'ersde-theory[diffusers]'``).
* EDM network pickles (Karras et al. 2022; data prediction through their own preconditioning, so
  ``net(x, sigma, class_labels)`` is already a VE denoiser) through :func:`ersde_theory.sample_er_sde`.
  Unpickling needs the EDM code (``dnnlib``, ``torch_utils``) importable; only load pickles you trust.
"""

from __future__ import annotations

import importlib
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import torch

from ..coefficients.schedules import get_vp_schedule, vp_alphas_cumprod
from ..solvers.ersde import sample_er_sde_vp

PREDICTION_TYPES = {"epsilon": "eps", "v_prediction": "v", "sample": "x0"}
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


def require_diffusers():
    try:
        return importlib.import_module("diffusers")
    except ImportError as e:
        raise ImportError('this needs diffusers, an optional extra: pip install "ersde-theory[diffusers]"') from e


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

    ``x`` is the initial state x_T ~ N(0, I) (σ_T ≈ 1); ``steps`` model calls on ``get_vp_schedule(steps,
    spacing=…, alphas_cumprod=ᾱ, final_zero=True)`` (the last step returns the data prediction).
    ``scheduler_config`` (a diffusers scheduler or its config; default DDPM's linear β 1e-4…0.02, T = 1000)
    gives ᾱ and the prediction type. ``solver_kw`` go to ``sample_er_sde_vp`` (order, nsf, generator, …).
    """
    cfg = getattr(scheduler_config, "config", scheduler_config) or {}
    ac = alphas_cumprod_from_config(cfg)
    ptype = (
        cfg.get("prediction_type", "epsilon") if isinstance(cfg, dict) else getattr(cfg, "prediction_type", "epsilon")
    )
    if prediction is None:
        if ptype not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type {ptype!r} is not supported; use one of {tuple(PREDICTION_TYPES)}")
        prediction = PREDICTION_TYPES[ptype]
    a, s, t = get_vp_schedule(steps, spacing=spacing, alphas_cumprod=ac, final_zero=True)
    return sample_er_sde_vp(DiffusersVPModel(unet), x, a, s, prediction=prediction, timesteps=t, **solver_kw)


def load_diffusers_unet(path, device="cpu"):
    """(unet, scheduler_config dict) from a local folder: a pipeline folder (``unet/`` and ``scheduler/``
    subfolders, as ``DDPMPipeline.save_pretrained`` writes) or a bare ``UNet2DModel`` folder (DDPM's
    default schedule). Offline only (``local_files_only=True``): a hub id works only if already cached."""
    diffusers = require_diffusers()
    p = Path(path)
    sub = "unet" if (p / "unet").is_dir() else None
    try:
        unet = diffusers.UNet2DModel.from_pretrained(str(path), subfolder=sub, local_files_only=True)
    except (OSError, ValueError) as e:
        raise FileNotFoundError(f"could not load a diffusers UNet2DModel from {path!s} offline: {e}") from e
    sched_cfg = p / "scheduler" / "scheduler_config.json"
    cfg = json.loads(sched_cfg.read_text()) if sched_cfg.is_file() else {}
    return unet.to(device).eval().requires_grad_(False), cfg


class EDMNetworkDenoiser(torch.nn.Module):
    """``model(x, sigma, class_labels=None)``: an EDM network (already preconditioned) as a VE denoiser."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.label_dim = int(getattr(net, "label_dim", 0) or 0)
        self.sigma_min = float(getattr(net, "sigma_min", 0.002))
        self.sigma_max = float(getattr(net, "sigma_max", 80.0))
        res, ch = getattr(net, "img_resolution", None), getattr(net, "img_channels", None)
        self.sample_shape = (int(ch), int(res), int(res)) if res and ch else None

    def forward(self, x, sigma, class_labels=None):
        if class_labels is None:
            return self.net(x, sigma).to(x.dtype)
        return self.net(x, sigma, class_labels).to(x.dtype)


def load_edm_network(path, *, edm_repo=None, key: str = "ema", device="cpu") -> EDMNetworkDenoiser:
    """Load an EDM network pickle (``network-snapshot-*.pkl``, entry ``key``) as a VE denoiser.

    The pickle references the EDM repository's modules (``dnnlib``, ``torch_utils``): give ``edm_repo`` (a
    clone of github.com/NVlabs/edm) or put it on PYTHONPATH; otherwise this raises an ImportError naming the
    missing module. URLs are not fetched: download the pickle first.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"EDM network pickle {p} does not exist (URLs are not downloaded; fetch the file first)"
        )
    if edm_repo is not None:
        if not Path(edm_repo).is_dir():
            raise FileNotFoundError(f"edm_repo {edm_repo} is not a folder")
        if str(edm_repo) not in sys.path:
            sys.path.insert(0, str(edm_repo))
    try:
        with open(p, "rb") as f:
            data = pickle.load(f)
    except ModuleNotFoundError as e:
        raise ImportError(
            f"unpickling {p} needs the module {e.name!r} from the EDM code: clone "
            f"https://github.com/NVlabs/edm and pass its folder as edm_repo= (CLI: --edm-repo) "
            f"or add it to PYTHONPATH"
        ) from e
    net = data[key] if isinstance(data, dict) else data
    if not isinstance(net, torch.nn.Module):
        raise ValueError(f"{p}: entry {key!r} is a {type(net).__name__}, not a torch network")
    return EDMNetworkDenoiser(net.to(device).eval().requires_grad_(False))
