"""Every kind of image model behind one name (the sample command's ``--model``), loaded as an
:class:`ImageModel`:

* ``digits``: the shipped 8×8 digits UNet with EDM preconditioning (a VE denoiser, :mod:`.unet`);
* ``digits-flow``: the same UNet trained as a rectified-flow velocity model (kind "flow");
* ``CHECKPOINT.pt``: a ``train-digits`` checkpoint of either objective (:mod:`.checkpoints`);
* ``NET.pkl``: an EDM network pickle (a VE denoiser; the EDM code must be importable, :mod:`.edm`);
* ``fmnist``, ``fmnist-flow``: the shipped Fashion-MNIST models, diffusers ``UNet2DModel`` pipeline folders (VP,
  DDPM's linear β and ε-prediction; and a rectified-flow velocity model with a FlowMatch scheduler config);
* ``diffusers:FOLDER``: a local diffusers ``UNet2DModel`` or pipeline folder (VP ε/v/x0 models, or a flow model when
  its scheduler config is a FlowMatch one; loaded by ``ersde_theory.diffusers_integration.unet``).

:func:`weights_hash` identifies the weights a model was loaded from (the sample command's manifest records it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch

from ..devices import resolve_device
from ..solvers.registry import available_samplers
from .checkpoints import FLOW_UNET_PATH, FMNIST_FLOW_PATH, FMNIST_PATH, UNET_PATH

# --model name -> (how it is stored, its weights): a train-digits objective, or a diffusers pipeline folder
SHIPPED = {
    "digits": ("edm", UNET_PATH),
    "digits-flow": ("flow", FLOW_UNET_PATH),
    "fmnist": ("diffusers", FMNIST_PATH),
    "fmnist-flow": ("diffusers", FMNIST_FLOW_PATH),
}
DIFFUSERS_PREFIX = "diffusers:"
MODEL_HELP = "digits, digits-flow, fmnist, fmnist-flow, CHECKPOINT.pt, EDM.pkl or diffusers:FOLDER"


@dataclass
class ImageModel:
    """A loaded model and what sampling it needs. ``kind`` "ve": ``model(x, sigma[, class_labels])`` is a
    denoiser on [sigma_min, sigma_max]; "vp": ``model`` is a diffusers UNet2DModel with its scheduler config and the
    ``prediction`` its output is read as (eps, v or x0); "flow": ``model(x, t) -> v``, a velocity model on
    σ ∈ [0, 1]. ``device``: where its weights are."""

    name: str
    kind: str
    model: Callable
    shape: tuple
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    label_dim: int = 0
    scheduler_config: dict = field(default_factory=dict)
    prediction: str | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def __post_init__(self):
        if self.kind == "vp" and self.prediction is None:  # what the config's prediction_type says
            from ..diffusers_integration.unet import prediction_from_config

            self.prediction = prediction_from_config(self.scheduler_config)

    @property
    def label(self) -> str:
        """What identifies the model in a manifest: a shipped name, ``diffusers``, or the file's suffix."""
        return model_label(self.name)

    @cached_property
    def weights_sha256(self) -> str:
        """sha256 of the files the model was loaded from (:func:`weights_hash`; computed on first use)."""
        return weights_hash(self.name)

    @property
    def samplers(self) -> list[str]:
        """The sampler names that sample a model of this kind (the sampler registry's ``available_samplers``)."""
        return available_samplers(self.kind)


def load_image_model(spec: str, device="cpu", edm_repo=None, *, local_rank: int | None = None) -> ImageModel:
    """Resolve ``--model`` (module docstring) and put it on ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``;
    ``local_rank``: one GPU per torchrun process, :func:`ersde_theory.devices.resolve_device`)."""
    folder = SHIPPED[spec][1] if SHIPPED.get(spec, ("",))[0] == "diffusers" else None
    if spec.startswith(DIFFUSERS_PREFIX):
        folder = spec[len(DIFFUSERS_PREFIX) :]
    if folder is None and (spec in SHIPPED or spec.endswith(".pt")):
        from .checkpoints import load_digits_unet

        objective = SHIPPED[spec][0] if spec in SHIPPED else None
        m = load_digits_unet(None if spec in SHIPPED else spec, objective=objective)
        kind = "flow" if m.objective == "flow" else "ve"
        im = ImageModel(spec, kind, m, m.sample_shape, m.cfg.sigma_min, m.cfg.sigma_max)
    elif spec.endswith(".pkl"):
        from .edm import load_edm_network

        m = load_edm_network(spec, edm_repo=edm_repo)
        if m.sample_shape is None:
            raise ValueError(f"{spec}: the network has no img_resolution/img_channels attributes")
        im = ImageModel(spec, "ve", m, m.sample_shape, m.sigma_min, m.sigma_max, m.label_dim)
    elif folder is not None:
        from ..diffusers_integration.unet import DiffusersFlowModel, is_flow_config, load_diffusers_unet

        unet, cfg = load_diffusers_unet(folder)
        size = unet.config.sample_size
        hw = (size, size) if isinstance(size, int) else tuple(size)
        shape = (unet.config.in_channels, *hw)
        if is_flow_config(cfg):
            flow = DiffusersFlowModel(unet, int(cfg.get("num_train_timesteps", 1000)))
            im = ImageModel(spec, "flow", flow, shape, 0.0, 1.0, scheduler_config=cfg)
        else:
            im = ImageModel(spec, "vp", unet, shape, scheduler_config=cfg)
    else:
        raise ValueError(
            f"unknown model {spec!r}: use 'digits', 'digits-flow', a train-digits .pt checkpoint, an EDM .pkl, "
            "or diffusers:FOLDER"
        )
    im.device = resolve_device(device, local_rank=local_rank)
    im.model = im.model.to(im.device)
    return im


def model_files(spec: str) -> list[Path]:
    """The files a model is loaded from (for a diffusers folder: every file under it)."""
    path = SHIPPED[spec][1] if spec in SHIPPED else Path(spec.removeprefix(DIFFUSERS_PREFIX))
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path]


def weights_hash(spec: str) -> str:
    """sha256 of the model's files (for a diffusers folder: every file, with its relative name)."""
    h = hashlib.sha256()
    path = SHIPPED[spec][1] if spec in SHIPPED else Path(spec.removeprefix(DIFFUSERS_PREFIX))
    root = path if path.is_dir() else None
    for p in model_files(spec):
        if root is not None:
            h.update(str(p.relative_to(root)).encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def model_label(spec: str) -> str:
    """What the manifest records as the model: a shipped name, ``diffusers``, or the file's suffix."""
    if spec in SHIPPED:
        return spec
    if ":" in spec:
        return spec.split(":")[0]
    return Path(spec).suffix
