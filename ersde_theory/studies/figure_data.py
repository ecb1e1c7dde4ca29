"""The data behind the small figures of ``python -m ersde_theory figures`` (drawn in ``ersde_theory.plots``)."""

from __future__ import annotations

import numpy as np
import torch

from ..coefficients.ersde import ersde_coefficients
from ..coefficients.schedules import get_sigmas_karras
from ..solvers.ersde import sample_er_sde
from ..theory.nsf import NSF_NAMES, resolve_nsf
from ..toys.problems import ring_2d

__all__ = ["ring_samples", "nsf_curves", "karras_coefficients"]

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


def ring_samples(n: int = 3000, seed: int = 0, nfes=(10, 20, 50), orders=(1, 2, 3), lim: float = 2.6) -> dict:
    """ER-SDE-1/2/3 samples (er_sde_5, Karras ρ = 7 then 0) of ring_2d at each NFE, and its exact log density
    on a 200 × 200 grid over [−lim, lim]²."""
    gm = ring_2d()
    g1 = np.linspace(-lim, lim, 200)
    xx, yy = np.meshgrid(g1, g1)
    grid = torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], 1))
    logp = gm.log_prob(grid).reshape(xx.shape).numpy()
    samples = {}
    for order in orders:
        for nfe in nfes:
            g = torch.Generator().manual_seed(seed)
            sig = get_sigmas_karras(nfe, SIGMA_MIN, SIGMA_MAX)
            x = SIGMA_MAX * torch.randn(n, 2, generator=g, dtype=torch.float64)
            samples[order, nfe] = sample_er_sde(gm, x, sig, order=order, generator=g, disable=True).numpy()
    return dict(xx=xx, yy=yy, logp=logp, lim=lim, nfes=tuple(nfes), orders=tuple(orders), samples=samples)


def nsf_curves(sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX, points: int = 400) -> dict:
    """φ(σ) and h̃²(σ) = σφ'/φ − 1 (docs/theory.md eq. 4) of every registry NSF on a log grid."""
    sig = np.geomspace(sigma_min, sigma_max, points)
    curves = {}
    for name in NSF_NAMES:
        f = resolve_nsf(name)
        curves[name] = (f(sig), f.h_tilde_sq(sig))
    return dict(sigma=sig, curves=curves)


def karras_coefficients(n_steps: int = 20, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX):
    """The step coefficients (r, C_1, C_2; eqs. 7–13) of every registry NSF on an ``n_steps`` Karras schedule
    (then 0): (sigmas, {name: StepCoefficients})."""
    sig = get_sigmas_karras(n_steps, sigma_min, sigma_max).numpy()
    return sig, {name: ersde_coefficients(sig, name) for name in NSF_NAMES}
