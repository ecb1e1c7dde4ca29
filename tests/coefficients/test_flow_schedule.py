"""Coefficients layer, get_flow_schedule (docs/theory.md eq. (35)): equal to diffusers'
FlowMatchEulerDiscreteScheduler.set_timesteps (static shift, dynamic μ) to float32 precision, the shift maps
against their formulas, and the bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ersde_theory import get_flow_schedule
from ersde_theory.coefficients.schedules import flow_shift

CASES = [(1, 1.0, None), (2, 1.0, None), (10, 1.0, None), (28, 3.0, None), (7, 0.4, None), (50, 1.0, 0.5)]
CASES += [(20, 1.0, 1.15), (30, math.exp(0.8), 0.8), (4, 1.0, -0.7)]


@pytest.mark.parametrize("n,shift,mu", CASES)
def test_equals_diffusers_flow_match_euler(n, shift, mu):
    """Sigmas (n+1, ending in 0) and timesteps (the first n) equal the diffusers scheduler's float32 values to
    float32 precision; α = 1 − σ and timesteps = 1000 σ."""
    diffusers = pytest.importorskip("diffusers")
    sch = diffusers.FlowMatchEulerDiscreteScheduler(shift=shift, use_dynamic_shifting=mu is not None)
    sch.set_timesteps(n, mu=mu)
    a, s, t = get_flow_schedule(n, shift=shift, mu=mu)
    assert s.dtype == a.dtype == t.dtype == torch.float64 and s.shape == (n + 1,) and float(s[-1]) == 0.0
    # exactly diffusers' float32 values, but for a first σ that its rounding puts a hair above 1 (shift 0.4): 1
    assert float(s[0]) == 1.0 and 1.0 <= float(sch.sigmas[0]) <= 1.0 + 1e-6
    torch.testing.assert_close(s[1:].float(), sch.sigmas[1:], rtol=0, atol=0)
    torch.testing.assert_close((s[1:-1].float() * 1000), sch.timesteps[1:], rtol=0, atol=0)
    torch.testing.assert_close(a, 1.0 - s, rtol=0, atol=0)
    torch.testing.assert_close(t, 1000.0 * s, rtol=0, atol=0)


def test_shift_formulas():
    """Static: σ' = sσ/(1 + (s − 1)σ); dynamic: e^μ/(e^μ + (1/σ − 1)); both fix 0 and 1; shift 1 is the identity."""
    u = np.linspace(0.01, 0.99, 17)
    np.testing.assert_allclose(flow_shift(u, 3.0), 3 * u / (1 + 2 * u), rtol=1e-15)
    np.testing.assert_allclose(flow_shift(u, mu=0.7), np.exp(0.7) / (np.exp(0.7) + (1 / u - 1)), rtol=1e-14)
    np.testing.assert_allclose(flow_shift([0.0, 1.0], 5.0), [0.0, 1.0], rtol=0, atol=0)
    np.testing.assert_allclose(flow_shift(u, 1.0), u, rtol=0, atol=1e-16)


def test_grid_without_diffusers():
    """n = 4, shift 2, T = 1000: σ_min = shift(1/T) in float32 (diffusers' training grid), u = linspace(1, σ_min, 4)
    in float64, σ = shift(u), then 0; the dynamic shift's σ_min is float32(1/T)."""
    f32 = np.float32
    smin = float(f32(2.0) * f32(0.001) / (f32(1.0) + f32(1.0) * f32(0.001)))
    assert smin != 2 * 0.001 / (1 + 0.001)  # the float64 value differs: diffusers' rounding is kept
    u = np.linspace(1000.0, smin * 1000, 4) / 1000
    want = np.append(2 * u / (1 + u), 0.0)
    _, s, t = get_flow_schedule(4, shift=2.0)
    np.testing.assert_allclose(s.numpy(), want, rtol=1e-15, atol=0)
    _, s, t = get_flow_schedule(4, mu=0.3, num_train_timesteps=10)
    u = np.linspace(10.0, float(f32(0.1)) * 10, 4) / 10
    np.testing.assert_allclose(s.numpy(), np.append(np.exp(0.3) / (np.exp(0.3) + 1 / u - 1), 0.0), rtol=1e-15)
    np.testing.assert_allclose(t.numpy(), 10 * s.numpy(), rtol=0)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(n=0), "number of steps"),
        (dict(n=2.5), "number of steps"),
        (dict(shift=0.0), "shift"),
        (dict(shift=-1.0), "shift"),
        (dict(shift=float("nan")), "shift"),
        (dict(mu=float("inf")), "mu"),
        (dict(mu=0.5, shift=3.0), "contradicts"),
        (dict(num_train_timesteps=1), "num_train_timesteps"),
    ],
)
def test_bad_inputs(kw, match):
    kw = {"n": 5, **kw}
    with pytest.raises(ValueError, match=match):
        get_flow_schedule(kw.pop("n"), **kw)
