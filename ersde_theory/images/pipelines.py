"""diffusers text-to-image pipelines with random weights (offline), and ``bench pipelines``: the run time of
``ERSDEScheduler`` against ``DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++")`` in the same
pipelines.

:func:`build_pipeline` builds StableDiffusionPipeline ("sd"), StableDiffusionXLPipeline ("sdxl") or
StableDiffusionImg2ImgPipeline ("img2img") from randomly initialised components, nothing downloaded:

* ``size="tiny"``: the small UNet2DConditionModel and AutoencoderKL of diffusers' own pipeline tests;
* ``size="full"``: a UNet2DConditionModel with the Stable Diffusion 1.5 architecture (SDXL's for "sdxl") at its
  native latent size (64², SDXL 128²), i.e. the real per-step cost, with random weights.

The prompt is given as ``prompt_embeds`` (and SDXL's pooled embeds), so no text encoder or tokenizer is needed;
img2img starts from a latent image (4 channels, no VAE encode). The scheduler is the only thing that differs
between the timed runs.
"""

from __future__ import annotations

import functools
import time

import torch

from ..evaluation.reports import write_report
from .adapters import require_diffusers

PIPELINES = ("sd", "sdxl", "img2img")
SIZES = ("tiny", "full")
SD_SCHEDULE = dict(
    beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, num_train_timesteps=1000, steps_offset=1
)


def _unet_config(kind: str, size: str) -> dict:
    if size == "tiny" and kind != "sdxl":  # diffusers' StableDiffusionPipeline tests
        return dict(
            block_out_channels=(4, 8),
            layers_per_block=1,
            sample_size=16,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=8,
            norm_num_groups=2,
        )
    if size == "tiny":  # diffusers' StableDiffusionXLPipeline tests
        return dict(
            block_out_channels=(2, 4),
            layers_per_block=2,
            sample_size=16,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(2, 4),
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=8,
            transformer_layers_per_block=(1, 2),
            projection_class_embeddings_input_dim=80,  # 6 · 8 + 32 (pooled embedding)
            cross_attention_dim=64,
            norm_num_groups=1,
        )
    if kind != "sdxl":  # Stable Diffusion 1.5 (UNet2DConditionModel's defaults otherwise)
        return dict(sample_size=64, cross_attention_dim=768)
    return dict(  # Stable Diffusion XL base
        sample_size=128,
        block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10),
        attention_head_dim=(5, 10, 20),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816,  # 6 · 256 + 1280 (pooled embedding)
        cross_attention_dim=2048,
    )


