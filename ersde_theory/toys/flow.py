"""Exact flow-matching models of the Gaussian mixtures (docs/theory.md eqs. (35), (44)).

A flow model sees x = α x_0 + σ ε with α = 1 − σ and predicts the velocity v = ε − x_0; the exact (minimum
mean-square) model is v(x, σ) = E[ε | x] − E[x_0 | x], from the mixture's posterior in flow variables
(:meth:`~ersde_theory.toys.gmm.GaussianMixture.posterior`). It is finite on the whole of σ ∈ [0, 1]: at σ = 1
(α = 0) it is x − E[x_0], at σ = 0 it is −x.
"""

from __future__ import annotations

import math

import torch

from .gmm import GaussianMixture

__all__ = ["flow_velocity"]


def flow_velocity(gm: GaussianMixture, timestep_scale: float = 1.0):
    """The exact velocity model ``model(x, t_batch) -> v`` of the mixture ``gm`` on the flow path (eq. (44)).

    ``t_batch`` holds σ · ``timestep_scale`` per sample (1: the model is called with σ, as the samplers do
    without timesteps; 1000: diffusers' timesteps = 1000 σ); σ must lie in [0, 1].
    """
    if not (isinstance(timestep_scale, (int, float)) and math.isfinite(timestep_scale) and timestep_scale > 0):
        raise ValueError(f"timestep_scale must be a finite number > 0, got {timestep_scale!r}")

    def model(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(t, dtype=gm.means.dtype, device=x.device) / timestep_scale
        x0, eps = gm.posterior(x, 1.0 - sigma, sigma)
        return eps - x0

    return model
