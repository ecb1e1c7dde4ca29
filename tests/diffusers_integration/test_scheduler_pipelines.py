"""ERSDEScheduler end to end in StableDiffusionPipeline, StableDiffusionXLPipeline and StableDiffusionImg2ImgPipeline,
built offline from small random components (diffusers' own pipeline-test UNet/VAE configs; prompt embeddings given
directly, so no tokenizer): the pipeline's latents equal sample_er_sde_vp (docs/theory.md eqs. (19)–(28)) on the
same UNet, noise and schedule, with classifier-free guidance written out here. Also ``bench pipelines`` (these
and the tiny SD3/Flux pipelines).
Skipped without the optional ``diffusers`` extra (and transformers, which diffusers' pipelines import)."""

import json

import numpy as np
import pytest
import torch

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from ersde_theory import sample_er_sde_vp  # noqa: E402
from ersde_theory.cli import main  # noqa: E402
from ersde_theory.coefficients.schedules import get_vp_discrete_schedule  # noqa: E402
from ersde_theory.diffusers_integration.pipelines import SD_SCHEDULE, build_pipeline  # noqa: E402
from ersde_theory.diffusers_integration.schedulers import ERSDEScheduler  # noqa: E402
from ersde_theory.diffusers_integration.unet import alphas_cumprod_from_config  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
F64 = torch.float64


def guided(unet, cond, uncond, scale, added=None, added_uncond=None):
    """ε̂ = ε(uncond) + scale (ε(cond) − ε(uncond)) with two separate UNet calls (the pipelines batch them)."""

    def eps(x, t, emb, add):
        kw = {"added_cond_kwargs": add} if add is not None else {}
        return unet(x, t, encoder_hidden_states=emb.expand(x.shape[0], -1, -1), **kw).sample

    def model(x, t):
        e_c = eps(x, t, cond, added)
        if scale == 1.0:
            return e_c
        e_u = eps(x, t, uncond, added_uncond)
        return e_u + scale * (e_c - e_u)

    return model