def build_pipeline(kind: str, scheduler, *, size: str = "tiny", dtype=torch.float32, device="cpu", seed: int = 0):
    """(pipeline, call keywords) for ``kind`` ∈ {sd, sdxl, img2img} with random weights (module docstring).

    The keywords hold the prompt embeddings (drawn from ``seed``), ``height``/``width`` (and img2img's latent
    ``image``, ``strength`` 0.6); add ``num_inference_steps``, ``generator``, ``guidance_scale``,
    ``output_type`` to call it."""
    diffusers = require_diffusers()
    if kind not in PIPELINES:
        raise ValueError(f"pipeline must be one of {PIPELINES}, got {kind!r}")
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    device = torch.device(device)
    cfg = _unet_config(kind, size)
    with torch.device(device):  # a full-size UNet is initialised on the device directly
        torch.manual_seed(seed)
        unet = diffusers.UNet2DConditionModel(in_channels=4, out_channels=4, **cfg)
        torch.manual_seed(seed)
        vae = diffusers.AutoencoderKL(
            block_out_channels=[4, 8],
            in_channels=3,
            out_channels=3,
            down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
            up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
            latent_channels=4,
            norm_num_groups=2,
        )
    if dtype != torch.float32:  # (a cast to float32 only makes diffusers log a warning)
        unet, vae = unet.to(dtype=dtype), vae.to(dtype=dtype)
    unet, vae = unet.eval().requires_grad_(False), vae.eval().requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(1, 77, cfg["cross_attention_dim"], generator=g, dtype=torch.float32).to(device, dtype)
    latent = cfg["sample_size"]
    px = latent * 2 ** (len(vae.config.block_out_channels) - 1)
    kw = dict(prompt_embeds=emb, negative_prompt_embeds=torch.zeros_like(emb), height=px, width=px)
    common = dict(vae=vae, unet=unet, scheduler=scheduler, text_encoder=None, tokenizer=None)
    if kind == "sdxl":
        pooled = cfg["projection_class_embeddings_input_dim"] - 6 * cfg["addition_time_embed_dim"]
        pe = torch.randn(1, pooled, generator=g, dtype=torch.float32).to(device, dtype)
        kw.update(pooled_prompt_embeds=pe, negative_pooled_prompt_embeds=torch.zeros_like(pe))
        pipe = diffusers.StableDiffusionXLPipeline(
            **common, text_encoder_2=None, tokenizer_2=None, add_watermarker=False
        )
    else:
        cls = diffusers.StableDiffusionPipeline if kind == "sd" else diffusers.StableDiffusionImg2ImgPipeline
        pipe = cls(**common, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
        if kind == "img2img":
            image = torch.randn(1, 4, latent, latent, generator=g, dtype=torch.float32).to(device, dtype)
            kw = dict(kw, image=image, strength=0.6)
            del kw["height"], kw["width"]
    pipe.set_progress_bar_config(disable=True)
    return pipe, kw


def schedulers(config: dict) -> dict:
    """The two schedulers compared, on the same β schedule: label → scheduler."""
    diffusers = require_diffusers()
    from .scheduler import ERSDEScheduler

    return {
        "ERSDEScheduler (ER-SDE-3, er_sde_5)": ERSDEScheduler(**config),
        "DPMSolverMultistepScheduler (sde-dpmsolver++, order 2)": diffusers.DPMSolverMultistepScheduler(
            **config, algorithm_type="sde-dpmsolver++"
        ),
    }


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_pipeline(pipe, kw: dict, *, steps: int, reps: int, guidance: float, device) -> dict:
    """Best-of-``reps`` wall time of one pipeline call (latents out), and, from one more call with the
    scheduler's ``step`` timed (the device synchronised around it), its time per step and share of a step."""
    device = torch.device(device)
    sched = pipe.scheduler
    call = dict(kw, num_inference_steps=steps, guidance_scale=guidance, output_type="latent")

    def run():
        _sync(device)
        t0 = time.perf_counter()
        pipe(**call, generator=torch.Generator(device).manual_seed(0))
        _sync(device)
        return time.perf_counter() - t0

    run()  # warm-up
    total = min(run() for _ in range(reps))
    spent = []
    step = sched.step

    @functools.wraps(step)  # keeps the signature, so the pipeline still passes its generator
    def timed_step(*a, **k):
        _sync(device)
        t0 = time.perf_counter()
        out = step(*a, **k)
        _sync(device)
        spent.append(time.perf_counter() - t0)
        return out

    sched.step = timed_step
    try:
        run()
    finally:
        del sched.step
    n = len(spent)
    per_step = sum(spent) / n
    return {
        "model_calls": n,
        "total_s": total,
        "step_ms": 1e3 * total / n,
        "scheduler_ms_per_step": 1e3 * per_step,
        "scheduler_share_pct": 100 * per_step / (total / n),
    }


def run_pipeline_bench(
    pipelines=PIPELINES,
    *,
    size: str | None = None,
    steps: int = 25,
    reps: int = 3,
    guidance: float = 7.5,
    device="cpu",
    dtype=None,
    log=print,
) -> dict:
    """Time ERSDEScheduler against DPMSolverMultistepScheduler(sde-dpmsolver++) in each pipeline (module
    docstring). ``size`` defaults to "full" on CUDA and "tiny" otherwise; ``dtype`` to float16 on CUDA."""
    device = torch.device(device)
    size = size or ("full" if device.type == "cuda" else "tiny")
    dtype = dtype or (torch.float16 if device.type == "cuda" else torch.float32)
    for k in pipelines:
        if k not in PIPELINES:
            raise ValueError(f"pipeline must be one of {PIPELINES}, got {k!r}")
    rows = []
    t0 = time.perf_counter()
    for kind in pipelines:
        pipe, kw = build_pipeline(kind, None, size=size, dtype=dtype, device=device)
        for label, sched in schedulers(SD_SCHEDULE).items():
            pipe.scheduler = sched
            r = dict(pipeline=kind, scheduler=label)
            r.update(time_pipeline(pipe, kw, steps=steps, reps=reps, guidance=guidance, device=device))
            rows.append(r)
            if log:
                log(
                    f"{kind:8s} {label:55s} total {r['total_s']:8.3f} s  scheduler {r['scheduler_ms_per_step']:7.3f}"
                    f" ms/step ({r['scheduler_share_pct']:.1f} % of a step)"
                )
        del pipe
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "size": size,
        "dtype": str(dtype).removeprefix("torch."),
        "steps": steps,
        "reps": reps,
        "guidance_scale": guidance,
        "schedule": SD_SCHEDULE,
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def markdown_table(res: dict) -> str:
    lines = [
        "# Pipeline run times: ERSDEScheduler vs DPMSolverMultistepScheduler (sde-dpmsolver++)",
        "",
        f"{res['size']} random-weight pipelines on {res['device_name']} ({res['dtype']}, {res['threads']} threads), "
        f"{res['steps']} steps, guidance {res['guidance_scale']}, batch 1, latents out; total = best of "
        f"{res['reps']}; scheduler time per step from a run with the device synchronised around `step`.",
        "",
        "| pipeline | scheduler | model calls | total (s) | step (ms) | scheduler (ms/step) | scheduler share |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['pipeline']} | {r['scheduler']} | {r['model_calls']} | {r['total_s']:.3f} | {r['step_ms']:.2f} | "
            f"{r['scheduler_ms_per_step']:.3f} | {r['scheduler_share_pct']:.1f} % |"
        )
    return "\n".join(lines) + "\n"


def write_results(res: dict, outdir):
    return list(write_report(outdir, "bench_pipelines", res, markdown_table(res)))
