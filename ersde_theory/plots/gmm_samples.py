"""ER-SDE-1/2/3 samples of the 2-D ring mixture at NFE 10/20/50 against the exact density."""

from __future__ import annotations

import numpy as np
import torch

from ..coefficients.schedules import get_sigmas_karras
from ..solvers.ersde import sample_er_sde
from ..toys.problems import ring_2d
from .registry import figure, plt, save


@figure("gmm_samples")
def gmm_samples(outdir, n: int = 3000, seed: int = 0):
    gm = ring_2d()
    lim = 2.6
    g1 = np.linspace(-lim, lim, 200)
    xx, yy = np.meshgrid(g1, g1)
    grid = torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], 1))
    logp = gm.log_prob(grid).reshape(xx.shape).numpy()
    nfes, orders = (10, 20, 50), (1, 2, 3)
    fig, axes = plt.subplots(len(orders), len(nfes), figsize=(9, 9), sharex=True, sharey=True)
    for i, order in enumerate(orders):
        for j, nfe in enumerate(nfes):
            g = torch.Generator().manual_seed(seed)
            sig = get_sigmas_karras(nfe, 0.002, 80.0)
            x = 80.0 * torch.randn(n, 2, generator=g, dtype=torch.float64)
            out = sample_er_sde(gm, x, sig, order=order, generator=g, disable=True).numpy()
            ax = axes[i, j]
            ax.contour(xx, yy, logp, levels=np.linspace(logp.max() - 12, logp.max(), 5), colors="0.6", linewidths=0.6)
            ax.scatter(out[:, 0], out[:, 1], s=1, alpha=0.4, color="C3")
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
            ax.set_title(f"ER-SDE-{order}, NFE {nfe}", fontsize=9)
    fig.suptitle("ER-SDE-Solver samples (er_sde_5, Karras ρ=7) over the exact density contours")
    return save(fig, outdir, "gmm_samples")
