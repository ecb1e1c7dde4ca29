"""ERSDEScheduler: the same samples as sample_er_sde_vp (docs/theory.md eqs. (19)–(28)) on diffusers' integer timestep
grids and on the continuous ones; the grids equal DPMSolverMultistepScheduler's; β/ᾱ and add_noise equal DDPM's;
config round trips; begin index, fp16, 1-step schedules; bad input; the ImportError without diffusers. Tiny
randomly initialised UNet2DModels (offline). Skipped when the optional ``diffusers`` extra is not installed."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")
from diffusers import DDPMPipeline, DDPMScheduler, DPMSolverMultistepScheduler  # noqa: E402

from ersde_theory import get_vp_schedule, sample_er_sde_vp  # noqa: E402
from ersde_theory.coefficients.schedules import get_vp_discrete_schedule, lambda_to_timestep  # noqa: E402
from ersde_theory.diffusers_integration.schedulers import ERSDEScheduler  # noqa: E402
from ersde_theory.diffusers_integration.unet import DiffusersVPModel, alphas_cumprod_from_config  # noqa: E402
from tests.helpers import tiny_unet2d  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
SD = dict(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)


@pytest.fixture(scope="module")
def unet():
    return tiny_unet2d()


def run_scheduler(unet, sched, x, generator):
    with torch.no_grad():
        for t in sched.timesteps:
            x = sched.step(unet(x, t).sample, t, x, generator=generator).prev_sample
    return x


def schedule_of(sched, n):
    """(α, σ, t) of sample_er_sde_vp for the scheduler's config (the grid builders, not the scheduler)."""
    c, ac = sched.config, alphas_cumprod_from_config(sched.config)
    final_zero = c.final_sigmas_type == "zero"
    if c.continuous_timesteps is not None:
        return get_vp_schedule(n, spacing=c.continuous_timesteps, alphas_cumprod=ac, final_zero=final_zero)
    return get_vp_discrete_schedule(
        n,
        ac,
        spacing=c.timestep_spacing,
        steps_offset=c.steps_offset,
        karras=c.use_karras_sigmas,
        final_zero=final_zero,
    )


CONFIGS = [
    dict(),
    dict(timestep_spacing="trailing", final_sigmas_type="sigma_min"),
    dict(timestep_spacing="leading", steps_offset=1, **SD),
    dict(use_karras_sigmas=True, prediction_type="v_prediction"),
    dict(use_karras_sigmas=True, final_sigmas_type="sigma_min"),
    dict(continuous_timesteps="time"),
    dict(continuous_timesteps="logsnr", derivatives="corrected", final_sigmas_type="sigma_min"),
]


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("nsf", ["er_sde_5", "ode", "sde", "sigma**1.5"])
def test_scheduler_matches_sample_er_sde_vp(unet, order, nsf):
    sched = ERSDEScheduler(solver_order=order, nsf=nsf)
    sched.set_timesteps(7)
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a, s, t = schedule_of(sched, 7)
    ref = sample_er_sde_vp(
        DiffusersVPModel(unet),
        x,
        a,
        s,
        prediction="eps",
        timesteps=t,
        order=order,
        nsf=sched._nsf,
        generator=torch.Generator().manual_seed(2),
        disable=True,
    )
    out = run_scheduler(unet, sched, x, torch.Generator().manual_seed(2))
    scale = ref.abs().max()
    assert scale > 1  # a random UNet's ε is large: the comparison is not trivial
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12 * float(scale))


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_scheduler_matches_sample_er_sde_vp_on_every_grid(unet, cfg):
    sched = ERSDEScheduler(**cfg)
    sched.set_timesteps(8)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    a, s, t = schedule_of(sched, 8)
    assert torch.equal(sched.timesteps.double(), t[: len(sched.timesteps)])  # the model-call timesteps
    ref = sample_er_sde_vp(
        DiffusersVPModel(unet),
        x,
        a,
        s,
        prediction={"epsilon": "eps", "v_prediction": "v"}[sched.config.prediction_type],
        timesteps=t,
        derivatives=sched.config.derivatives,
        generator=[torch.Generator().manual_seed(k) for k in (5, 6)],
        disable=True,
    )
    out = run_scheduler(unet, sched, x, [torch.Generator().manual_seed(k) for k in (5, 6)])
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12 * float(ref.abs().max()))


