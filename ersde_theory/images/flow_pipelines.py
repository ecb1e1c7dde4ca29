"""Tiny Stable Diffusion 3 and Flux pipelines (random weights, built offline) and a timing of flow schedulers on them.

The components have the sizes of diffusers' own pipeline tests (a one-layer transformer, a one-block VAE); the text
encoders and tokenizers are left out (``None``) and the prompt embeddings are passed directly
(:func:`tiny_prompt_kwargs`), so nothing is downloaded. Needs ``diffusers`` and ``transformers`` (the pipelines'
modules import it).

Their run times with ``FlowMatchERSDEScheduler`` against diffusers' ``FlowMatchEulerDiscreteScheduler`` are part of
``python -m ersde_theory bench pipelines --pipelines sd3 flux`` (:mod:`.pipelines`).
"""

from __future__ import annotations

import torch

KINDS = ("sd3", "flux")
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
