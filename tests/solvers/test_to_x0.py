"""Solvers layer, the data prediction of every VP prediction type (docs/theory.md eqs. (21), (35)) on schedules
with α² + σ² ≠ 1 (a flow-matching path α = 1 − t, σ = t, and a non-normalised pair), against independent formulas:
for x = α x0 + σ ε the model outputs ε (eps), x0, v = α ε − σ x0, the score −ε/σ and the flow velocity ε − x0,
each converted back must give x0; and the VP sampler with a v-model on such a schedule equals the VE sampler on
(x/α, σ/α)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ersde_theory import ring_2d, sample_er_sde, sample_er_sde_vp
from ersde_theory.solvers.ersde import PREDICTIONS, to_x0

# (α, σ) with α² + σ² ≠ 1: flow matching (α = 1 − t, σ = t) at t = 0.3 and 0.8, and an arbitrary pair
PAIRS = [(0.7, 0.3), (0.2, 0.8), (0.9, 1.7)]


def _outputs(x0, eps, alpha, sigma):
    """What an exact model of each prediction type returns at x = α x0 + σ ε."""
    return {"eps": eps, "x0": x0, "v": alpha * eps - sigma * x0, "score": -eps / sigma, "flow": eps - x0}


@pytest.mark.parametrize("alpha,sigma", PAIRS)
@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_to_x0_recovers_x0(prediction, alpha, sigma):
    assert abs(alpha**2 + sigma**2 - 1.0) > 0.05
    g = torch.Generator().manual_seed(0)
    x0, eps = (torch.randn(16, 3, generator=g, dtype=torch.float64) for _ in range(2))
    x = alpha * x0 + sigma * eps
    out = _outputs(x0, eps, alpha, sigma)[prediction]
    torch.testing.assert_close(to_x0(out, x, alpha, sigma, prediction), x0, rtol=1e-12, atol=1e-12)


def test_flow_schedule_v_sampler_equals_ve_on_lambda():
    """A v-model of ring_2d on a flow-matching schedule (α = 1 − t, σ = t): sample_er_sde_vp equals
    α_N × sample_er_sde on (x/α, λ = σ/α) with the exact VE denoiser (eq. (20))."""
    gm = ring_2d()
    t = np.linspace(0.995, 0.05, 12)
    a, s = 1.0 - t, t
    lam = s / a

    def v_model(x, sigma_in):
        i = int(np.argmin(np.abs(s - float(sigma_in[0]))))
        x0 = gm(x / a[i], torch.full((x.shape[0],), lam[i], dtype=x.dtype))
        eps = (x - a[i] * x0) / s[i]
        return a[i] * eps - s[i] * x0

    x = float(s[0]) * torch.randn(32, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    vp = sample_er_sde_vp(v_model, x, a, s, prediction="v", order=3, nsf="ode", disable=True)
    ve = sample_er_sde(gm, x / a[0], lam, order=3, nsf="ode", disable=True) * a[-1]
    torch.testing.assert_close(vp, ve, rtol=1e-9, atol=1e-9)
