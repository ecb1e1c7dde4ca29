"""Solvers layer, sample_er_sde and sample_er_sde_vp: ER-SDE-Solver-1 is DDIM for φ = σ and SDE-DPM-Solver++(1)
for φ = σ² (docs/theory.md eq. (29)), VP is α times VE on λ (eqs. (19)–(21)), the final step to σ = 0, FD at
NFE 50 within the noise floor (eq. (32)), determinism and per-sample generators, any shape and dtype, bad input,
and no host sync on a GPU."""

import math

import numpy as np
import pytest
import torch

from ersde_theory import get_sigmas_karras, get_vp_schedule, ring_2d, sample_er_sde, sample_er_sde_vp
from ersde_theory.evaluation.frechet import frechet_to_moments
from ersde_theory.evaluation.noise_floor import fd_noise_floor
from ersde_theory.studies.vp_models import vp_gmm_model
from tests.helpers import FixedNoise, gaussian_denoiser


def test_er_sde_1_with_phi_sigma_is_ddim(ring):
    sig = get_sigmas_karras(12, 0.002, 80.0)
    x = 80 * torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = sample_er_sde(ring, x, sig, order=1, nsf="ode", disable=True)
    # DDIM (η = 0) in data prediction: x_t = x_θ + (σ_t/σ_s)(x_s − x_θ)
    y = x.clone()
    for s, t in zip(sig[:-1].tolist(), sig[1:].tolist()):
        d = ring.denoise(y, torch.full((64,), s, dtype=torch.float64))
        y = d + (t / s) * (y - d)
    torch.testing.assert_close(out, y, rtol=1e-13, atol=1e-13)


def test_er_sde_1_with_phi_sigma_squared_is_sde_dpm_solver_pp_1(ring):
    sig = get_sigmas_karras(12, 0.002, 80.0)
    x = 80 * torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    noise = FixedNoise(x.shape, 12)
    out = sample_er_sde(ring, x, sig, order=1, nsf="sde", noise_sampler=noise, disable=True)
    # SDE-DPM-Solver++(1), VE (α = 1, λ = −log σ, h = λ_t − λ_s):
    # x_t = (σ_t/σ_s) e^{−h} x_s + (1 − e^{−2h}) x_θ + σ_t sqrt(1 − e^{−2h}) z
    y, k = x.clone(), 0
    for s, t in zip(sig[:-1].tolist(), sig[1:].tolist()):
        d = ring.denoise(y, torch.full((64,), s, dtype=torch.float64))
        if t == 0:
            y = d
            continue
        h = math.log(s) - math.log(t)
        y = (t / s) * math.exp(-h) * y - math.expm1(-2 * h) * d + t * math.sqrt(-math.expm1(-2 * h)) * noise.z[k]
        k += 1
    torch.testing.assert_close(out, y, rtol=1e-12, atol=1e-12)
    assert noise.calls == 11  # no noise on the step to σ = 0


