"""diffusers text-to-image pipelines with random weights (offline), and ``bench pipelines``: the run time of our
schedulers against diffusers' in the same pipelines, one scheduler swapped for another:

* VP pipelines ("sd", "sdxl", "img2img"): ``ERSDEScheduler`` against
  ``DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++")``, on Stable Diffusion's β schedule;
* flow pipelines ("sd3", "flux"; the tiny ones of :mod:`.flow_pipelines`): ``FlowMatchERSDEScheduler`` orders 1–3
  against ``FlowMatchEulerDiscreteScheduler``, on the released models' scheduler configs.

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
from .flow_pipelines import KINDS, RELEASED_SCHEDULER_CONFIGS, tiny_flow_pipeline, tiny_prompt_kwargs

VP_PIPELINES = ("sd", "sdxl", "img2img")
PIPELINES = (*VP_PIPELINES, *KINDS)  # KINDS: the flow pipelines, always tiny
SIZES = ("tiny", "full")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}
FLOW_ORDERS = (1, 2, 3)
FLOW_SIZE_PX = 32  # image height = width of the tiny flow pipelines (their VAE does not downsample)
SD_SCHEDULE = dict(
    beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, num_train_timesteps=1000, steps_offset=1
)


# the two-block layout of the tiny UNets of diffusers' StableDiffusion(XL)Pipeline tests
_TINY_UNET = dict(
    sample_size=16,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
)


def _unet_config(kind: str, size: str) -> dict:
    if size == "tiny" and kind != "sdxl":  # diffusers' StableDiffusionPipeline tests
        return dict(
            **_TINY_UNET, block_out_channels=(4, 8), layers_per_block=1, cross_attention_dim=8, norm_num_groups=2
        )
    if size == "tiny":  # diffusers' StableDiffusionXLPipeline tests
        return dict(
            **_TINY_UNET,
            block_out_channels=(2, 4),
            layers_per_block=2,
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
    if kind not in VP_PIPELINES:
        raise ValueError(f"pipeline must be one of {VP_PIPELINES}, got {kind!r}")
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


def schedulers(kind: str, orders=FLOW_ORDERS) -> dict:
    """The schedulers compared in pipeline ``kind``, ours first: label → scheduler. VP pipelines: ERSDEScheduler
    and DPMSolverMultistepScheduler(sde-dpmsolver++) on :data:`SD_SCHEDULE`; flow pipelines: FlowMatchERSDEScheduler
    of each order in ``orders`` (its default NSF) and FlowMatchEulerDiscreteScheduler, on the released model's
    scheduler config (:data:`RELEASED_SCHEDULER_CONFIGS`)."""
    diffusers = require_diffusers()
    from .scheduler import ERSDEScheduler, FlowMatchERSDEScheduler

    if kind in VP_PIPELINES:
        return {
            "ERSDEScheduler (ER-SDE-3, er_sde_5)": ERSDEScheduler(**SD_SCHEDULE),
            "DPMSolverMultistepScheduler (sde-dpmsolver++, order 2)": diffusers.DPMSolverMultistepScheduler(
                **SD_SCHEDULE, algorithm_type="sde-dpmsolver++"
            ),
        }
    if kind not in KINDS:
        raise ValueError(f"pipeline must be one of {PIPELINES}, got {kind!r}")
    config = diffusers.FlowMatchEulerDiscreteScheduler(**RELEASED_SCHEDULER_CONFIGS[kind]).config
    out = {}
    for k in orders:
        sched = FlowMatchERSDEScheduler.from_config(config, solver_order=k)
        out[f"FlowMatchERSDEScheduler (ER-SDE-{k}, {sched.config.nsf})"] = sched
    out["FlowMatchEulerDiscreteScheduler (Euler ODE)"] = diffusers.FlowMatchEulerDiscreteScheduler.from_config(config)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_pipeline(pipe, kw: dict, *, steps: int, reps: int, guidance: float, device) -> dict:
    """Best-of-``reps`` wall time of one pipeline call (latents out) after a warm-up, and, from one more call with
    the scheduler's ``step`` timed (the device synchronised around it), its time per step and share of a step.
    The batch is the pipeline's: images/s counts the latents it returns."""
    device = torch.device(device)
    sched = pipe.scheduler
    call = dict(kw, num_inference_steps=steps, guidance_scale=guidance, output_type="latent")
    images = []

    def run():
        _sync(device)
        t0 = time.perf_counter()
        out = pipe(**call, generator=torch.Generator(device).manual_seed(0)).images
        _sync(device)
        images.append(out.shape[0])
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
    step_ms, sched_ms = 1e3 * total / n, 1e3 * sum(spent) / n
    return {
        "model_calls": n,
        "batch": images[0],
        "total_s": total,
        "images_per_s": images[0] / total,
        "step_ms": step_ms,
        "scheduler_ms_per_step": sched_ms,
        "model_ms_per_step": step_ms - sched_ms,
        "scheduler_share_pct": 100 * sched_ms / step_ms,
    }


