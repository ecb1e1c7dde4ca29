"""diffusers pipelines built offline with random weights (nothing downloaded), and the schedulers a benchmark
compares in each.

* VP text-to-image pipelines (:func:`build_pipeline`): StableDiffusionPipeline ("sd"), StableDiffusionXLPipeline
  ("sdxl") and StableDiffusionImg2ImgPipeline ("img2img") from randomly initialised components. ``size="tiny"``:
  the small UNet2DConditionModel and AutoencoderKL of diffusers' own pipeline tests; ``size="full"``: a
  UNet2DConditionModel with the Stable Diffusion 1.5 architecture (SDXL's for "sdxl") at its native latent size
  (64², SDXL 128²), i.e. the real per-step cost. The prompt is given as ``prompt_embeds`` (and SDXL's pooled
  embeds), so no text encoder or tokenizer is needed; img2img starts from a latent image (4 channels, no VAE
  encode).
* Tiny Stable Diffusion 3 and Flux pipelines (:func:`tiny_flow_pipeline`): the components have the sizes of
  diffusers' own pipeline tests (a one-layer transformer, a one-block VAE); the text encoders and tokenizers are
  left out and the prompt embeddings are passed directly (:func:`tiny_prompt_kwargs`). Needs ``transformers``
  too (the pipelines' modules import it).
* :func:`schedulers`: ours against diffusers' in each pipeline (``python -m ersde_theory bench pipelines``,
  ``ersde_theory.studies.bench_pipelines``).
"""

from __future__ import annotations

import torch

from ._require import require_diffusers

KINDS = ("sd3", "flux")  # the flow pipelines, always tiny
VP_PIPELINES = ("sd", "sdxl", "img2img")
PIPELINES = (*VP_PIPELINES, *KINDS)
SIZES = ("tiny", "full")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "float64": torch.float64}
FLOW_ORDERS = (1, 2, 3)
FLOW_SIZE_PX = 32  # image height = width of the tiny flow pipelines (their VAE does not downsample)
SD_SCHEDULE = dict(
    beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, num_train_timesteps=1000, steps_offset=1
)
# prompt embedding sizes of the tiny transformers: (joint_attention_dim, pooled_projection_dim)
_EMBED = {"sd3": (32, 64), "flux": (32, 32)}
_PROMPT_TOKENS = 7
# the scheduler configs of the released models: SD3/SD3.5 (static shift 3), FLUX.1-dev (dynamic shifting)
RELEASED_SCHEDULER_CONFIGS = {
    "sd3": dict(shift=3.0),
    "flux": dict(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15),
}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def tiny_flow_pipeline(kind: str, scheduler=None, *, seed: int = 0, dtype=torch.float32, device="cpu"):
    """A ``StableDiffusion3Pipeline`` (``kind="sd3"``) or ``FluxPipeline`` (``"flux"``) with small random
    components (seeded by ``seed``) and no text encoders. ``scheduler``: any flow scheduler (default: diffusers'
    ``FlowMatchEulerDiscreteScheduler()``, as in diffusers' tests)."""
    _check_kind(kind)
    require_diffusers()
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler

    if scheduler is None:
        scheduler = FlowMatchEulerDiscreteScheduler()
    dim, pooled_dim = _EMBED[kind]  # one joint block on the embeddings of tiny_prompt_kwargs, 1×1 patches
    shared = dict(patch_size=1, in_channels=4, num_layers=1, joint_attention_dim=dim, pooled_projection_dim=pooled_dim)
    torch.manual_seed(seed)
    if kind == "sd3":
        from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

        transformer = SD3Transformer2DModel(
            **shared,
            sample_size=32,
            attention_head_dim=8,
            num_attention_heads=4,
            caption_projection_dim=32,
            out_channels=4,
        )
    else:
        from diffusers import FluxPipeline, FluxTransformer2DModel

        transformer = FluxTransformer2DModel(
            **shared, num_single_layers=1, attention_head_dim=16, num_attention_heads=2, axes_dims_rope=[4, 4, 8]
        )
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        block_out_channels=(4,),
        layers_per_block=1,
        latent_channels=4 if kind == "sd3" else 1,  # Flux packs 2×2 patches of one latent channel into 4
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    parts = dict(scheduler=scheduler, transformer=transformer, vae=vae, text_encoder=None, text_encoder_2=None)
    parts.update(tokenizer=None, tokenizer_2=None)
    if kind == "sd3":
        pipe = StableDiffusion3Pipeline(**parts, text_encoder_3=None, tokenizer_3=None)
    else:
        pipe = FluxPipeline(**parts)
    pipe.set_progress_bar_config(disable=True)
    if dtype != torch.float32:  # built in float32
        pipe.to(dtype=dtype)
    return pipe.to(device)


def tiny_prompt_kwargs(kind: str, batch: int = 1, *, seed: int = 0, dtype=torch.float32, device="cpu") -> dict:
    """Random prompt embeddings for :func:`tiny_flow_pipeline`, sample b's drawn from a generator seeded
    ``seed + b`` (so it does not depend on the batch), as pipeline keywords; SD3 also gets negative embeddings
    (zeros), so that classifier-free guidance runs without a text encoder."""
    _check_kind(kind)
    dim, pooled_dim = _EMBED[kind]
    gens = [torch.Generator().manual_seed(seed + b) for b in range(batch)]
    embeds = torch.stack([torch.randn(_PROMPT_TOKENS, dim, generator=g, dtype=torch.float64) for g in gens])
    pooled = torch.stack([torch.randn(pooled_dim, generator=g, dtype=torch.float64) for g in gens])
    out = {"prompt_embeds": embeds, "pooled_prompt_embeds": pooled}
    if kind == "sd3":
        out.update(
            negative_prompt_embeds=torch.zeros_like(embeds), negative_pooled_prompt_embeds=torch.zeros_like(pooled)
        )
    return {k: v.to(device=device, dtype=dtype) for k, v in out.items()}


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
    from .schedulers import ERSDEScheduler, FlowMatchERSDEScheduler

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


def pipeline_and_inputs(kind: str, *, size: str = "tiny", batch: int = 1, dtype=torch.float32, device="cpu"):
    """(pipeline, call keywords) with ``batch`` prompts: a VP pipeline of ``size``, or a tiny flow pipeline."""
    if kind in KINDS:
        pipe = tiny_flow_pipeline(kind, dtype=dtype, device=device)
        kw = tiny_prompt_kwargs(kind, batch, dtype=dtype, device=device)
        return pipe, dict(kw, height=FLOW_SIZE_PX, width=FLOW_SIZE_PX)
    pipe, kw = build_pipeline(kind, None, size=size, dtype=dtype, device=device)
    return pipe, {k: v.repeat(batch, *(1,) * (v.dim() - 1)) if torch.is_tensor(v) else v for k, v in kw.items()}