@pytest.mark.parametrize(
    "kw", [{}, dict(timestep_spacing="leading", steps_offset=1), dict(timestep_spacing="trailing")]
)
@pytest.mark.parametrize("betas", [{}, SD, dict(beta_schedule="squaredcos_cap_v2")])
@pytest.mark.parametrize("n", [1, 2, 3, 10, 25, 50, 333, 999])
def test_integer_timesteps_and_sigmas_equal_dpmsolver(kw, betas, n):
    dpm = DPMSolverMultistepScheduler(**kw, **betas)
    dpm.set_timesteps(n)
    if dpm.timesteps[0] > 999:  # leading + steps_offset past the last training timestep: an error here
        with pytest.raises(ValueError, match="steps_offset=1 puts a timestep beyond 999"):
            ERSDEScheduler(**kw, **betas).set_timesteps(n)
        return
    for final in ("zero", "sigma_min"):
        ours = ERSDEScheduler(**kw, **betas, final_sigmas_type=final)
        ours.set_timesteps(n)
        assert ours.timesteps.dtype == torch.int64
        m = n - 1 if final == "sigma_min" and dpm.timesteps[-1] == 0 else n  # a zero-length last step is dropped
        torch.testing.assert_close(ours.timesteps, dpm.timesteps[:m], rtol=0, atol=0)
        lam = ours._coeffs.lambdas  # λ = σ/α: DPM-Solver's "sigmas" (float32 ᾱ there)
        np.testing.assert_allclose(lam[:-1], dpm.sigmas[: len(lam) - 1].double().numpy(), rtol=5e-5, atol=5e-6)
    ab0 = float(ours.alphas_cumprod[0])
    assert lam[-1] == pytest.approx(np.sqrt((1 - ab0) / ab0), rel=1e-12)  # the last step ends at t = 0
    if n == 2 and not kw and not betas:
        assert ours.timesteps.tolist() == [999, 500]


@pytest.mark.parametrize("betas", [{}, SD])
@pytest.mark.parametrize("n", [1, 2, 10, 25, 100])
def test_karras_timesteps_and_sigmas_equal_dpmsolver(betas, n):
    dpm = DPMSolverMultistepScheduler(use_karras_sigmas=True, **betas)
    dpm.set_timesteps(n)
    ours = ERSDEScheduler(use_karras_sigmas=True, **betas)
    ours.set_timesteps(n)
    lam = ours._coeffs.lambdas
    np.testing.assert_allclose(lam, dpm.sigmas.double().numpy(), rtol=2e-4)
    # the model-call timesteps round the same t, but from float32 σ's there: a t within 1e-2 of k + ½ may differ
    t = lambda_to_timestep(lam[:-1], alphas_cumprod_from_config(ours.config))
    differ = (ours.timesteps != dpm.timesteps).numpy()
    assert np.all(np.abs(t[differ] % 1 - 0.5) < 1e-2) and (ours.timesteps - dpm.timesteps).abs().max() <= 1
    assert differ.sum() <= n // 50
    # final_sigmas_type="sigma_min": Karras' last σ is σ_min already, so that zero-length step is dropped
    last = ERSDEScheduler(use_karras_sigmas=True, final_sigmas_type="sigma_min", **betas)
    last.set_timesteps(n)
    torch.testing.assert_close(last.timesteps, ours.timesteps[: max(n - 1, 1)], rtol=0, atol=0)


def test_repeated_and_overshooting_grids():
    """linspace with n = T repeats timestep 500 in diffusers' grid: the repeat is dropped. trailing with n = 61
    gets a timestep −1 from diffusers' arange: ours keeps the n timesteps before it."""
    dpm, ours = DPMSolverMultistepScheduler(), ERSDEScheduler()
    dpm.set_timesteps(1000)
    ours.set_timesteps(1000)
    assert len(dpm.timesteps) == 1000 and len(torch.unique(dpm.timesteps)) == 999
    assert ours.timesteps.tolist() == sorted(set(dpm.timesteps.tolist()), reverse=True)
    assert ours.num_inference_steps == len(ours.timesteps) == 999
    dpm, ours = DPMSolverMultistepScheduler(timestep_spacing="trailing"), ERSDEScheduler(timestep_spacing="trailing")
    dpm.set_timesteps(61)
    ours.set_timesteps(61)
    assert len(dpm.timesteps) == 62 and dpm.timesteps[-1] == -1
    assert ours.timesteps.tolist() == dpm.timesteps[:61].tolist()


