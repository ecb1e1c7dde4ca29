"""Models layer, sampling starts at the right σ: on a linear-Gaussian "image" model (every pixel of the data
independent N(m, s0²), exact denoiser / exact ε-prediction) the images of ``sample_images`` must have the data's
per-pixel mean and sd. Starting a VE model at any other σ (e.g. 0.5·σ_max) scales the sd by the ratio of the
marginal sds, which these checks catch; the VP path is checked the same way through a stand-in diffusers UNet."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ersde_theory.diffusers_integration.unet import alphas_cumprod_from_config
from ersde_theory.models.loading import ImageModel
from ersde_theory.models.sampling import sample_images

M, S0 = 0.3, 0.5
SHAPE = (1, 8, 8)
SEEDS = range(200)  # 12 800 pixels: the sd is known to ±0.6 % (1 sd), the mean to ±0.0044


def _check_law(x: torch.Tensor, rel_sd: float = 0.03):
    v = x.double().flatten()
    n = v.numel()
    assert abs(float(v.mean()) - M) < 4 * S0 / np.sqrt(n), float(v.mean())
    assert float(v.std()) == pytest.approx(S0, rel=rel_sd), float(v.std())


class LinearGaussianVE(torch.nn.Module):
    """Exact denoiser of N(m, s0² I) data under VE noising: m + s0²/(s0² + σ²)(x − m)."""

    def forward(self, x, sigma):
        s2 = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype) ** 2
        return M + S0**2 / (S0**2 + s2) * (x - M)


@pytest.mark.parametrize("kw", [dict(order=3, nsf="er_sde_5"), dict(order=2, nsf="ode")])
def test_ve_image_sampling_has_the_data_law(kw):
    im = ImageModel("linear-gaussian", "ve", LinearGaussianVE(), SHAPE, 0.002, 80.0)
    x = sample_images(im, SEEDS, steps=25, sampler="er_sde", **kw)
    assert x.shape == (len(SEEDS), *SHAPE)
    _check_law(x)


class LinearGaussianUNet(torch.nn.Module):
    """A stand-in diffusers UNet2DModel: unet(x, t).sample is the exact ε-prediction of N(m, s0² I) data
    under x_t = √ᾱ_t x0 + √(1 − ᾱ_t) ε (DDPM's linear β schedule)."""

    def __init__(self, alphas_cumprod):
        super().__init__()
        self.ac = torch.from_numpy(np.asarray(alphas_cumprod, dtype=np.float64))
        self.register_buffer("_p", torch.zeros((), dtype=torch.float64))

    @property
    def dtype(self):
        return torch.float64

    def forward(self, x, t):
        tt = t.double().clamp(0, len(self.ac) - 1)
        lo = tt.floor().long()
        hi = (lo + 1).clamp(max=len(self.ac) - 1)
        w = tt - lo
        ac = torch.exp((1 - w) * self.ac[lo].log() + w * self.ac[hi].log()).reshape(-1, 1, 1, 1)
        a, s = ac.sqrt(), (1 - ac).sqrt()
        eps = s * (x - a * M) / (a**2 * S0**2 + s**2)  # E[ε | x_t]
        return SimpleNamespace(sample=eps)


@pytest.mark.parametrize("spacing", ["time", "logsnr"])
def test_vp_image_sampling_has_the_data_law(spacing):
    cfg = {"beta_schedule": "linear", "beta_start": 1e-4, "beta_end": 0.02, "num_train_timesteps": 1000}
    unet = LinearGaussianUNet(alphas_cumprod_from_config(cfg))
    im = ImageModel("linear-gaussian-vp", "vp", unet, SHAPE, scheduler_config=cfg)
    x = sample_images(im, SEEDS, steps=25, spacing=spacing, order=3, nsf="er_sde_5")
    _check_law(x)
