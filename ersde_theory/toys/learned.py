"""A small learned denoiser for the toy mixtures: an MLP with EDM preconditioning, trained on exact samples.

It gives the benchmark a model with real, measurable error (the exact denoiser of the mixture is the truth).
Preconditioning (Karras et al. 2022, eq. 7 and Table 1), σ_d the data std:

    D_θ(x, σ) = c_skip x + c_out F_θ(c_in x, c_noise),   c_skip = σ_d²/(σ² + σ_d²),  c_out = σ σ_d/√(σ² + σ_d²),
    c_in = 1/√(σ² + σ_d²),  c_noise = log(σ)/4;
    loss  E_{σ, x_0, ε} λ(σ) |D_θ(x_0 + σε, σ) − x_0|²,  λ = 1/c_out²  (so F_θ's target has unit variance),

with log σ uniform on [log σ_lo, log σ_hi] (the sampling range) and fresh mixture samples in every batch.
Weights ship in ``ersde_theory/data/<problem>_mlp.pt`` with a JSON sidecar (the exact command, seed,
final loss, and the measured error against the exact denoiser). ``python -m ersde_theory train-toy`` makes them.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from .problems import get_problem

__all__ = [
    "EDMPrecondMLP",
    "LearnedDenoiser",
    "train_denoiser",
    "load_learned",
    "denoiser_error",
    "DATA_DIR",
    "DEFAULT_ARCH",
]

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEFAULT_ARCH = {"ring_2d": dict(hidden=64, depth=3, n_freq=6), "image_like_64d": dict(hidden=256, depth=3, n_freq=6)}


class EDMPrecondMLP(nn.Module):
    """F_θ: an MLP on [c_in x, Fourier features of c_noise] (SiLU), wrapped in EDM preconditioning."""

    def __init__(self, dim: int, sigma_data: float, hidden: int = 128, depth: int = 3, n_freq: int = 6):
        super().__init__()
        self.dim, self.sigma_data = dim, float(sigma_data)
        self.register_buffer("freqs", 2.0 ** torch.arange(n_freq, dtype=torch.float32))
        layers, width = [], dim + 2 * n_freq
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        sd = self.sigma_data
        sig = sigma.reshape(-1, 1).to(x.dtype)
        c_in = torch.rsqrt(sig**2 + sd**2)
        c_skip, c_out = sd**2 * c_in**2, sig * sd * c_in
        ang = (torch.log(sig) / 4) * self.freqs
        f = self.net(torch.cat([c_in * x, torch.sin(ang), torch.cos(ang)], dim=1))
        return c_skip * x + c_out * f


class LearnedDenoiser:
    """``model(x, sigma_batch) -> x_θ`` in the k-diffusion convention, any input dtype (runs in float32)."""

    def __init__(self, net: EDMPrecondMLP, meta: dict | None = None):
        self.net, self.meta = net.eval(), meta or {}

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sig = torch.as_tensor(sigma, device=x.device).reshape(-1).expand(x.shape[0])
        return self.net(x.float(), sig.float()).to(x.dtype)

    def to(self, device) -> LearnedDenoiser:
        self.net.to(device)
        return self


def _data_std(gm) -> float:
    return float(torch.sqrt(torch.trace(gm.cov()) / gm.D))


def train_denoiser(
    problem: str,
    *,
    steps: int = 3000,
    batch: int = 1024,
    lr: float = 2e-3,
    seed: int = 0,
    sigma_lo: float = 0.002,
    sigma_hi: float = 80.0,
    hidden: int | None = None,
    depth: int | None = None,
    n_freq: int | None = None,
    log=print,
    device: str = "cpu",
):
    """Train :class:`EDMPrecondMLP` on fresh samples of ``problem`` (module docstring); Adam with a cosine
    learning-rate decay. Returns (net, info) with the final loss (mean over the last 10 % of steps)."""
    if steps < 1 or batch < 1 or not lr > 0 or not 0 < sigma_lo < sigma_hi:
        raise ValueError("need steps >= 1, batch >= 1, lr > 0 and 0 < sigma_lo < sigma_hi")
    gm = get_problem(problem, device=device)
    arch = dict(DEFAULT_ARCH.get(problem, {}))
    arch.update({k: v for k, v in dict(hidden=hidden, depth=depth, n_freq=n_freq).items() if v is not None})
    torch.manual_seed(seed)
    g = torch.Generator(device=device).manual_seed(seed)
    net = EDMPrecondMLP(gm.D, _data_std(gm), **arch).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    lo, hi = math.log(sigma_lo), math.log(sigma_hi)
    sd, tail, t0 = net.sigma_data, [], time.perf_counter()
    for k in range(steps):
        x0 = gm.sample(batch, generator=g).float()
        sig = torch.exp(lo + (hi - lo) * torch.rand(batch, 1, generator=g, device=device))
        noisy = x0 + sig * torch.randn(x0.shape, generator=g, device=device)
        weight = (sig**2 + sd**2) / (sig * sd) ** 2
        loss = (weight * (net(noisy, sig) - x0) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if k >= steps - max(1, steps // 10):
            tail.append(loss.item())
        if log and (k % max(1, steps // 10) == 0 or k == steps - 1):
            log(f"step {k:6d}  loss {loss.item():.4f}")
    info = dict(
        problem=problem,
        seed=seed,
        steps=steps,
        batch=batch,
        lr=lr,
        sigma_lo=sigma_lo,
        sigma_hi=sigma_hi,
        arch=arch,
        sigma_data=sd,
        final_loss=sum(tail) / len(tail),
        train_seconds=round(time.perf_counter() - t0, 1),
        torch_version=torch.__version__,
        n_params=sum(p.numel() for p in net.parameters()),
    )
    return net.cpu().eval(), info


@torch.no_grad()
def denoiser_error(model, gm, sigmas=(0.01, 0.1, 0.5, 2.0, 10.0), n: int = 20000, seed: int = 1) -> dict:
    """Error of ``model`` against the exact denoiser D of ``gm`` on x_σ ~ p_σ, for each σ:
    ``{"rms": RMS per coordinate of D_θ − D, "rel": that RMS / the RMS spread of D around its mean}``."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for s in sigmas:
        x = gm.sample(n, generator=g, sigma=s)
        sig = torch.full((n,), float(s), dtype=torch.float64)
        exact = gm.denoise(x, sig)
        err = (model(x, sig).double() - exact).pow(2).mean().sqrt().item()
        spread = (exact - exact.mean(0)).pow(2).mean().sqrt().item()
        out[f"{s:g}"] = {"rms": err, "rel": err / spread}
    return out


