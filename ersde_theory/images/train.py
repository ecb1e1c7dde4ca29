"""Training of the shipped digit networks: the EDM-preconditioned UNet denoiser, the same UNet as a
rectified-flow velocity model (``objective="flow"``, unet.py docstring), and the small digit classifier
whose penultimate layer is the feature space of the project's (non-Inception) Fréchet distance.

All are deterministic given the seed on a given machine; the command, seed, loss and timings are written
to a JSON sidecar next to the weights.
"""

from __future__ import annotations

import copy
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

from ..devices import resolve_device  # the shared resolver; importable from here too
from .digits import load_digits_tensor
from .unet import EDMDenoiser, FlowVelocity, UNetConfig

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
UNET_PATH = DATA_DIR / "digits_unet.pt"
FLOW_UNET_PATH = DATA_DIR / "digits_flow_unet.pt"
OBJECTIVES = {"edm": EDMDenoiser, "flow": FlowVelocity}  # training objective -> model class (unet.py)
FEATURES_PATH = DATA_DIR / "digits_features.pt"


def _lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to lr/10."""
    if step < warmup:
        return lr * (step + 1) / warmup
    q = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * q)))


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


@torch.no_grad()
def eval_edm_loss(model: EDMDenoiser | FlowVelocity, x0: torch.Tensor, reps: int = 4, seed: int = 12345) -> float:
    """The model's training loss (EDM or rectified-flow) on ``x0`` with fixed noise (``reps`` draws per image),
    for comparable numbers."""
    g = torch.Generator(device=x0.device).manual_seed(seed)
    model.eval()
    return float(sum(model.training_loss(x0, generator=g) for _ in range(reps)) / reps)


def train_digits_unet(
    steps: int = 4000,
    batch: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    ema_decay: float = 0.999,
    device: str = "auto",
    cfg: UNetConfig | None = None,
    log_every: int = 250,
    log=print,
    objective: str = "edm",
) -> tuple[EDMDenoiser | FlowVelocity, dict]:
    """Train :class:`EDMDenoiser` (``objective="edm"``, the EDM loss) or :class:`FlowVelocity`
    (``objective="flow"``, the rectified-flow loss) on all 1797 digits (unet.py docstring); return the EMA
    model and a summary (losses, time)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r} is not one of {sorted(OBJECTIVES)}")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    x, _ = load_digits_tensor()
    x = x.to(dev)
    model_cls = OBJECTIVES[objective]
    cfg = cfg or UNetConfig(**{**model_cls.default_cfg, "sigma_data": round(float(x.std()), 2)})
    model = model_cls(cfg).to(dev).train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator(device=dev).manual_seed(seed)
    t0, running, recent = time.perf_counter(), None, []
    for step in range(steps):
        for grp in opt.param_groups:
            grp["lr"] = _lr_at(step, steps, lr, warmup=min(200, steps // 10 + 1))
        idx = torch.randint(x.shape[0], (batch,), generator=g, device=dev)
        loss = model.training_loss(x[idx], generator=g)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        d = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - d)
        lv = float(loss.detach())
        running = lv if running is None else 0.98 * running + 0.02 * lv
        recent = (recent + [lv])[-200:]
        if log and (step + 1) % log_every == 0:
            log(f"step {step + 1}/{steps}  loss {running:.4f}  ({time.perf_counter() - t0:.0f}s)")
    summary = {
        "objective": objective,
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "ema_decay": ema_decay,
        "train_loss_last200": sum(recent) / len(recent),
        "eval_loss_ema": eval_edm_loss(ema, x),
        "seconds": round(time.perf_counter() - t0, 1),
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in ema.parameters()),
        "config": cfg.to_dict(),
    }
    return ema.cpu(), summary


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
