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
from pathlib import Path

import torch
from torch.nn import functional as F

from ..coefficients.schedules import vp_alphas_cumprod
from ..datasets.digits import load_digits_tensor, split_indices
from ..datasets.fashion_mnist import SHA256, load_fashion_mnist
from ..devices import resolve_device
from .checkpoints import FMNIST_SCHEDULERS, FMNIST_UNET, OBJECTIVES
from .classifier import DigitFeatureNet, FashionFeatureNet
from .unet import EDMDenoiser, FlowVelocity, UNetConfig


def _lr_at(step: int, steps: int, lr: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to lr/10."""
    if step < warmup:
        return lr * (step + 1) / warmup
    q = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * q)))


def _step_with_ema(opt, loss: torch.Tensor, model, ema, decay: float) -> None:
    """One optimiser step on ``loss``, then the EMA weights: ema ← decay · ema + (1 − decay) · model."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        for pe, pm in zip(ema.parameters(), model.parameters()):
            pe.lerp_(pm, 1 - decay)


@torch.no_grad()
def eval_edm_loss(model: EDMDenoiser | FlowVelocity, x0: torch.Tensor, reps: int = 4, seed: int = 12345) -> float:
    """The model's training loss (EDM or rectified-flow) on ``x0`` with fixed noise (``reps`` draws per image),
    for comparable numbers."""
    g = torch.Generator(device=x0.device).manual_seed(seed)
    model.eval()
    return float(sum(model.training_loss(x0, generator=g) for _ in range(reps)) / reps)


def train_digits_unet(steps: int = 4000, batch: int = 128, lr: float = 2e-3, seed: int = 0, ema_decay: float = 0.999,
                      device: str = "auto", cfg: UNetConfig | None = None, log_every: int = 250, log=print,
                      objective: str = "edm") -> tuple[EDMDenoiser | FlowVelocity, dict]:  # fmt: skip
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
        _step_with_ema(opt, loss, model, ema, min(ema_decay, (1 + step) / (10 + step)))
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


def _fit_classifier(net, x, y, steps: int, batch: int, lr: float, seed: int, *, shift: int, noise: float,
                    lr_at=None, log=print):  # fmt: skip
    """Adam on cross-entropy over random batches of (``x``, ``y``) on ``net``'s device, each image shifted by up to
    ±``shift`` pixels (padding −1) plus N(0, ``noise``²) pixel noise, so that features stay stable on imperfect
    samples; ``lr_at(step)`` the learning rate (default: ``lr``). Returns the trained net (CPU, eval, frozen) and
    the start time."""
    dev = next(net.parameters()).device
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    size = x.shape[-1]
    t0 = time.perf_counter()
    for step in range(steps):
        if lr_at is not None:
            for grp in opt.param_groups:
                grp["lr"] = lr_at(step)
        idx = torch.randint(x.shape[0], (batch,), generator=g)
        xb = F.pad(x[idx], (shift,) * 4, value=-1.0)
        dx, dy = (int(v) for v in torch.randint(0, 2 * shift + 1, (2,), generator=g))
        xb = xb[:, :, dy : dy + size, dx : dx + size] + noise * torch.randn(batch, 1, size, size, generator=g)
        loss = F.cross_entropy(net(xb.to(dev)), y[idx].to(dev))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if log and (step + 1) % 500 == 0:
            log(f"step {step + 1}/{steps}  loss {float(loss.detach()):.4f}  ({time.perf_counter() - t0:.0f}s)")
    return net.cpu().eval().requires_grad_(False), t0


def train_feature_net(
    steps: int = 1500, batch: int = 128, lr: float = 2e-3, seed: int = 0, device: str = "auto", log=print
) -> tuple[DigitFeatureNet, dict]:
    """Train the classifier on an 80 % split (random ±1 pixel shifts and N(0, 0.1²) pixel noise as
    augmentation, so that features stay stable on imperfect samples); report held-out accuracy."""
    dev = resolve_device(device)
    torch.manual_seed(seed)
    x, y = load_digits_tensor()
    tr, te = split_indices(x.shape[0], 0.2, seed)
    net, t0 = _fit_classifier(
        DigitFeatureNet().to(dev), x[tr], y[tr], steps, batch, lr, seed, shift=1, noise=0.1, log=log
    )
    with torch.no_grad():
        acc = float((net(x[te]).argmax(1) == y[te]).double().mean())
    summary = dict(steps=steps, batch=batch, lr=lr, seed=seed, test_accuracy=acc, test_size=int(te.size))
    return net, summary | {"seconds": round(time.perf_counter() - t0, 1)}


def fmnist_loss(unet, x0: torch.Tensor, objective: str, generator: torch.Generator, ab: torch.Tensor) -> torch.Tensor:
    """The training loss of a Fashion-MNIST UNet2DModel on the batch ``x0``: ``vp``, DDPM's ε-loss at a uniform
    integer timestep, x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε (ᾱ = ``ab``); ``flow``, the rectified-flow loss
    |v̂ − (ε − x_0)|² at σ = sigmoid(N(0, 1)) (SD3's logit-normal), x_σ = (1 − σ) x_0 + σ ε, timestep 1000 σ."""
    b, dev = x0.shape[0], x0.device
    eps = torch.randn(x0.shape, generator=generator, device=dev)
    if objective == "vp":
        t = torch.randint(ab.numel(), (b,), generator=generator, device=dev)
        a = ab[t].reshape(-1, 1, 1, 1)
        return (unet(a.sqrt() * x0 + (1 - a).sqrt() * eps, t).sample - eps).square().mean()
    sig = torch.sigmoid(torch.randn(b, generator=generator, device=dev))
    s4 = sig.reshape(-1, 1, 1, 1)
    return (unet((1 - s4) * x0 + s4 * eps, 1000.0 * sig).sample - (eps - x0)).square().mean()


FMNIST_OBJECTIVES = ("vp", "flow")
SHA256_TRAIN_IMAGES, SHA256_TEST_IMAGES = SHA256["train-images-idx3-ubyte"], SHA256["t10k-images-idx3-ubyte"]


def train_fmnist_unet(
    objective: str = "vp",
    steps: int = 10_000,
    batch: int = 64,
    lr: float = 5e-4,
    seed: int = 0,
    ema_decay: float = 0.9995,
    device: str = "auto",
    data=None,
    unet_config: dict | None = None,
    time_limit: float | None = None,
    checkpoint=None,
    amp: bool = False,
    log_every: int = 250,
    log=print,
):
    """Train the diffusers UNet2DModel of ``fmnist`` (``objective="vp"``, :func:`fmnist_loss`) or ``fmnist-flow``
    (``"flow"``) on the 60,000 Fashion-MNIST training images; return the EMA UNet and a summary (losses, steps,
    time). ``time_limit`` (seconds): stop early, keeping what was learnt (the summary says so); ``checkpoint``: a
    file the state is saved to every 500 steps and resumed from when it exists; ``amp``: bfloat16 autocast (GPU)."""
    from ..diffusers_integration.unet import new_unet2d

    if objective not in FMNIST_OBJECTIVES:
        raise ValueError(f"objective {objective!r} is not one of {FMNIST_OBJECTIVES}")
    dev = resolve_device(device)
    torch.manual_seed(seed)
    x, _ = load_fashion_mnist("train", data)
    x = x.to(dev)
    cfg = dict(unet_config or FMNIST_UNET)
    unet = new_unet2d(**cfg).to(dev).train()
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    opt = torch.optim.Adam(unet.parameters(), lr=lr)
    g = torch.Generator(device=dev).manual_seed(seed)
    sched = FMNIST_SCHEDULERS["vp"]
    ab = torch.from_numpy(vp_alphas_cumprod("linear", 1000, beta_start=sched["beta_start"], beta_end=sched["beta_end"]))
    ab = ab.to(dev, torch.float32)
    start, losses, spent = 0, [], 0.0
    if checkpoint is not None and Path(checkpoint).is_file():
        ck = torch.load(checkpoint, map_location=dev, weights_only=False)
        unet.load_state_dict(ck["unet"]), ema.load_state_dict(ck["ema"]), opt.load_state_dict(ck["opt"])
        start, losses, spent = ck["step"], ck["losses"], ck["seconds"]
        g.set_state(ck["generator"])
        log and log(f"resumed at step {start} ({spent:.0f}s spent)")
    t0 = time.perf_counter() - spent
    step, stopped = start, False
    for step in range(start, steps):
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            stopped = True
            break
        for grp in opt.param_groups:
            grp["lr"] = _lr_at(step, steps, lr, warmup=min(500, steps // 10 + 1))
        idx = torch.randint(x.shape[0], (batch,), generator=g, device=dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp):
            loss = fmnist_loss(unet, x[idx], objective, g, ab)
        _step_with_ema(opt, loss, unet, ema, min(ema_decay, (1 + step) / (10 + step)))
        losses.append(float(loss.detach()))
        if log and (step + 1) % log_every == 0:
            recent = losses[-log_every:]
            log(f"step {step + 1}/{steps}  loss {sum(recent) / len(recent):.4f}  ({time.perf_counter() - t0:.0f}s)")
        if checkpoint is not None and (step + 1) % 500 == 0:
            Path(checkpoint).parent.mkdir(parents=True, exist_ok=True)
            state = dict(unet=unet.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(), step=step + 1,
                         losses=losses, seconds=time.perf_counter() - t0, generator=g.get_state())  # fmt: skip
            torch.save(state, Path(checkpoint).with_suffix(".tmp"))
            Path(checkpoint).with_suffix(".tmp").replace(checkpoint)
    done = step + 1 if not stopped else step
    xt, _ = load_fashion_mnist("test", data)
    summary = {
        "objective": objective,
        "steps": done,
        "steps_planned": steps,
        "stopped_by_time_limit": stopped,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "ema_decay": ema_decay,
        "train_loss_last500": sum(losses[-500:]) / max(1, len(losses[-500:])),
        "test_loss_ema": eval_fmnist_loss(ema, xt[:2000].to(dev), objective, ab),
        "seconds": round(time.perf_counter() - t0, 1),
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "amp": amp,
        "parameters": sum(p.numel() for p in ema.parameters()),
        "config": cfg,
        "scheduler": FMNIST_SCHEDULERS[objective],
        "data": {"train_images_sha256": SHA256_TRAIN_IMAGES, "test_images_sha256": SHA256_TEST_IMAGES},
        "loss_curve": [
            round(sum(losses[k : k + 500]) / len(losses[k : k + 500]), 5) for k in range(0, len(losses), 500)
        ],
    }
    return ema.cpu(), summary


@torch.no_grad()
def eval_fmnist_loss(
    unet, x0: torch.Tensor, objective: str, ab: torch.Tensor, reps: int = 2, seed: int = 12345
) -> float:
    """:func:`fmnist_loss` of ``unet`` on ``x0`` (e.g. test images) with fixed noise, for comparable numbers."""
    g = torch.Generator(device=x0.device).manual_seed(seed)
    unet.eval()
    vals = [
        float(fmnist_loss(unet, x0[i : i + 500], objective, g, ab)) for _ in range(reps) for i in range(0, len(x0), 500)
    ]
    return sum(vals) / len(vals)


def train_fmnist_classifier(
    steps: int = 2500, batch: int = 128, lr: float = 2e-3, seed: int = 0, device: str = "auto", data=None, log=print
) -> tuple[FashionFeatureNet, dict]:
    """Train :class:`~ersde_theory.models.classifier.FashionFeatureNet` on the 60,000 Fashion-MNIST training images
    (random ±2 pixel shifts and N(0, 0.05²) pixel noise as augmentation, so that features stay stable on imperfect
    samples; cosine learning rate); report its accuracy on the 10,000 test images."""
    dev = resolve_device(device)
    torch.manual_seed(seed)
    x, y = load_fashion_mnist("train", data)
    xte, yte = load_fashion_mnist("test", data)
    warmup = min(200, steps // 10 + 1)
    net, t0 = _fit_classifier(FashionFeatureNet().to(dev).train(), x, y, steps, batch, lr, seed, shift=2, noise=0.05,
                              lr_at=lambda step: _lr_at(step, steps, lr, warmup), log=log)  # fmt: skip
    with torch.no_grad():
        pred = torch.cat([net(xte[i : i + 2000]).argmax(1) for i in range(0, xte.shape[0], 2000)])
    acc = float((pred == yte).double().mean())
    summary = {
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "test_accuracy": acc,
        "test_size": int(xte.shape[0]),
        "per_class_test_accuracy": [round(float((pred[yte == c] == c).double().mean()), 4) for c in range(10)],
        "seconds": round(time.perf_counter() - t0, 1),
        "device": str(dev),
        "data": {"train_images_sha256": SHA256_TRAIN_IMAGES, "test_images_sha256": SHA256_TEST_IMAGES},
        "reference": "features of the 10,000 Fashion-MNIST test images",
    }
    return net, summary
