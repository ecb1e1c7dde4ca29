"""A small UNet with EDM preconditioning, so that ``model(x, sigma)`` is a VE denoiser x_θ(x, σ).

EDM preconditioning (Karras et al. 2022, Table 1, "Ours" column):

    D(x, σ) = c_skip(σ) x + c_out(σ) F(c_in(σ) x, c_noise(σ)),
    c_skip = σ_d²/(σ² + σ_d²),  c_out = σ σ_d/sqrt(σ² + σ_d²),  c_in = 1/sqrt(σ² + σ_d²),  c_noise = ln(σ)/4,

trained with the EDM loss E_{σ, x0, n} λ(σ) |D(x0 + σ n, σ) − x0|², λ = (σ² + σ_d²)/(σ σ_d)², ln σ ~ N(P_mean, P_std²).

F is a UNet (by default two levels, 8×8 → 4×4 for the digits, 24/48 channels, 0.29 M parameters) of
residual blocks whose GroupNorms are modulated by an embedding of c_noise, with self-attention at the
coarsest level and in the middle. The network runs in
float32 whatever the sampler's dtype; its output is cast back (EDM's own practice).

:class:`FlowVelocity` wraps the same UNet as a rectified-flow velocity model ``model(x, t) -> v`` on
x_t = (1 − t) x_0 + t ε (t = σ ∈ [0, 1], α = 1 − σ), v = ε − x_0. Its preconditioning is EDM's rule applied
to v: with x_0 of standard deviation σ_d and ε ~ N(0, I) independent,

    v_θ(x, σ) = c_skip x + c_out F(c_in x, c_noise),  c_in = 1/sqrt(α² σ_d² + σ²),
    c_skip = Cov(x, v)/Var(x) = (σ − α σ_d²) c_in²,  c_out = sqrt(Var(v) − c_skip² Var(x)) = (α + σ) σ_d c_in,

so that F's target has unit variance at every σ, with c_noise = σ (the timestep over 1000). At σ = 1 (α = 0)
c_skip = 1 and c_out = σ_d: the velocity is finite at the pure-noise start. Trained with the plain
rectified-flow loss E‖v_θ(x_σ, σ) − (ε − x_0)‖² with σ logit-normal, logit σ ~ N(m, s²) (SD3's sampling);
since logit σ = ln(σ/α) = ln λ, the defaults (m, s) = (−1.2, 1.2) draw λ as the EDM loss above draws σ.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class UNetConfig:
    in_channels: int = 1
    resolution: int = 8
    channels: tuple = (24, 48)  # per level; resolution halves from one level to the next
    attention_levels: tuple = (1,)
    emb_dim: int = 64
    dropout: float = 0.1
    sigma_data: float = 0.5
    sigma_min: float = 0.002  # the range the model serves (used by samplers' defaults)
    sigma_max: float = 80.0

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown UNet config keys {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def _groups(c: int) -> int:
    return min(8, c)


class ResBlock(nn.Module):
    """GN → SiLU → conv → GN·(1 + scale) + shift (from the noise embedding) → SiLU → dropout → conv, plus a
    1×1 skip; output scaled by 1/sqrt(2)."""

    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(_groups(cin), cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)
        self.norm2, self.conv2 = nn.GroupNorm(_groups(cout), cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.drop = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = F.silu(self.norm2(h) * (1 + scale) + shift)
        h = self.conv2(self.drop(h))
        return (h + self.skip(x)) * (1 / math.sqrt(2))


class Attention(nn.Module):
    """Single-head self-attention over pixels, residual."""

    def __init__(self, c: int):
        super().__init__()
        self.norm, self.qkv, self.proj = nn.GroupNorm(_groups(c), c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return x + self.proj(a.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    """F(x, c_noise): the raw network (no preconditioning)."""

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        ch, E, p = list(cfg.channels), cfg.emb_dim, cfg.dropout
        if cfg.resolution % (2 ** (len(ch) - 1)):
            raise ValueError(f"resolution {cfg.resolution} is not divisible by 2^{len(ch) - 1}")
        self.register_buffer("freqs", torch.exp(torch.linspace(0.0, math.log(100.0), E // 4)))
        self.emb = nn.Sequential(nn.Linear(E // 2, E), nn.SiLU(), nn.Linear(E, E))
        self.inp = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        att = lambda lv, c: Attention(c) if lv in cfg.attention_levels else nn.Identity()  # noqa: E731
        self.enc, self.enc_att, self.down = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        prev = ch[0]
        for lv, c in enumerate(ch):
            if lv > 0:
                self.down.append(nn.Conv2d(prev, prev, 3, stride=2, padding=1))
            self.enc.append(ResBlock(prev, c, E, p))
            self.enc_att.append(att(lv, c))
            prev = c
        self.mid1, self.mid_att, self.mid2 = ResBlock(prev, prev, E, p), Attention(prev), ResBlock(prev, prev, E, p)
        self.dec, self.dec_att, self.up = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for lv in reversed(range(len(ch))):
            self.dec.append(ResBlock(prev + ch[lv], ch[lv], E, p))
            self.dec_att.append(att(lv, ch[lv]))
            prev = ch[lv]
            if lv > 0:
                self.up.append(nn.Conv2d(prev, ch[lv - 1], 3, padding=1))
                prev = ch[lv - 1]
        self.out_norm, self.out = nn.GroupNorm(_groups(prev), prev), nn.Conv2d(prev, cfg.in_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, c_noise):
        ang = c_noise[:, None] * self.freqs[None, :]
        emb = self.emb(torch.cat([ang.cos(), ang.sin()], dim=1))
        h = self.inp(x)
        skips = []
        for lv, (blk, att) in enumerate(zip(self.enc, self.enc_att)):
            if lv > 0:
                h = self.down[lv - 1](h)
            h = att(blk(h, emb))
            skips.append(h)
        h = self.mid2(self.mid_att(self.mid1(h, emb)), emb)
        for j, (blk, att) in enumerate(zip(self.dec, self.dec_att)):
            h = att(blk(torch.cat([h, skips.pop()], dim=1), emb))
            if j < len(self.up):
                h = self.up[j](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))


class _Preconditioned(nn.Module):
    """:class:`UNet` with a config; subclasses add the preconditioning (``forward``) and the training loss."""

    objective: str = ""  # the training objective, recorded in the checkpoint
    default_cfg: ClassVar[dict] = {}

    def __init__(self, cfg: UNetConfig | None = None):
        super().__init__()
        self.cfg = cfg or UNetConfig(**self.default_cfg)
        self.net = UNet(self.cfg)

    @property
    def sample_shape(self) -> tuple:
        return (self.cfg.in_channels, self.cfg.resolution, self.cfg.resolution)

    def checkpoint(self) -> dict:
        return {"objective": self.objective, "config": self.cfg.to_dict(), "state_dict": self.state_dict()}

    @classmethod
    def from_checkpoint(cls, ckpt: dict):
        model = cls(UNetConfig.from_dict(ckpt["config"]))
        model.load_state_dict(ckpt["state_dict"])
        return model.eval().requires_grad_(False)


class EDMDenoiser(_Preconditioned):
    """``model(x, sigma) -> x_θ``: EDM preconditioning (module docstring) around :class:`UNet`.

    ``sigma`` is a scalar or a per-sample tensor; ``x`` may be float64 (the network runs in float32).
    """

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sig = torch.as_tensor(sigma, device=x.device, dtype=torch.float32).reshape(-1)
        sig = sig.expand(x.shape[0]).reshape(-1, 1, 1, 1)
        sd = self.cfg.sigma_data
        c_skip = sd**2 / (sig**2 + sd**2)
        c_out = sig * sd / (sig**2 + sd**2).sqrt()
        c_in = 1 / (sig**2 + sd**2).sqrt()
        xf = x.to(torch.float32)
        f = self.net(c_in * xf, sig.log().reshape(-1) / 4)
        return (c_skip * xf + c_out * f).to(x.dtype)

    def edm_loss(
        self, x0: torch.Tensor, generator: torch.Generator | None = None, p_mean: float = -1.2, p_std: float = 1.2
    ) -> torch.Tensor:
        """The EDM training loss (module docstring), averaged over the batch."""
        b = x0.shape[0]
        rnd = torch.randn(b, generator=generator, device=x0.device)
        sig = (rnd * p_std + p_mean).exp()
        n = torch.randn(x0.shape, generator=generator, device=x0.device) * sig.reshape(-1, 1, 1, 1)
        sd = self.cfg.sigma_data
        weight = ((sig**2 + sd**2) / (sig * sd) ** 2).reshape(-1, 1, 1, 1)
        return (weight * (self(x0 + n, sig) - x0) ** 2).mean()

    objective = "edm"
    training_loss = edm_loss


class FlowVelocity(_Preconditioned):
    """``model(x, t) -> v``: a rectified-flow velocity model (module docstring) around :class:`UNet`.

    ``t`` is σ ∈ [0, 1] (α = 1 − σ; diffusers' timestep is 1000 t), a scalar or a per-sample tensor; ``x`` may
    be float64 (the network runs in float32).
    """

    objective = "flow"
    default_cfg: ClassVar[dict] = {"sigma_min": 0.0, "sigma_max": 1.0}

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        sig = torch.as_tensor(t, device=x.device, dtype=torch.float32).reshape(-1)
        sig = sig.expand(x.shape[0]).reshape(-1, 1, 1, 1)
        alpha, sd = 1 - sig, self.cfg.sigma_data
        c_in = 1 / (alpha**2 * sd**2 + sig**2).sqrt()
        c_skip = (sig - alpha * sd**2) * c_in**2
        c_out = (alpha + sig) * sd * c_in
        xf = x.to(torch.float32)
        f = self.net(c_in * xf, sig.reshape(-1))
        return (c_skip * xf + c_out * f).to(x.dtype)

    def flow_loss(
        self, x0: torch.Tensor, generator: torch.Generator | None = None, p_mean: float = -1.2, p_std: float = 1.2
    ) -> torch.Tensor:
        """The rectified-flow loss (module docstring), averaged over the batch."""
        b = x0.shape[0]
        sig = torch.sigmoid(torch.randn(b, generator=generator, device=x0.device) * p_std + p_mean)
        eps = torch.randn(x0.shape, generator=generator, device=x0.device)
        s4 = sig.reshape(-1, 1, 1, 1)
        return ((self((1 - s4) * x0 + s4 * eps, sig) - (eps - x0)) ** 2).mean()

    training_loss = flow_loss