def test_last_step_returns_the_data_prediction_without_a_model_call_at_zero(unet):
    """final_sigmas_type="zero": no model call at t = 0; the last step to σ = 0 returns x_θ = (x − σ ε̂)/α."""
    sched = ERSDEScheduler()
    sched.set_timesteps(4)
    assert int(sched.timesteps.min()) > 0
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with torch.no_grad():
        for t in sched.timesteps[:-1]:
            x = sched.step(unet(x, t).sample, t, x, generator=torch.Generator().manual_seed(1)).prev_sample
        t = sched.timesteps[-1]
        eps = unet(x, t).sample
    out = sched.step(eps, t, x)
    ab = float(alphas_cumprod_from_config(sched.config)[int(t)])
    x0 = (x - (1 - ab) ** 0.5 * eps) / ab**0.5
    torch.testing.assert_close(out.prev_sample, x0, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.pred_original_sample, out.prev_sample, rtol=0, atol=0)


@pytest.mark.parametrize("cfg", [{}, dict(final_sigmas_type="sigma_min"), dict(continuous_timesteps="time")])
def test_one_step_schedule(unet, cfg):
    sched = ERSDEScheduler(solver_order=3, **cfg)
    sched.set_timesteps(1)
    assert sched.timesteps.tolist() == [999] and sched.num_inference_steps == 1
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    eps = unet(x, sched.timesteps[0]).sample
    out = sched.step(eps, sched.timesteps[0], x, generator=torch.Generator().manual_seed(1)).prev_sample
    ab = alphas_cumprod_from_config(sched.config)
    x0 = (x - (1 - ab[999]) ** 0.5 * eps) / ab[999] ** 0.5
    if cfg.get("final_sigmas_type") == "sigma_min":  # one ER-SDE-1 step from t = 999 to t = 0
        a, s, _ = schedule_of(sched, 1)
        ref = sample_er_sde_vp(
            lambda x_, t_: eps, x, a, s, order=1, generator=torch.Generator().manual_seed(1), disable=True
        )
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        assert not torch.allclose(out, x0)
    else:
        torch.testing.assert_close(out, x0, rtol=1e-12, atol=1e-12)


def test_ddpm_pipeline_end_to_end_equals_the_solver():
    unet32 = tiny_unet2d(dtype=torch.float32)
    for cfg in ({}, dict(continuous_timesteps="time")):
        pipe = DDPMPipeline(unet=unet32, scheduler=ERSDEScheduler(solver_order=3, **cfg))
        pipe.set_progress_bar_config(disable=True)
        img = pipe(
            batch_size=2, generator=torch.Generator().manual_seed(0), num_inference_steps=6, output_type="np"
        ).images
        assert img.shape == (2, 8, 8, 1) and np.isfinite(img).all()
        g = torch.Generator().manual_seed(0)  # the pipeline draws x_T first, then the step noise
        x = torch.randn(2, 1, 8, 8, generator=g)
        a, s, t = schedule_of(pipe.scheduler, 6)
        ref = sample_er_sde_vp(DiffusersVPModel(unet32), x, a, s, timesteps=t, generator=g, disable=True)
        ref = (ref / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(img, ref, atol=1e-4)  # float32 UNet and state; ε̂ of a random UNet is large


def test_fp16_samples_are_stepped_in_float32(unet):
    """A float16 sample comes back float16; the step runs in float32 on the float16 values (DPM-Solver does the
    same), so it equals a float32 step on the same values, rounded once."""
    sched16, sched32 = ERSDEScheduler(), ERSDEScheduler()
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)).half()
    x32 = x.float()
    for s in (sched16, sched32):
        s.set_timesteps(5)
    with torch.no_grad():
        for t in sched16.timesteps:
            eps = unet(x.double(), t).sample
            x = sched16.step(eps.half(), t, x, generator=torch.Generator().manual_seed(int(t))).prev_sample
            ref = sched32.step(eps.half().float(), t, x32, generator=torch.Generator().manual_seed(int(t))).prev_sample
            assert x.dtype == torch.float16
            torch.testing.assert_close(x, ref.half(), rtol=0, atol=0)
            x32 = x.float()


def test_scheduler_config_round_trip_and_compatibility(tmp_path, unet):
    sched = ERSDEScheduler(
        solver_order=2,
        nsf="er_sde_3",
        beta_schedule="squaredcos_cap_v2",
        continuous_timesteps="logsnr",
        quadrature="official",
        final_sigmas_type="sigma_min",
    )
    sched.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "scheduler_config.json").read_text())
    assert cfg["_class_name"] == "ERSDEScheduler" and cfg["nsf"] == "er_sde_3" and cfg["solver_order"] == 2
    new = ERSDEScheduler.from_pretrained(tmp_path)
    public = lambda c: {k: v for k, v in c.items() if not k.startswith("_")}  # noqa: E731
    assert public(new.config) == public(sched.config)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    outs = []
    for s in (sched, new):
        s.set_timesteps(5)
        outs.append(run_scheduler(unet, s, x, torch.Generator().manual_seed(1)))
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)
    # from a DPM-Solver config (as pipelines swap schedulers) and back: the shared timestep keys carry over
    dpm = DPMSolverMultistepScheduler(**SD, timestep_spacing="trailing", use_karras_sigmas=True, steps_offset=1)
    ours = ERSDEScheduler.from_config(dpm.config)
    assert ours.config.beta_schedule == "scaled_linear" and ours.config.timestep_spacing == "trailing"
    assert ours.config.use_karras_sigmas and ours.config.steps_offset == 1
    assert "DPMSolverMultistepScheduler" in [c.__name__ for c in ours.compatibles]
    assert DDPMScheduler.from_config(ours.config).config.beta_end == 0.012


