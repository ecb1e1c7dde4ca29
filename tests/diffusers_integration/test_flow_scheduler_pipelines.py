"""FlowMatchERSDEScheduler in diffusers' StableDiffusion3Pipeline and FluxPipeline, end to end: tiny random pipelines
built offline (diffusers_integration/pipelines.py; prompt embeddings passed directly), float64. A pipeline call
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
from ersde_theory.diffusers_integration.pipelines import (  # noqa: E402
    RELEASED_SCHEDULER_CONFIGS,
    tiny_flow_pipeline,
    tiny_prompt_kwargs,
)
from ersde_theory.diffusers_integration.schedulers import FlowMatchERSDEScheduler  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64
BATCH, SIZE, STEPS, GUIDANCE = 2, 16, 6, 4.0


@pytest.fixture(scope="module", params=["sd3", "flux"])
def pipe(request):
    p = tiny_flow_pipeline(request.param, dtype=F64)
    p.kind = request.param
    return p


def euler_config(kind):
    return FlowMatchEulerDiscreteScheduler(**RELEASED_SCHEDULER_CONFIGS[kind]).config


def gens(seed):
    return [torch.Generator().manual_seed(seed + b) for b in range(BATCH)]


def call(pipe, scheduler, output_type="latent", batch=BATCH, **kw):
    """The pipeline with ``scheduler``, seeded (initial latents: generator seed 0; SDE noise: per-sample
    generators seeded 10, 11, … on the scheduler)."""
    pipe.scheduler = scheduler
    scheduler.generator = gens(10)[:batch]
    kw.update(tiny_prompt_kwargs(pipe.kind, batch, dtype=F64))
    if pipe.kind == "sd3":
        kw["guidance_scale"] = GUIDANCE
    g = torch.Generator().manual_seed(0)
    return pipe(**kw, num_inference_steps=STEPS, height=SIZE, width=SIZE, generator=g, output_type=output_type).images


def sd3_guided(pipe, batch=BATCH):
    """StableDiffusion3Pipeline's model call with classifier-free guidance, written out from its documented
    convention (unconditional and conditional halves, ``uncond + scale (cond − uncond)``)."""
    tr, kw = pipe.transformer, tiny_prompt_kwargs("sd3", batch, dtype=F64)
    emb = torch.cat([kw["negative_prompt_embeds"], kw["prompt_embeds"]])
    pooled = torch.cat([kw["negative_pooled_prompt_embeds"], kw["pooled_prompt_embeds"]])

    def model(x, t):
        out = tr(
            hidden_states=torch.cat([x, x]),
            timestep=torch.cat([t, t]).float(),
            encoder_hidden_states=emb,
            pooled_projections=pooled,
            return_dict=False,
        )[0]
        uncond, cond = out.chunk(2)
        return uncond + GUIDANCE * (cond - uncond)

    return model


def by_hand(pipe, sched, **solver):
    """``sample_er_sde_vp(prediction="flow")`` on the pipeline's own transformer, initial latents and schedule
    (``sched`` only builds the schedule; the loop is sample_er_sde_vp's)."""
    tr = pipe.transformer
    g = torch.Generator().manual_seed(0)
    if pipe.kind == "sd3":
        x = pipe.prepare_latents(BATCH, tr.config.in_channels, SIZE, SIZE, F64, "cpu", g)
        model = sd3_guided(pipe)
        sched.set_timesteps(STEPS)
    else:
        kw = tiny_prompt_kwargs("flux", BATCH, dtype=F64)
        x, img_ids = pipe.prepare_latents(BATCH, tr.config.in_channels // 4, SIZE, SIZE, F64, "cpu", g)
        txt_ids = torch.zeros(kw["prompt_embeds"].shape[1], 3, dtype=F64)
        cfg = sched.config
        mu = calculate_shift(x.shape[1], cfg.base_image_seq_len, cfg.max_image_seq_len, cfg.base_shift, cfg.max_shift)

        def model(x, t):  # FluxPipeline's call (timestep in [0, 1]; the tiny model has no guidance embedding)
            return tr(
                hidden_states=x,
                timestep=t.to(F64) / 1000,
                guidance=None,
                txt_ids=txt_ids,
                img_ids=img_ids,
                pooled_projections=kw["pooled_prompt_embeds"],
                encoder_hidden_states=kw["prompt_embeds"],
                return_dict=False,
            )[0]

        sched.set_timesteps(sigmas=np.linspace(1.0, 1 / STEPS, STEPS), mu=mu)  # FluxPipeline's base sigmas
    s = sched.sigmas
    ts = torch.cat([sched.timesteps, torch.zeros(1)])  # float32, as the pipeline feeds them
    with torch.no_grad():
        return sample_er_sde_vp(model, x, 1 - s, s, prediction="flow", timesteps=ts, disable=True, **solver)


@pytest.mark.parametrize(
    "solver",
    [dict(solver_order=3, nsf="er_sde_5"), dict(solver_order=2, nsf="sde", derivatives="corrected")],
    ids=["er_sde_5", "sde-order2"],
)
def test_pipeline_equals_sample_er_sde_vp_by_hand(pipe, solver):
    sched = FlowMatchERSDEScheduler.from_config(euler_config(pipe.kind), **solver)
    got = call(pipe, sched)
    order, deriv = solver["solver_order"], solver.get("derivatives", "published")
    ref = by_hand(
        pipe,
        FlowMatchERSDEScheduler.from_config(sched.config),
        order=order,
        nsf=solver["nsf"],
        derivatives=deriv,
        generator=gens(10),
    )
    assert got.shape == ref.shape and got.dtype == F64
    assert float(got.std()) > 0.1  # a real sample, not a degenerate one
    print(
        f"{pipe.kind} {solver}: pipeline vs sample_er_sde_vp by hand, max |diff| = {float((got - ref).abs().max()):.3g}"
    )
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


def test_pipeline_with_order_1_ode_equals_diffusers_euler(pipe):
    base = euler_config(pipe.kind)
    euler = call(pipe, FlowMatchEulerDiscreteScheduler.from_config(base))
    er1 = call(pipe, FlowMatchERSDEScheduler.from_config(base, solver_order=1, nsf="ode"))
    diff = float((er1 - euler).abs().max())
    print(f"{pipe.kind}: ER-SDE-1 (ode) vs FlowMatchEulerDiscreteScheduler pipeline, max |diff| = {diff:.3g}")
    assert diff < 1e-5 * float(euler.abs().max())  # diffusers steps in float32
    er3 = call(pipe, FlowMatchERSDEScheduler.from_config(base, nsf="ode"))
    assert float((er3 - euler).abs().max()) > 1e-3  # ER-SDE-3 is another solver


def test_pipeline_decodes_images_reproducibly_per_sample(pipe):
    base = euler_config(pipe.kind)
    img = call(pipe, FlowMatchERSDEScheduler.from_config(base), output_type="pt")
    assert img.shape == (BATCH, 3, SIZE, SIZE) and bool(torch.isfinite(img).all())
    again = call(pipe, FlowMatchERSDEScheduler.from_config(base), output_type="pt")
    assert torch.equal(img, again)  # the scheduler's generators make the SDE noise reproducible
    lat = call(pipe, FlowMatchERSDEScheduler.from_config(base))
    one = call(pipe, FlowMatchERSDEScheduler.from_config(base), batch=1)  # sample 0 alone: same initial noise
    torch.testing.assert_close(one[0], lat[0], rtol=0, atol=1e-12)


def test_sd3_img2img_pipeline_equals_sample_er_sde_vp_from_the_begin_index():
    """StableDiffusion3Img2ImgPipeline (strength 0.5, image given as latents): the pipeline calls set_begin_index(b)
    and scale_noise, x_b = (1 − σ_b) x_image + σ_b ε, then steps from b: sample_er_sde_vp on σ_b … 0 from x_b."""
    from diffusers import StableDiffusion3Img2ImgPipeline
    from diffusers.utils.torch_utils import randn_tensor

    pipe = StableDiffusion3Img2ImgPipeline(**tiny_flow_pipeline("sd3", dtype=F64).components)
    pipe.set_progress_bar_config(disable=True)
    sched = FlowMatchERSDEScheduler.from_config(euler_config("sd3"), derivatives="corrected")
    pipe.scheduler, sched.generator = sched, gens(10)
    image = torch.randn(BATCH, 4, SIZE, SIZE, generator=torch.Generator().manual_seed(3), dtype=F64)  # latents
    out = pipe(
        **tiny_prompt_kwargs("sd3", BATCH, dtype=F64),
        image=image,
        strength=0.5,
        num_inference_steps=STEPS,
        guidance_scale=GUIDANCE,
        generator=torch.Generator().manual_seed(0),
        output_type="latent",
    ).images
    b = STEPS - STEPS // 2
    assert sched.begin_index == b and sched.step_index == STEPS
    s = sched.sigmas[b:]
    eps = randn_tensor(image.shape, generator=torch.Generator().manual_seed(0), dtype=F64)  # the pipeline's draw
    xb = (1 - s[0]) * image + s[0] * eps
    ts = torch.cat([sched.timesteps[b:], torch.zeros(1)])
    with torch.no_grad():
        ref = sample_er_sde_vp(
            sd3_guided(pipe),
            xb,
            1 - s,
            s,
            prediction="flow",
            timesteps=ts,
            derivatives="corrected",
            generator=gens(10),
            disable=True,
        )
    diff = float((out - ref).abs().max())
    print(f"sd3 img2img vs sample_er_sde_vp from sigma_b = {float(s[0]):.4f}: max |diff| = {diff:.3g}")
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
