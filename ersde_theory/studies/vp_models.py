"""A Gaussian mixture seen as a VP model x_t = α x_0 + σ ε, with every prediction type."""

from __future__ import annotations

import numpy as np


def vp_gmm_model(gm, alphas, sigmas, timesteps, prediction: str):
    """``model(x, t_batch)`` returning the exact ``prediction`` (eps, x0, v or score) of ``gm`` under VP
    noising. The timestep is mapped back to (α, σ) by lookup in the given schedule."""
    a = np.asarray(alphas, dtype=np.float64)
    s = np.asarray(sigmas, dtype=np.float64)
    ts = np.asarray(timesteps, dtype=np.float64)

    def model(x, t):
        j = int(np.argmin(np.abs(ts - float(t[0]))))
        al, si = float(a[j]), float(s[j])
        x0 = gm.denoise(x / al, si / al)
        if prediction == "x0":
            return x0
        eps = (x - al * x0) / si
        if prediction == "eps":
            return eps
        if prediction == "v":
            return al * eps - si * x0
        if prediction == "score":
            return -eps / si
        raise ValueError(prediction)

    return model