@pytest.mark.parametrize("prediction", ["eps", "x0", "v", "score"])
@pytest.mark.parametrize("order,spacing", [(1, "time"), (2, "logsnr"), (3, "time"), (3, "logsnr")])
def test_vp_equals_alpha_times_ve_on_lambda(ring, prediction, order, spacing):
    a, s, t = get_vp_schedule(15, "linear", spacing, t_end=1.0)
    x = float(s[0]) * torch.randn(32, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    vp = sample_er_sde_vp(
        vp_gmm_model(ring, a, s, t, prediction),
        x,
        a,
        s,
        prediction=prediction,
        timesteps=t,
        order=order,
        generator=torch.Generator().manual_seed(4),
        disable=True,
    )
    ve = (
        sample_er_sde(ring, x / a[0], s / a, order=order, generator=torch.Generator().manual_seed(4), disable=True)
        * a[-1]
    )
    torch.testing.assert_close(vp, ve, rtol=1e-12, atol=1e-12)


def test_vp_final_step_to_zero_returns_denoiser(ring):
    a, s, t = get_vp_schedule(10, final_zero=True)
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    seen = {}

    def cb(d):
        seen[d["i"]] = d["denoised"]

    out = sample_er_sde_vp(vp_gmm_model(ring, a, s, t, "eps"), x, a, s, timesteps=t, callback=cb, disable=True)
    torch.testing.assert_close(out, seen[9], rtol=0, atol=0)


def test_fd_at_nfe_50_is_within_3_se_of_noise_floor(ring):
    n = 20000
    floor_mean, floor_sd = fd_noise_floor(ring, n, reps=30, seed=123)
    g = torch.Generator().manual_seed(0)
    x = 80.0 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    out = sample_er_sde(ring, x, get_sigmas_karras(50, 0.002, 80.0), order=3, generator=g, disable=True)
    fd = frechet_to_moments(out, ring.mean().numpy(), ring.cov().numpy())
    assert abs(fd - floor_mean) < 3 * floor_sd, (fd, floor_mean, floor_sd)
    # and it can fail: ER-SDE-1 at NFE 10 is far above the floor
    g = torch.Generator().manual_seed(0)
    x = 80.0 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    bad = sample_er_sde(ring, x, get_sigmas_karras(10, 0.002, 80.0), order=1, generator=g, disable=True)
    assert frechet_to_moments(bad, ring.mean().numpy(), ring.cov().numpy()) > floor_mean + 3 * floor_sd


def test_determinism_and_batch_invariance_with_per_sample_generators(ring):
    sig = get_sigmas_karras(10, 0.002, 80.0)
    seeds = [11, 12, 13, 14, 15, 16]

    def run(idx):
        gens = [torch.Generator().manual_seed(seeds[i]) for i in idx]
        x = torch.stack([80 * torch.randn(2, generator=g, dtype=torch.float64) for g in gens])
        return sample_er_sde(ring, x, sig, generator=gens, disable=True)

    full, part = run(range(6)), run([4, 1])
    torch.testing.assert_close(part[0], full[4], rtol=0, atol=0)
    torch.testing.assert_close(part[1], full[1], rtol=0, atol=0)
    torch.testing.assert_close(run(range(6)), full, rtol=0, atol=0)
    one = sample_er_sde(ring, full * 0 + 1, sig, generator=torch.Generator().manual_seed(1), disable=True)
    two = sample_er_sde(ring, full * 0 + 1, sig, generator=torch.Generator().manual_seed(1), disable=True)
    torch.testing.assert_close(one, two, rtol=0, atol=0)


def test_noise_sampler_is_the_only_noise_source(ring):
    sig = get_sigmas_karras(8, 0.002, 80.0)
    x = torch.ones(4, 2, dtype=torch.float64)
    state = torch.get_rng_state()
    noise = FixedNoise(x.shape, 8)
    sample_er_sde(ring, x, sig, noise_sampler=noise, disable=True)
    assert torch.equal(state, torch.get_rng_state()) and noise.calls == 7
    with pytest.raises(ValueError, match="either noise_sampler or generator"):
        sample_er_sde(ring, x, sig, noise_sampler=noise, generator=torch.Generator(), disable=True)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 3, 4, 4)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_any_shape_and_dtype(shape, dtype):
    x = 10 * torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=dtype)
    calls = []
    out = sample_er_sde(
        gaussian_denoiser(),
        x,
        get_sigmas_karras(6, 0.01, 10.0),
        callback=calls.append,
        generator=torch.Generator().manual_seed(0),
        disable=True,
    )
    assert out.shape == x.shape and out.dtype == dtype
    assert [c["i"] for c in calls] == list(range(6))
    assert set(calls[0]) == {"x", "i", "sigma", "sigma_hat", "denoised"}


def test_float32_tracks_float64(ring):
    sig = get_sigmas_karras(20, 0.002, 80.0)
    x = 80 * torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ns = FixedNoise(x.shape, 20)
    out64 = sample_er_sde(ring, x, sig, noise_sampler=ns, disable=True)
    ns.calls = 0
    out32 = sample_er_sde(ring, x.float(), sig, noise_sampler=ns, disable=True)
    assert out32.dtype == torch.float32
    assert (out32.double() - out64).abs().max() < 1e-3


