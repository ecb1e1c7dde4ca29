"""ER-SDE-1/2/3 samples of the 2-D ring mixture at NFE 10/20/50 against the exact density."""

from __future__ import annotations

import numpy as np

from ..studies.figure_data import ring_samples
from .registry import figure, plt, save


@figure("gmm_samples", study=ring_samples)
def gmm_samples(data, outdir):
    xx, yy, logp, lim = data["xx"], data["yy"], data["logp"], data["lim"]
    nfes, orders = data["nfes"], data["orders"]
    fig, axes = plt.subplots(len(orders), len(nfes), figsize=(9, 9), sharex=True, sharey=True)
    for i, order in enumerate(orders):
        for j, nfe in enumerate(nfes):
            out = data["samples"][order, nfe]
            ax = axes[i, j]
            ax.contour(xx, yy, logp, levels=np.linspace(logp.max() - 12, logp.max(), 5), colors="0.6", linewidths=0.6)
            ax.scatter(out[:, 0], out[:, 1], s=1, alpha=0.4, color="C3")
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
            ax.set_title(f"ER-SDE-{order}, NFE {nfe}", fontsize=9)
    fig.suptitle("ER-SDE-Solver samples (er_sde_5, Karras ρ=7) over the exact density contours")
    return save(fig, outdir, "gmm_samples")