def run(pipe, kw, n, scale, seed, output_type="latent"):
    """The pipeline's output for ``n`` steps at guidance ``scale``, its generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return pipe(**kw, num_inference_steps=n, guidance_scale=scale, generator=gen, output_type=output_type).images


def assert_same_latents(lat, ref, big=10):
    assert ref.abs().max() > big  # a random UNet's guided ε̂ is large: the comparison is not trivial
    torch.testing.assert_close(lat, ref, rtol=1e-10, atol=1e-10 * float(ref.abs().max()))


def schedule(sched, n):
    c = sched.config
    return get_vp_discrete_schedule(
        n,
        alphas_cumprod_from_config(c),
        spacing=c.timestep_spacing,
        steps_offset=c.steps_offset,
        karras=c.use_karras_sigmas,
        final_zero=c.final_sigmas_type == "zero",
    )


@pytest.mark.parametrize("cfg", [{}, dict(use_karras_sigmas=True, solver_order=2, timestep_spacing="trailing")])
def test_stable_diffusion_pipeline_equals_sample_er_sde_vp(cfg):
    pipe, kw = build_pipeline("sd", ERSDEScheduler(**SD_SCHEDULE, **cfg), dtype=F64)
    n, scale = 6, 7.5
    out = run(pipe, kw, n, scale, 0, output_type="np")
    lat = run(pipe, kw, n, scale, 0)
    g = torch.Generator().manual_seed(0)  # the pipeline draws x_T first, then each step's noise
    x = torch.randn(lat.shape, generator=g, dtype=F64)
    a, s, t = schedule(pipe.scheduler, n)
    model = guided(pipe.unet, kw["prompt_embeds"], kw["negative_prompt_embeds"], scale)
    with torch.no_grad():
        ref = sample_er_sde_vp(model, x, a, s, timesteps=t, order=pipe.scheduler.config.solver_order, generator=g)
        img = (pipe.vae.decode(ref / pipe.vae.config.scaling_factor).sample / 2 + 0.5).clamp(0, 1)
    assert lat.shape == (1, 4, 16, 16)
    assert_same_latents(lat, ref)
    np.testing.assert_allclose(out, img.permute(0, 2, 3, 1).numpy(), rtol=0, atol=1e-7)  # float32 output


def test_stable_diffusion_xl_pipeline_equals_sample_er_sde_vp():
    pipe, kw = build_pipeline("sdxl", ERSDEScheduler(**SD_SCHEDULE, nsf="er_sde_3"), dtype=F64)
    n, scale = 5, 5.0
    lat = run(pipe, kw, n, scale, 1)
    px = kw["height"]
    time_ids = torch.tensor([[px, px, 0, 0, px, px]], dtype=F64)  # SDXL micro-conditioning: size, crop, target
    added = {"text_embeds": kw["pooled_prompt_embeds"], "time_ids": time_ids}
    added_u = {"text_embeds": kw["negative_pooled_prompt_embeds"], "time_ids": time_ids}
    model = guided(pipe.unet, kw["prompt_embeds"], kw["negative_prompt_embeds"], scale, added, added_u)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(lat.shape, generator=g, dtype=F64)
    a, s, t = schedule(pipe.scheduler, n)
    with torch.no_grad():
        ref = sample_er_sde_vp(model, x, a, s, timesteps=t, nsf="er_sde_3", generator=g)
    assert_same_latents(lat, ref)


def test_img2img_pipeline_equals_sample_er_sde_vp_from_the_begin_index():
    """strength 0.6 of 10 steps: the pipeline noises the image to the schedule's 5th point (set_begin_index(4)) and
    runs the last 6 steps, with an empty history: sample_er_sde_vp on the schedule's tail."""
    pipe, kw = build_pipeline("img2img", ERSDEScheduler(**SD_SCHEDULE), dtype=F64)
    n, scale, k = 10, 3.0, 4
    lat = run(pipe, kw, n, scale, 2)
    assert pipe.scheduler.begin_index == k and pipe.scheduler.step_index == n
    g = torch.Generator().manual_seed(2)
    z = torch.randn(lat.shape, generator=g, dtype=F64)
    a, s, t = schedule(pipe.scheduler, n)
    x = float(a[k]) * kw["image"] + float(s[k]) * z
    model = guided(pipe.unet, kw["prompt_embeds"], kw["negative_prompt_embeds"], scale)
    with torch.no_grad():
        ref = sample_er_sde_vp(model, x, a[k:], s[k:], timesteps=t[k:], generator=g)
    assert_same_latents(lat, ref, big=1)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--steps", "0"], "steps must be an integer >= 1, got 0"),
        (["--batch", "0"], "batch must be an integer >= 1, got 0"),
        (["--orders", "4"], "order must be one of (1, 2, 3), got 4"),
    ],
)
def test_bench_pipelines_refuses_bad_input_before_writing(tmp_path, capsys, flags, message):
    out = tmp_path / "never"
    assert main(["bench", "pipelines", *flags, "--device", "cpu", "--outdir", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_build_pipeline_refuses_unknown_kinds():
    with pytest.raises(ValueError, match="pipeline must be one of .* got 'kandinsky'"):
        build_pipeline("kandinsky", None)
    with pytest.raises(ValueError, match="pipeline must be one of .* got 'sd3'"):
        build_pipeline("sd3", None)  # a flow pipeline: tiny_flow_pipeline builds it


def test_bench_pipelines_quick_vp_and_flow(tmp_path, capsys):
    """One report for both scheduler families: ERSDEScheduler vs DPM-Solver++ SDE in SD, FlowMatchERSDEScheduler
    orders 1–3 vs flow Euler in the tiny SD3 and Flux pipelines, batch 2."""
    argv = ["bench", "pipelines", "--quick", "--pipelines", "sd", "sd3", "flux", "--device", "cpu"]
    assert main([*argv, "--outdir", str(tmp_path), "--reps", "1", "--batch", "2"]) == 0
    res = json.loads((tmp_path / "bench_pipelines.json").read_text())
    rows = res["rows"]
    assert res["steps"] == 10 and res["reps"] == 1 and res["batch"] == 2
    flow = [f"FlowMatchERSDEScheduler (ER-SDE-{k}, er_sde_5)" for k in (1, 2, 3)]
    flow.append("FlowMatchEulerDiscreteScheduler (Euler ODE)")
    assert [(r["pipeline"], r["size"], r["scheduler"]) for r in rows] == [
        ("sd", "tiny", "ERSDEScheduler (ER-SDE-3, er_sde_5)"),
        ("sd", "tiny", "DPMSolverMultistepScheduler (sde-dpmsolver++, order 2)"),
        *(("sd3", "tiny", name) for name in flow),
        *(("flux", "tiny", name) for name in flow),
    ]
    for r in rows:
        assert r["model_calls"] == 10 and r["batch"] == 2  # one scheduler step per model call, 2 images per call
        assert r["total_s"] > 0 and r["scheduler_ms_per_step"] > 0 and r["model_ms_per_step"] > 0
        assert r["images_per_s"] == pytest.approx(2 / r["total_s"])
        assert r["step_ms"] == pytest.approx(1e3 * r["total_s"] / 10)
        assert r["model_ms_per_step"] == pytest.approx(r["step_ms"] - r["scheduler_ms_per_step"])
        assert r["scheduler_share_pct"] == pytest.approx(100 * r["scheduler_ms_per_step"] / r["step_ms"])
    assert res["scheduler_configs"]["flux"]["use_dynamic_shifting"] is True
    md = (tmp_path / "bench_pipelines.md").read_text()
    assert "scheduler share" in md and "| sd | tiny | ERSDEScheduler" in md
    assert "| flux | tiny | FlowMatchERSDEScheduler (ER-SDE-3" in md and "sd3 and flux are always tiny" in md
    assert "FlowMatchEulerDiscreteScheduler" in capsys.readouterr().out