# ---------------------------------------------------------------- bad input
def test_bad_sigmas_raise_before_any_model_call():
    calls = []

    def model(x, s):
        calls.append(1)
        return x

    x = torch.zeros(2, 2)
    for bad in ([[1.0, 0.0]], [1.0], [1.0, float("inf"), 0.0], [1.0, -0.5], [1.0, 2.0, 0.0]):
        with pytest.raises(ValueError):
            sample_er_sde(model, x, torch.tensor(bad), disable=True)
    assert not calls


def test_bad_nsf_and_order():
    x = torch.zeros(2, 2)
    sig = get_sigmas_karras(5, 0.002, 80.0)
    with pytest.raises(ValueError, match="not admissible"):
        sample_er_sde(lambda x, s: x, x, sig, nsf=lambda s: np.sqrt(s), disable=True)
    with pytest.raises(ValueError, match="not positive"):
        sample_er_sde(lambda x, s: x, x, sig, nsf=lambda s: s - 1, disable=True)
    with pytest.raises(ValueError, match="order"):
        sample_er_sde(lambda x, s: x, x, sig, order=4, disable=True)


def test_model_output_shape_mismatch():
    with pytest.raises(ValueError, match="model output has shape"):
        sample_er_sde(lambda x, s: x[:, :1], torch.zeros(2, 2), get_sigmas_karras(5, 0.1, 1.0), disable=True)


def test_bad_vp_arrays():
    a, s, t = get_vp_schedule(5)
    x = torch.zeros(2, 2, dtype=torch.float64)
    m = lambda x, t: x  # noqa: E731
    with pytest.raises(ValueError, match="same length"):
        sample_er_sde_vp(m, x, a[:-1], s, disable=True)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        sample_er_sde_vp(m, x, a * 2, s, disable=True)
    with pytest.raises(ValueError, match="timesteps"):
        sample_er_sde_vp(m, x, a, s, timesteps=t[:-1], disable=True)
    with pytest.raises(ValueError, match="prediction"):
        sample_er_sde_vp(m, x, a, s, prediction="mu", disable=True)


def test_non_finite_state_is_reported():
    sig = get_sigmas_karras(6, 0.01, 10.0)

    def model(x, s):
        return torch.where(s[:, None] < 0.5, torch.full_like(x, float("nan")), x * 0)

    x = torch.ones(3, 2, dtype=torch.float64)
    with pytest.raises(FloatingPointError, match="check_finite='step'"):
        sample_er_sde(model, x, sig, disable=True)
    with pytest.raises(FloatingPointError, match=r"after step 3 \(sigma 0\.0"):
        sample_er_sde(model, x, sig, check_finite="step", disable=True)
    sample_er_sde(model, x, sig, check_finite="none", disable=True)  # opt-out returns silently


@pytest.mark.cuda
@pytest.mark.parametrize("order", [1, 2, 3])
def test_cuda_no_host_sync_and_same_result_as_cpu(order):
    gm = ring_2d()
    gm_cuda = ring_2d()
    gm_cuda.__init__(gm.weights.cuda(), gm.means.cuda(), gm.evals.cuda())
    sig = get_sigmas_karras(10, 0.002, 80.0)
    x = 80 * torch.randn(128, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ns_cpu = FixedNoise(x.shape, 10)
    ref = sample_er_sde(gm, x, sig, order=order, noise_sampler=ns_cpu, disable=True)
    ns_gpu = FixedNoise(x.shape, 10)
    ns_gpu.z = [z.cuda() for z in ns_gpu.z]
    x_cuda = x.cuda()  # (a copy from the host, before the sampler)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = sample_er_sde(gm_cuda, x_cuda, sig, order=order, noise_sampler=ns_gpu, disable=True, check_finite="none")
    finally:
        torch.cuda.set_sync_debug_mode(0)
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-10, atol=1e-10)
