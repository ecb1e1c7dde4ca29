"""The checkpoint formats of the shipped networks and their loading: the shipped weights in
``ersde_theory/data`` (:data:`DATA_DIR`), each with a JSON sidecar recording the command, seed, losses and timings
that made it (:func:`write_sidecar`); ``train-digits`` checkpoints (the EDM denoiser or the flow velocity model
of :mod:`.unet`, keyed by their training objective).
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import torch

from .unet import EDMDenoiser, FlowVelocity

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
UNET_PATH = DATA_DIR / "digits_unet.pt"
FLOW_UNET_PATH = DATA_DIR / "digits_flow_unet.pt"
OBJECTIVES = {"edm": EDMDenoiser, "flow": FlowVelocity}  # training objective -> model class (unet.py)
FMNIST_PATH = DATA_DIR / "fmnist"  # the Fashion-MNIST VP model: a DDPMPipeline folder (unet/, scheduler/)
FMNIST_FLOW_PATH = DATA_DIR / "fmnist_flow"  # the Fashion-MNIST flow model: unet/ and a FlowMatch scheduler/
# the diffusers UNet2DModel of both Fashion-MNIST models: 28×28, three levels (28, 14, 7), attention at 7×7
FMNIST_UNET = dict(
    sample_size=28,
    in_channels=1,
    out_channels=1,
    block_out_channels=(32, 64, 128),
    layers_per_block=1,
    down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
    up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    norm_num_groups=8,
)
# their schedules: DDPM's linear β 1e-4…0.02 over 1000 steps (ε-prediction); the flow model's FlowMatch config
FMNIST_SCHEDULERS = {
    "vp": dict(
        num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02, prediction_type="epsilon"
    ),
    "flow": dict(num_train_timesteps=1000, shift=1.0),
}


def write_sidecar(path: Path, info: dict) -> Path:
    side = Path(path).with_suffix(".json")
    info = {
        "command": " ".join(["python -m ersde_theory"] + sys.argv[1:])
        if info.get("command") is None
        else info["command"],
        **{k: v for k, v in info.items() if k != "command"},
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    side.write_text(json.dumps(info, indent=1) + "\n")
    return side


def save_digits_unet(model: EDMDenoiser | FlowVelocity, path, summary: dict, command: str | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.checkpoint(), path)
    return write_sidecar(path, {"command": command, **summary})


def load_digits_unet(path=None, device="cpu", objective: str | None = None) -> EDMDenoiser | FlowVelocity:
    """A ``train-digits`` checkpoint as the model of its objective: the EDM denoiser ``model(x, sigma)`` or the
    flow velocity model ``model(x, t) -> v``. ``path`` None: the shipped one of ``objective`` (default "edm":
    digits_unet.pt; "flow": digits_flow_unet.pt). A checkpoint without an objective is an EDM one; a given
    ``objective`` must match the checkpoint's."""
    if objective is not None and objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} is not one of {sorted(OBJECTIVES)}")
    path = Path(path) if path is not None else (FLOW_UNET_PATH if objective == "flow" else UNET_PATH)
    if not path.is_file():
        flag = f"--objective {objective} " if objective == "flow" else ""
        raise FileNotFoundError(
            f"no digits UNet checkpoint at {path}; "
            f"train one with `python -m ersde_theory train-digits {flag}--out {path}`"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        found = ckpt.get("objective") or "edm"
        if found not in OBJECTIVES:
            raise ValueError(f"unknown objective {found!r}")
    except Exception as e:  # a truncated or foreign file: pickle, zip, key or shape errors
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path} is not a readable train-digits checkpoint: {msg[:200]}") from None
    if objective is not None and found != objective:
        raise ValueError(f"{path} is a {found!r} checkpoint, not {objective!r}")
    try:
        model = OBJECTIVES[found].from_checkpoint(ckpt)
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path} is not a readable train-digits checkpoint: {msg[:200]}") from None
    return model.to(device)