def test_swapped_into_a_stable_diffusion_config_as_dpm_solver_is():
    """`pipe.scheduler = ERSDEScheduler.from_config(pipe.scheduler.config)` on Stable Diffusion 1.5's PNDM config
    (leading spacing, steps_offset 1) gives DPMSolverMultistepScheduler.from_config's timesteps and σ's."""
    pndm = diffusers.PNDMScheduler(
        **SD, steps_offset=1, skip_prk_steps=True, set_alpha_to_one=False, timestep_spacing="leading"
    )
    ours, dpm = ERSDEScheduler.from_config(pndm.config), DPMSolverMultistepScheduler.from_config(pndm.config)
    ours.set_timesteps(20)
    dpm.set_timesteps(20)
    assert ours.timesteps[:3].tolist() == [941, 894, 847]  # k ⌊1000/21⌋ + 1 (DDIM's leading gives 951, 901, …)
    torch.testing.assert_close(ours.timesteps, dpm.timesteps, rtol=0, atol=0)
    np.testing.assert_allclose(ours._coeffs.lambdas, dpm.sigmas.double().numpy(), rtol=5e-5, atol=5e-6)
    assert ours.sigmas.dtype == torch.float32  # the public σ's (λ = σ/α) too, as DPM-Solver's
    torch.testing.assert_close(ours.sigmas, dpm.sigmas, rtol=5e-5, atol=5e-6)


@pytest.mark.parametrize(
    "kw",
    [dict(), SD, dict(beta_schedule="squaredcos_cap_v2"), dict(trained_betas=np.linspace(1e-4, 0.02, 50).tolist())],
)
def test_betas_alphas_and_add_noise_agree_with_ddpm(kw):
    ddpm, ours = DDPMScheduler(**kw), ERSDEScheduler(**kw)
    for name in ("betas", "alphas", "alphas_cumprod"):  # diffusers accumulates ᾱ in float32
        np.testing.assert_allclose(getattr(ours, name).numpy(), getattr(ddpm, name).double().numpy(), rtol=5e-5)
    x0 = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    n = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    assert len(ours) == len(ddpm.alphas_cumprod)
    t = torch.tensor([0, 7, 23, len(ours) - 1])
    torch.testing.assert_close(ours.add_noise(x0, n, t), ddpm.add_noise(x0, n, t), rtol=1e-5, atol=1e-5)


def test_add_noise_with_begin_index_uses_the_schedule():
    """img2img: after set_begin_index(k), add_noise uses the schedule's (α_k, σ_k), as DPM-Solver does (there
    the Karras σ_k, not ᾱ at the rounded timestep)."""
    ours, dpm = ERSDEScheduler(use_karras_sigmas=True), DPMSolverMultistepScheduler(use_karras_sigmas=True)
    x0 = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    z = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for s in (ours, dpm):
        s.set_timesteps(10)
        s.set_begin_index(4)
    t = ours.timesteps[4:5]
    lam = float(dpm.sigmas[4])
    ref = (x0 + lam * z) / (1 + lam**2) ** 0.5
    err = (ours.add_noise(x0, z, t) - ref).abs().max()
    assert err < 1e-4 * ref.abs().max()  # DPM-Solver's σ's are float32
    torch.testing.assert_close(dpm.add_noise(x0, z, t), ref, rtol=1e-5, atol=1e-6)
    ab = float(alphas_cumprod_from_config(ours.config)[int(t)])
    assert (ours.add_noise(x0, z, t) - (ab**0.5 * x0 + (1 - ab) ** 0.5 * z)).abs().max() > 10 * err


