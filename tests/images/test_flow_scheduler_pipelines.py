"""FlowMatchERSDEScheduler in diffusers' StableDiffusion3Pipeline and FluxPipeline, end to end: tiny random pipelines
built offline (ersde_theory.images.flow_pipelines; prompt embeddings passed directly), float64. A pipeline call
equals ``sample_er_sde_vp(prediction="flow")`` run by hand on the pipeline's transformer (its classifier-free
guidance, its latents, its schedule), and with order 1 and the ODE NSF it equals the pipeline with diffusers'
FlowMatchEulerDiscreteScheduler. Skipped without ``diffusers`` and ``transformers``."""

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")
from diffusers import FlowMatchEulerDiscreteScheduler  # noqa: E402
from diffusers.pipelines.flux.pipeline_flux import calculate_shift  # noqa: E402

from ersde_theory import sample_er_sde_vp  # noqa: E402
from ersde_theory.images.flow_pipelines import tiny_flow_pipeline, tiny_prompt_kwargs  # noqa: E402
from ersde_theory.images.scheduler import FlowMatchERSDEScheduler  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64
BATCH, SIZE, STEPS, GUIDANCE = 2, 16, 6, 4.0
CONFIGS = {
    "sd3": dict(shift=3.0),  # SD3's released scheduler config
    "flux": dict(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15),  # FLUX.1-dev's
}


@pytest.fixture(scope="module", params=["sd3", "flux"])
def pipe(request):
    kind = request.param
    p = tiny_flow_pipeline(kind, FlowMatchEulerDiscreteScheduler(**CONFIGS[kind]), dtype=F64)
    p.kind = kind
    return p


def gens(seed):
    return [torch.Generator().manual_seed(seed + b) for b in range(BATCH)]


def call(pipe, scheduler, output_type="latent"):
    """The pipeline with ``scheduler``, seeded (initial latents: generator seed 0; SDE noise: per-sample
    generators seeded 10, 11 on the scheduler)."""
    pipe.scheduler = scheduler
    scheduler.generator = gens(10)
    kw = tiny_prompt_kwargs(pipe.kind, BATCH, dtype=F64)
    if pipe.kind == "sd3":
        kw["guidance_scale"] = GUIDANCE
    out = pipe(
        **kw,
        num_inference_steps=STEPS,
        height=SIZE,
        width=SIZE,
        generator=torch.Generator().manual_seed(0),
        output_type=output_type,
    )
    return out.images


