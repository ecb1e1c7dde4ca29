"""Training of the shipped digit networks: the EDM-preconditioned UNet denoiser, the same UNet as a
rectified-flow velocity model (``objective="flow"``, unet.py docstring), and the small digit classifier
(:mod:`.classifier`) whose penultimate layer is the feature space of FD_digits
(``ersde_theory.evaluation.image_metrics``).

All are deterministic given the seed on a given machine; :mod:`.checkpoints` writes the weights and the JSON
sidecar with the command, seed, loss and timings.
"""

from __future__ import annotations

import copy
import math
import time

import torch
from torch.nn import functional as F

from ..datasets.digits import load_digits_tensor, split_indices
from ..devices import resolve_device
from .checkpoints import OBJECTIVES
from .classifier import DigitFeatureNet
from .unet import EDMDenoiser, FlowVelocity, UNetConfig


def _lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to lr/10."""
    if step < warmup:
        return lr * (step + 1) / warmup
    q = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * q)))


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


def train_feature_net(
    steps: int = 1500, batch: int = 128, lr: float = 2e-3, seed: int = 0, device: str = "auto", log=print
) -> tuple[DigitFeatureNet, dict]:
    """Train the classifier on an 80 % split (random ±1 pixel shifts and N(0, 0.1²) pixel noise as
    augmentation, so that features stay stable on imperfect samples); report held-out accuracy."""
    dev = resolve_device(device)
    torch.manual_seed(seed)
    x, y = load_digits_tensor()
    tr, te = split_indices(x.shape[0], 0.2, seed)
    net = DigitFeatureNet().to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    xtr, ytr = x[tr], y[tr]
    t0 = time.perf_counter()
    for step in range(steps):
        idx = torch.randint(xtr.shape[0], (batch,), generator=g)
        xb = F.pad(xtr[idx], (1, 1, 1, 1), value=-1.0)
        dx, dy = (int(v) for v in torch.randint(0, 3, (2,), generator=g))
        xb = xb[:, :, dy : dy + 8, dx : dx + 8] + 0.1 * torch.randn(batch, 1, 8, 8, generator=g)
        loss = F.cross_entropy(net(xb.to(dev)), ytr[idx].to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log and (step + 1) % 500 == 0:
            log(f"step {step + 1}/{steps}  loss {float(loss.detach()):.4f}")
    net = net.cpu().eval().requires_grad_(False)
    with torch.no_grad():
        acc = float((net(x[te]).argmax(1) == y[te]).double().mean())
    summary = {
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "test_accuracy": acc,
        "test_size": int(te.size),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return net, summary
