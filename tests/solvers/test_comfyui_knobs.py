"""Solvers layer, ComfyUI's knobs on sample_er_sde: ``s_noise`` (linear in the injected noise; only s_noise = 1
keeps the ER SDE's marginals), ComfyUI's names ``max_stage``/``noise_scaler`` and positional order, and zero-length
steps with the corrected derivatives and the third-order start."""

import pytest
import torch

from ersde_theory import get_sigmas_karras, ring_2d
from ersde_theory.solvers.ersde import sample_er_sde
from tests.helpers import FixedNoise, karras


def _unit_noise_run(sig, s_noise, order, quadrature="exact"):
    """x_N for data δ_0 (x_θ ≡ 0), x_0 = σ_0 e_0 and the noise of step k = e_{k+1}: row j of the output is the
    weight of the j-th independent N(0, 1) source, so the output variance is the sum of squares."""
    n = len(sig) - 1
    x = torch.zeros(n + 1, 1, dtype=torch.float64)
    x[0] = float(sig[0])
    calls = [0]

    def unit(a, b):
        z = torch.zeros(n + 1, 1, dtype=torch.float64)
        calls[0] += 1
        z[calls[0]] = 1.0
        return z

    model = lambda x, s: torch.zeros_like(x)  # noqa: E731
    return sample_er_sde(model, x, sig, None, None, True, s_noise, unit, order=order, quadrature=quadrature)[:, 0]


@pytest.mark.parametrize("order", [1, 3])
def test_s_noise_scales_the_noise_and_only_1_keeps_the_marginal(order):
    """Data δ_0: the ER SDE's marginal at σ_N is N(0, σ_N²). With gain R = Π r_i the output variance is
    R² σ_0² + s_noise² (σ_N² − R² σ_0²): σ_N² for s_noise = 1 (to rounding), other values for s_noise ≠ 1."""
    sig = karras(12)
    target = float(sig[-1]) ** 2
    full = _unit_noise_run(sig, 1.0, order)
    gain_sq = float(full[0] / sig[0]) ** 2
    assert float((full**2).sum()) == pytest.approx(target, rel=1e-12)
    for s_noise in (0.0, 0.5, 2.5):
        out = _unit_noise_run(sig, s_noise, order)
        torch.testing.assert_close(out[1:], s_noise * full[1:], rtol=1e-13, atol=0)  # linear in s_noise
        var = float((out**2).sum())
        assert var == pytest.approx(gain_sq * sig[0] ** 2 + s_noise**2 * (target - gain_sq * sig[0] ** 2), rel=1e-12)
        assert abs(var / target - 1) > 0.1


def test_comfyui_names_and_positional_order():
    gm, sig = ring_2d(), get_sigmas_karras(10, 0.002, 80.0)
    x = 80 * torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def run(*args, **kw):
        return sample_er_sde(gm, x, sig, None, None, True, *args, **kw)

    ref = run(0.7, FixedNoise(x.shape, seed=1), order=2, quadrature="comfyui")
    scaler = lambda t: t * ((t**0.3).exp() + 10.0)  # noqa: E731  ComfyUI's default noise scaler (torch)
    torch.testing.assert_close(run(0.7, FixedNoise(x.shape, seed=1), scaler, 2, quadrature="comfyui"), ref)
    torch.testing.assert_close(run(0.7, FixedNoise(x.shape, seed=1), max_stage=2, quadrature="comfyui"), ref)
    other = run(0.7, FixedNoise(x.shape, seed=1), lambda t: t**1.5, 2, quadrature="comfyui")
    assert float((other - ref).abs().max()) > 1e-3  # the scaler is used
    with pytest.raises(ValueError, match="max_stage"):
        run(max_stage=2, order=1)
    with pytest.raises(ValueError, match="noise_scaler"):
        run(noise_scaler=scaler, nsf="sde")
    with pytest.raises(ValueError, match="noise_scaler"):
        run(noise_scaler=2.0)
    for bad in (4, 0, True, 2.5):
        with pytest.raises(ValueError, match="max_stage"):
            run(max_stage=bad)


@pytest.mark.parametrize("where", [0, 1, 2, 5])
def test_repeated_sigma_with_corrected_derivatives_and_third_order_start(where):
    """A repeated σ at any step, even before the third-order start eq. (26) is applied, gives the run without it."""
    gm, sig = ring_2d(), get_sigmas_karras(10, 0.002, 80.0)
    rep = torch.cat([sig[: where + 1], sig[where:]])
    x = 80 * torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    keyed = lambda s, t: torch.randn(  # noqa: E731
        x.shape, generator=torch.Generator().manual_seed(int(1e6 * float(s)) ^ int(1e9 * float(t))), dtype=x.dtype
    )
    a = sample_er_sde(gm, x, sig, noise_sampler=keyed, derivatives="corrected", disable=True)
    b = sample_er_sde(gm, x, rep, noise_sampler=keyed, derivatives="corrected", disable=True)
    torch.testing.assert_close(b, a, rtol=0, atol=0)
