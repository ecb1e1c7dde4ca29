"""Plain helpers shared by several test folders (fixtures and the ``cuda`` marker hook live in conftest.py)."""

from pathlib import Path

import numpy as np
import torch

from ersde_theory.coefficients.schedules import get_sigmas_karras


def gaussian_denoiser(m: float = 0.3, s0: float = 0.7):
    """Exact denoiser of N(m, s0²) data (any tensor shape): x_θ = m + s0²/(s0² + σ²) (x − m)."""

    def model(x, sigma):
        sig = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        return m + s0**2 / (s0**2 + sig**2) * (x - m)

    return model


class FixedNoise:
    """noise_sampler that replays a fixed list of N(0, I) draws and counts the calls."""

    def __init__(self, shape, n=64, seed=0, dtype=torch.float64):
        g = torch.Generator().manual_seed(seed)
        self.z = [torch.randn(shape, generator=g, dtype=dtype) for _ in range(n)]
        self.calls = 0

    def __call__(self, sigma, sigma_next):
        self.calls += 1
        return self.z[self.calls - 1]


def karras(n, smin=0.002, smax=80.0):
    """n intervals from smax to smin, no final 0."""
    return get_sigmas_karras(n + 1, smin, smax, final_zero=False).numpy()


def ring_setup(n: int):
    """(``ring_2d()``, 12 Karras steps from 80 to 0.002, x = 80 z with n float64 2-D samples, seed 0)."""
    from ersde_theory.toys.problems import ring_2d

    x = 80 * torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return ring_2d(), get_sigmas_karras(12, 0.002, 80.0), x


def denoise(model, x, s):
    """x_θ(x, σ = s) of a VE model, the σ repeated over the batch."""
    return model(x, torch.full((x.shape[0],), float(s), dtype=x.dtype))


def point_mass(c):
    """Data = δ_c: x_θ ≡ c, score (c − x)/σ². The ER SDE is then linear with the exact solution
    x_t = r x_s + (1 − r) c + ξ[s, t]."""
    return (lambda x, sigma: (c - x) / sigma**2), (lambda x, sigma: torch.full_like(x, c))


def tiny_unet2d(out_channels=1, seed=0, dtype=torch.float64):
    """A randomly initialised 8×8, 1-channel diffusers UNet2DModel (needs the diffusers extra)."""
    from diffusers import UNet2DModel

    torch.manual_seed(seed)
    unet = UNet2DModel(
        sample_size=8,
        in_channels=1,
        out_channels=out_channels,
        layers_per_block=1,
        block_out_channels=(8, 16),
        norm_num_groups=4,
        down_block_types=("DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    return unet.to(dtype).eval().requires_grad_(False)


def fit_slope(xs, ys):
    """Least-squares slope of log ys against log xs."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


class TinyEDMNet(torch.nn.Module):
    """A stand-in for an EDM network pickle (``EDMPrecond``'s attributes and call): class-conditional, 1×8×8.
    Its denoiser shrinks x towards the class's constant image, x0 = (x + σ² m)/(1 + σ²) with m = class index / 4
    (the posterior mean for data N(m, 1) per pixel)."""

    sigma_min, sigma_max, img_resolution, img_channels, label_dim = 0.002, 80.0, 8, 1, 4

    def forward(self, x, sigma, class_labels=None):
        x32 = x.to(torch.float32)  # EDM networks compute in float32
        s2 = sigma.to(torch.float32).reshape(-1, 1, 1, 1) ** 2
        m = 0.0 if class_labels is None else (class_labels.float() @ torch.arange(4.0)).reshape(-1, 1, 1, 1) / 4
        return (x32 + s2 * m) / (1 + s2)


def assert_refused_before_writing(argv, out, message: str, capsys) -> str:
    """``python -m ersde_theory *argv`` is refused before anything is written: exit status 2, ``message`` in
    stderr, nothing at ``out``. Returns stderr."""
    from ersde_theory.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert not Path(out).exists()
    return err