def by_hand(pipe, sched, **solver):
    """``sample_er_sde_vp(prediction="flow")`` on the pipeline's own transformer, inputs and schedule, written
    out here from the pipelines' documented call conventions (not through the scheduler)."""
    tr, kw = pipe.transformer, tiny_prompt_kwargs(pipe.kind, BATCH, dtype=F64)
    g = torch.Generator().manual_seed(0)
    if pipe.kind == "sd3":
        x = pipe.prepare_latents(BATCH, tr.config.in_channels, SIZE, SIZE, F64, "cpu", g)
        emb = torch.cat([kw["negative_prompt_embeds"], kw["prompt_embeds"]])
        pooled = torch.cat([kw["negative_pooled_prompt_embeds"], kw["pooled_prompt_embeds"]])

        def model(x, t):  # classifier-free guidance as StableDiffusion3Pipeline applies it
            out = tr(hidden_states=torch.cat([x, x]), timestep=torch.cat([t, t]).float(), encoder_hidden_states=emb,
                     pooled_projections=pooled, return_dict=False)[0]  # fmt: skip
            uncond, cond = out.chunk(2)
            return uncond + GUIDANCE * (cond - uncond)

        sched.set_timesteps(STEPS)
    else:
        x, img_ids = pipe.prepare_latents(BATCH, tr.config.in_channels // 4, SIZE, SIZE, F64, "cpu", g)
        txt_ids = torch.zeros(kw["prompt_embeds"].shape[1], 3, dtype=F64)
        cfg = sched.config
        mu = calculate_shift(x.shape[1], cfg.base_image_seq_len, cfg.max_image_seq_len, cfg.base_shift, cfg.max_shift)

        def model(x, t):  # FluxPipeline's call (timestep in [0, 1], no guidance embedding in the tiny model)
            return tr(hidden_states=x, timestep=t.to(F64) / 1000, guidance=None, txt_ids=txt_ids, img_ids=img_ids,
                      pooled_projections=kw["pooled_prompt_embeds"], encoder_hidden_states=kw["prompt_embeds"],
                      return_dict=False)[0]  # fmt: skip

        sched.set_timesteps(sigmas=np.linspace(1.0, 1 / STEPS, STEPS), mu=mu)
    s = sched.sigmas
    ts = torch.cat([sched.timesteps, torch.zeros(1)])  # float32, as the pipeline feeds them
    with torch.no_grad():
        return sample_er_sde_vp(model, x, 1 - s, s, prediction="flow", timesteps=ts, disable=True, **solver)


@pytest.mark.parametrize(
    "solver",
    [dict(solver_order=3, nsf="er_sde_5"), dict(solver_order=3, nsf="sde", derivatives="corrected")],
    ids=["er_sde_5", "sde-corrected"],
)
def test_pipeline_equals_sample_er_sde_vp_by_hand(pipe, solver):
    sched = FlowMatchERSDEScheduler.from_config(pipe.scheduler.config, **solver)
    got = call(pipe, sched)
    order, deriv = solver["solver_order"], solver.get("derivatives", "published")
    ref = by_hand(pipe, FlowMatchERSDEScheduler.from_config(sched.config), order=order, nsf=solver["nsf"],
                  derivatives=deriv, generator=gens(10))  # fmt: skip
    assert got.shape == ref.shape and got.dtype == F64
    assert float(got.std()) > 0.1  # a real sample, not a degenerate one
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(sched.config)


def test_pipeline_with_order_1_ode_equals_diffusers_euler(pipe):
    base = pipe.scheduler.config
    euler = call(pipe, FlowMatchEulerDiscreteScheduler.from_config(base))
    er1 = call(pipe, FlowMatchERSDEScheduler.from_config(base, solver_order=1, nsf="ode"))
    diff = float((er1 - euler).abs().max())
    print(f"{pipe.kind}: ER-SDE-1 (ode) vs FlowMatchEulerDiscreteScheduler pipeline, max |diff| = {diff:.3g}")
    assert diff < 1e-5 * float(euler.abs().max())  # diffusers steps in float32
    er3 = call(pipe, FlowMatchERSDEScheduler.from_config(base, nsf="ode"))
    assert float((er3 - euler).abs().max()) > 1e-3  # ER-SDE-3 is another solver
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(base)


def test_pipeline_decodes_images(pipe):
    base = pipe.scheduler.config
    img = call(pipe, FlowMatchERSDEScheduler.from_config(base), output_type="pt")
    assert img.shape == (BATCH, 3, SIZE, SIZE) and bool(torch.isfinite(img).all())
    again = call(pipe, FlowMatchERSDEScheduler.from_config(base), output_type="pt")
    assert torch.equal(img, again)  # the scheduler's generators make the SDE noise reproducible
    pipe.scheduler = FlowMatchEulerDiscreteScheduler.from_config(base)


def test_sd3_img2img_pipeline_runs_from_the_begin_index():
    """StableDiffusion3Img2ImgPipeline: set_begin_index + scale_noise; strength 1 starts at σ = 1 and equals the
    text-to-image pipeline with the same latents' noise source only through the image, so here: a strength < 1
    run takes fewer steps (the transformer is called STEPS·strength times) and returns finite latents."""
    from diffusers import StableDiffusion3Img2ImgPipeline

    base = tiny_flow_pipeline("sd3", FlowMatchEulerDiscreteScheduler(**CONFIGS["sd3"]), dtype=F64)
    pipe = StableDiffusion3Img2ImgPipeline(**base.components)
    pipe.set_progress_bar_config(disable=True)
    sched = FlowMatchERSDEScheduler.from_config(base.scheduler.config, derivatives="corrected")
    pipe.scheduler = sched
    calls = []
    pipe.transformer.register_forward_hook(lambda m, i, o: calls.append(1))
    image = torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3), dtype=F64)
    out = pipe(**tiny_prompt_kwargs("sd3", 1, dtype=F64), image=image, strength=0.5, num_inference_steps=STEPS,
               guidance_scale=GUIDANCE, generator=torch.Generator().manual_seed(0), output_type="latent").images  # fmt: skip
    assert len(calls) == STEPS // 2 and sched.begin_index == STEPS - STEPS // 2
    assert sched.step_index == STEPS and bool(torch.isfinite(out).all())