def _paths(problem: str, data_dir: Path | None = None):
    d = Path(data_dir) if data_dir is not None else DATA_DIR
    return d / f"{problem}_mlp.pt", d / f"{problem}_mlp.json"


def save_learned(net: EDMPrecondMLP, info: dict, data_dir: Path | None = None) -> tuple[Path, Path]:
    wpath, jpath = _paths(info["problem"], data_dir)
    wpath.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.float() for k, v in net.state_dict().items()}, wpath)
    jpath.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    return wpath, jpath


def load_learned(problem: str, data_dir: Path | None = None, device=None) -> LearnedDenoiser:
    """The shipped learned denoiser of ``problem`` (weights + JSON sidecar), ready to call."""
    wpath, jpath = _paths(problem, data_dir)
    if not wpath.exists() or not jpath.exists():
        raise FileNotFoundError(
            f"no learned denoiser for {problem!r} in {wpath.parent} "
            f"(train one with: python -m ersde_theory train-toy --problem {problem})"
        )
    meta = json.loads(jpath.read_text())
    net = EDMPrecondMLP(get_problem(problem).D, meta["sigma_data"], **meta["arch"])
    net.load_state_dict(torch.load(wpath, map_location="cpu", weights_only=True))
    model = LearnedDenoiser(net, meta)
    return model.to(device) if device is not None else model
