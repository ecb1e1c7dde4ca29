"""Solvers layer, the flow baselines (docs/theory.md eqs. (42), (43)): Euler and Heun against their updates written
out here, DPM-Solver++(2M) and its SDE form against the VE samplers of baselines.py on (x/α, λ = σ/α) (α_0 > 0),
their start at σ = 1 against σ = 1 − 1e-9 and against the h_0 = ∞ limit written out, and the bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ersde_theory import (
    flow_velocity,
    get_flow_schedule,
    ring_2d,
    sample_dpmpp_2m,
    sample_dpmpp_2m_sde,
    sample_flow_dpmpp_2m,
    sample_flow_dpmpp_2m_sde,
    sample_flow_euler,
    sample_flow_heun,
)
from tests.helpers import FixedNoise

GM = ring_2d()
VEL = flow_velocity(GM)
SAMPLERS = [sample_flow_euler, sample_flow_heun, sample_flow_dpmpp_2m, sample_flow_dpmpp_2m_sde]


def _x(n=16, seed=0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _v(x, s):
    return VEL(x, torch.full((x.shape[0],), float(s), dtype=torch.float64))


def test_heun_by_hand():
    """x' = x + (σ_t − σ_s) v, x_t = x + (σ_t − σ_s)(v + v(x', σ_t))/2; the step to σ = 0 is Euler (2N − 1 calls)."""
    _, s, _ = get_flow_schedule(7, shift=2.0)
    x = _x()
    calls = []

    def counted(x, t):
        calls.append(float(t[0]))
        return VEL(x, t)

    out = sample_flow_heun(counted, x, s, disable=True)
    y, sig = x.clone(), s.tolist()
    for i in range(len(sig) - 1):
        d = _v(y, sig[i])
        y_e = y + (sig[i + 1] - sig[i]) * d
        y = y_e if sig[i + 1] == 0 else y + 0.5 * (sig[i + 1] - sig[i]) * (d + _v(y_e, sig[i + 1]))
    torch.testing.assert_close(out, y, rtol=0, atol=1e-13)
    assert len(calls) == 2 * (len(sig) - 1) - 1


@pytest.mark.parametrize("eta", [0.0, 1.0, 0.5])
def test_dpmpp_through_the_map_equals_ve_on_lambda(eta):
    """α_0 > 0: sample_flow_dpmpp_2m(_sde) equals α_N × the VE sample_dpmpp_2m(_sde) on (x/α, λ) with the VE
    denoiser and the same noise, to 1e-12 (eq. (43))."""
    a, s, _ = get_flow_schedule(9, shift=3.0)
    a, s = a[1:], s[1:]
    x = _x() * float(s[0])
    lam = (s / a).numpy()
    if eta == 0.0:
        flow = sample_flow_dpmpp_2m(VEL, x, s, disable=True)
        ve = sample_dpmpp_2m(GM, x / a[0], lam, disable=True)
    else:
        flow = sample_flow_dpmpp_2m_sde(VEL, x, s, eta=eta, noise_sampler=FixedNoise(x.shape, seed=1), disable=True)
        ve = sample_dpmpp_2m_sde(GM, x / a[0], lam, eta=eta, noise_sampler=FixedNoise(x.shape, seed=1), disable=True)
    torch.testing.assert_close(flow, ve * float(a[-1]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_dpmpp_first_step_from_sigma_1(eta):
    """From σ_0 = 1 (h_0 = ∞): x_1 = [η = 0] σ_1 x_0 + α_1 D_0 + [η > 0] σ_1 z, D_0 = x_0 − v_0 (eq. (43))."""
    s = torch.tensor([1.0, 0.7], dtype=torch.float64)
    x, z = _x(), _x(seed=4)
    out = sample_flow_dpmpp_2m_sde(VEL, x, s, eta=eta, noise_sampler=lambda *_: z, disable=True)
    d0 = x - _v(x, 1.0)
    want = (0.7 * x if eta == 0 else 0.0) + 0.3 * d0 + (0.7 * z if eta > 0 else 0.0)
    torch.testing.assert_close(out, want, rtol=0, atol=1e-14)


def _from_below(sampler, deltas):
    """Samples from σ_0 = 1 − δ for each δ (same noise, shift-3 schedule otherwise)."""
    _, s, _ = get_flow_schedule(10, shift=3.0)
    x = _x()
    outs = []
    for d in deltas:
        sig = s.clone()
        sig[0] = 1.0 - d
        outs.append(sampler(VEL, x, sig, noise_sampler=FixedNoise(x.shape, seed=2), disable=True))
    return outs


@pytest.mark.parametrize("sampler", [sample_flow_euler, sample_flow_heun])
def test_euler_heun_start_at_sigma_1_agrees_with_just_below(sampler):
    """Euler and Heun are natural in σ: a start at σ_0 = 1 agrees with σ_0 = 1 − 1e-9 to 1e-6 (same noise)."""
    a, b = _from_below(sampler, [0.0, 1e-9])
    assert (a - b).abs().max().item() <= 1e-6


@pytest.mark.parametrize("sampler", [sample_flow_dpmpp_2m, sample_flow_dpmpp_2m_sde])
def test_dpmpp_start_converges_like_one_over_log(sampler):
    """DPM-Solver++ through the map: from σ_0 = 1 − δ the next step's slope weight is h_1/(2 h_0) with
    h_0 = log(λ_0/λ_1) ≈ log(1/(δ λ_1)), so the start at 1 − δ tends to the σ_0 = 1 limit (eq. (43)) only like
    1/log(1/δ): the difference at δ = 1e-12 is 0.3–0.6 times that at δ = 1e-6 (≈ 10.5/24.3 here)."""
    lim, d6, d12 = _from_below(sampler, [0.0, 1e-6, 1e-12])
    e6, e12 = ((d - lim).abs().max().item() for d in (d6, d12))
    assert 0.3 <= e12 / e6 <= 0.6, (e6, e12)


def test_dpmpp_second_step_from_sigma_1_has_no_slope_term():
    """After the start at σ_0 = 1, step 1 of DPM-Solver++(2M) is first order (h_1/h_0 = 0, eq. (43)):
    x_2 = (σ_2/σ_1) x_1 + α_2 (1 − e^{−h_1}) D_1, with x_1 = σ_1 x_0 + α_1 D_0."""
    s = [1.0, 0.7, 0.4]
    x = _x()
    out = sample_flow_dpmpp_2m(VEL, x, torch.tensor(s, dtype=torch.float64), disable=True)
    x1 = 0.7 * x + 0.3 * (x - _v(x, 1.0))
    h1 = np.log((0.7 / 0.3) / (0.4 / 0.6))
    want = (0.4 / 0.7) * x1 + 0.6 * (1 - np.exp(-h1)) * (x1 - 0.7 * _v(x1, 0.7))
    torch.testing.assert_close(out, want, rtol=0, atol=1e-14)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_timesteps_are_passed_to_the_model(sampler):
    """With timesteps = 1000 σ a model reading σ = t/1000 gives the same samples as one called with σ."""
    _, s, t = get_flow_schedule(6)
    x = _x()
    a = sampler(flow_velocity(GM, 1000.0), x, s, timesteps=t, noise_sampler=FixedNoise(x.shape), disable=True)
    b = sampler(VEL, x, s, noise_sampler=FixedNoise(x.shape), disable=True)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_bad_inputs(sampler):
    _, s, t = get_flow_schedule(5)
    x = _x()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sampler(VEL, x, s * 1.5, disable=True)
    with pytest.raises(ValueError, match="strictly decreasing"):
        sampler(VEL, x, s.flip(0), disable=True)
    with pytest.raises(ValueError, match="timesteps"):
        sampler(VEL, x, s, timesteps=t[:-1], disable=True)
    with pytest.raises(ValueError, match="model output has shape"):
        sampler(lambda x, t: x[:, :1], x, s, disable=True)


def test_bad_eta_and_s_noise():
    _, s, _ = get_flow_schedule(5)
    for kw in (dict(eta=-1.0), dict(s_noise=float("nan")), dict(eta=np.inf)):
        with pytest.raises(ValueError, match=next(iter(kw))):
            sample_flow_dpmpp_2m_sde(VEL, _x(), s, disable=True, **kw)