def test_step_shapes_tuple_output_and_scaling(unet):
    sched = ERSDEScheduler()
    assert sched.init_noise_sigma == 1.0 and sched.order == 1 and len(sched) == 1000
    sched.set_timesteps(4)
    assert sched.timesteps.shape == (4,) and torch.all(sched.timesteps[1:] < sched.timesteps[:-1])
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    assert sched.scale_model_input(x, sched.timesteps[0]) is x
    out = sched.step(
        unet(x, sched.timesteps[0]).sample, sched.timesteps[0], x, generator=torch.Generator().manual_seed(0)
    )
    sched.set_timesteps(4)
    tup = sched.step(
        unet(x, sched.timesteps[0]).sample,
        sched.timesteps[0],
        x,
        generator=torch.Generator().manual_seed(0),
        return_dict=False,
    )
    assert out.prev_sample.shape == x.shape and out.pred_original_sample.shape == x.shape
    torch.testing.assert_close(tup[0], out.prev_sample, rtol=0, atol=0)


@pytest.mark.parametrize("begin", [False, True])
@pytest.mark.parametrize("derivatives", ["published", "corrected"])
def test_starting_mid_schedule_equals_custom_timesteps(unet, begin, derivatives):
    """img2img-style: stepping from timesteps[3] (found by value, or set_begin_index(3)) equals a run on the
    custom timesteps timesteps[3:] (orders lowered, and the corrected start eq. (26), from there)."""
    a = ERSDEScheduler(derivatives=derivatives)
    a.set_timesteps(9)
    b = ERSDEScheduler(derivatives=derivatives)
    b.set_timesteps(timesteps=a.timesteps[3:])
    assert b.timesteps.dtype == torch.int64
    if begin:
        a.set_begin_index(3)
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    xa, xb = x.clone(), run_scheduler(unet, b, x.clone(), torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for t in a.timesteps[3:]:
            xa = a.step(unet(xa, t).sample, t, xa, generator=g).prev_sample
    assert a.step_index == 9
    torch.testing.assert_close(xa, xb, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(timestep_spacing="uniform"), "timestep_spacing must be one of .* got 'uniform'"),
        (dict(final_sigmas_type="sigma_max"), "final_sigmas_type must be one of .* got 'sigma_max'"),
        (dict(continuous_timesteps="linspace"), "continuous_timesteps must be one of .* got 'linspace'"),
        (dict(continuous_timesteps="time", use_karras_sigmas=True), "use_karras_sigmas=True conflicts"),
        (dict(steps_offset=-1), "steps_offset must be an integer >= 0, got -1"),
        (dict(solver_order=4), "order must be 1, 2 or 3"),
        (dict(prediction_type="flow_prediction"), "prediction_type must be one of"),
    ],
)
def test_bad_config(kw, match):
    with pytest.raises(ValueError, match=match):
        ERSDEScheduler(**kw)


def test_scheduler_bad_input(unet):
    sched = ERSDEScheduler()
    x = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    with pytest.raises(ValueError, match="set_timesteps"):
        sched.step(x, 999, x)
    with pytest.raises(ValueError, match="does not match the 3 custom timesteps"):
        sched.set_timesteps(num_inference_steps=5, timesteps=[900, 500, 100])
    with pytest.raises(ValueError, match=r"num_inference_steps must be an integer in \[1, 1000\].*got 1001"):
        sched.set_timesteps(1001)
    with pytest.raises(ValueError, match="needs num_inference_steps < 1000"):
        ERSDEScheduler(timestep_spacing="leading").set_timesteps(1000)
    ERSDEScheduler(continuous_timesteps="time").set_timesteps(1001)  # continuous timesteps: no such limit
    with pytest.raises(ValueError, match="strictly decreasing"):
        sched.set_timesteps(timesteps=[100, 500])
    sched.set_timesteps(2)
    with pytest.raises(ValueError, match="model output has shape"):
        sched.step(torch.zeros(1, 2, 8, 8, dtype=torch.float64), sched.timesteps[0], x)
    with pytest.raises(ValueError, match="not in the scheduler's timesteps"):
        sched.step(x, 123.5, x)
    for t in sched.timesteps:
        x = sched.step(unet(x, t).sample, t, x).prev_sample
    with pytest.raises(ValueError, match="all 2 steps have been taken"):
        sched.step(x, sched.timesteps[-1], x)


def test_import_without_diffusers_says_how_to_install():
    code = textwrap.dedent(
        """
        import importlib.abc, sys

        class NoDiffusers(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "diffusers" or name.startswith("diffusers."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, NoDiffusers())
        import ersde_theory.diffusers_integration, ersde_theory.models  # neither needs diffusers to import
        try:
            import ersde_theory.diffusers_integration.schedulers
        except ImportError as e:
            print(type(e).__name__, "|", e)
        else:
            print("imported")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.startswith("ImportError |") and 'pip install "ersde-theory[diffusers]"' in line
    assert "\n" not in line