def _check_positive(**values) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")


def _pipeline(kind: str, *, size: str, batch: int, dtype, device):
    """(pipeline, call keywords) with ``batch`` prompts: a VP pipeline of ``size``, or a tiny flow pipeline."""
    if kind in KINDS:
        pipe = tiny_flow_pipeline(kind, dtype=dtype, device=device)
        kw = tiny_prompt_kwargs(kind, batch, dtype=dtype, device=device)
        return pipe, dict(kw, height=FLOW_SIZE_PX, width=FLOW_SIZE_PX)
    pipe, kw = build_pipeline(kind, None, size=size, dtype=dtype, device=device)
    return pipe, {k: v.repeat(batch, *(1,) * (v.dim() - 1)) if torch.is_tensor(v) else v for k, v in kw.items()}


def run_pipeline_bench(
    pipelines=PIPELINES,
    *,
    size: str | None = None,
    steps: int = 25,
    reps: int = 3,
    batch: int = 1,
    guidance: float = 7.5,
    device="cpu",
    dtype=None,
    orders=FLOW_ORDERS,
    log=print,
) -> dict:
    """Time our schedulers against diffusers' in each pipeline (module docstring): one row per (pipeline,
    scheduler) with :func:`time_pipeline`'s numbers. ``size`` (VP pipelines only; the flow ones are tiny) defaults
    to "full" on CUDA and "tiny" otherwise; ``dtype`` (a torch dtype or a key of :data:`DTYPES`) to float16 on CUDA
    and float32 otherwise. ``orders``: the FlowMatchERSDEScheduler orders timed."""
    device = torch.device(device)
    for k in pipelines:
        if k not in PIPELINES:
            raise ValueError(f"pipeline must be one of {PIPELINES}, got {k!r}")
    if size is not None and size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    if isinstance(dtype, str) and dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
    _check_positive(steps=steps, reps=reps, batch=batch)
    for k in orders:
        if k not in FLOW_ORDERS:
            raise ValueError(f"FlowMatchERSDEScheduler order must be one of {FLOW_ORDERS}, got {k!r}")
    size = size or ("full" if device.type == "cuda" else "tiny")
    dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    dtype = dtype or (torch.float16 if device.type == "cuda" else torch.float32)
    rows = []
    t0 = time.perf_counter()
    for kind in pipelines:
        pipe, kw = _pipeline(kind, size=size, batch=batch, dtype=dtype, device=device)
        for label, sched in schedulers(kind, orders).items():
            pipe.scheduler = sched
            r = dict(pipeline=kind, size="tiny" if kind in KINDS else size, scheduler=label)
            r.update(time_pipeline(pipe, kw, steps=steps, reps=reps, guidance=guidance, device=device))
            rows.append(r)
            if log:
                log(
                    f"{kind:8s} {label:55s} total {r['total_s']:8.3f} s  scheduler {r['scheduler_ms_per_step']:7.3f}"
                    f" ms/step ({r['scheduler_share_pct']:.2f} % of a step)"
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
        "batch": batch,
        "guidance_scale": guidance,
        "scheduler_configs": {"vp": SD_SCHEDULE, **RELEASED_SCHEDULER_CONFIGS},
        "rows": rows,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def markdown_table(res: dict) -> str:
    lines = [
        "# Pipeline run times: our schedulers vs diffusers'",
        "",
        f"Random-weight pipelines on {res['device_name']} ({res['dtype']}, {res['threads']} threads), "
        f"{res['steps']} steps, batch {res['batch']}, guidance {res['guidance_scale']}, latents out; total = best "
        f"of {res['reps']} after a warm-up; scheduler time per step from one more run with the device synchronised "
        "around `step`, model time = step − scheduler. Size: tiny = diffusers' pipeline-test models, full = the "
        "SD-1.5 (SDXL) UNet architecture. sd3 and flux are always tiny (a one-layer transformer), so their scheduler "
        "share overstates the share next to the released transformers.",
        "",
        "| pipeline | size | scheduler | total (s) | images/s | step (ms) | scheduler (ms/step) | model (ms/step) "
        "| scheduler share |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['pipeline']} | {r['size']} | {r['scheduler']} | {r['total_s']:.3f} | {r['images_per_s']:.2f} | "
            f"{r['step_ms']:.2f} | {r['scheduler_ms_per_step']:.3f} | {r['model_ms_per_step']:.2f} | "
            f"{r['scheduler_share_pct']:.2f} % |"
        )
    return "\n".join(lines) + "\n"


def write_results(res: dict, outdir):
    return list(write_report(outdir, "bench_pipelines", res, markdown_table(res)))
