"""Tiny Stable Diffusion 3 and Flux pipelines (random weights, built offline) and a timing of flow schedulers on them.

The components have the sizes of diffusers' own pipeline tests (a one-layer transformer, a one-block VAE); the text
encoders and tokenizers are left out (``None``) and the prompt embeddings are passed directly
(:func:`tiny_prompt_kwargs`), so nothing is downloaded. Needs ``diffusers`` and ``transformers`` (the pipelines'
modules import it).

:func:`time_flow_pipelines` runs both pipelines with ``FlowMatchERSDEScheduler`` (and diffusers'
``FlowMatchEulerDiscreteScheduler`` for comparison) on a device, timed by
:func:`ersde_theory.images.pipelines.time_pipeline`, and reports images/s and the time spent in ``scheduler.step``
as a share of the rest of a step (the transformer)::

    python -m ersde_theory.images.flow_pipelines --device cuda --steps 20 --batch 4 --size 64 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json

import torch

from ..devices import resolve_device

KINDS = ("sd3", "flux")
# prompt embedding sizes of the tiny transformers: (joint_attention_dim, pooled_projection_dim)
_EMBED = {"sd3": (32, 64), "flux": (32, 32)}
_PROMPT_TOKENS = 7
# the scheduler configs of the released models: SD3/SD3.5 (static shift 3), FLUX.1-dev (dynamic shifting)
RELEASED_SCHEDULER_CONFIGS = {
    "sd3": dict(shift=3.0),
    "flux": dict(shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15),
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


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
    torch.manual_seed(seed)
    if kind == "sd3":
        from diffusers import SD3Transformer2DModel, StableDiffusion3Pipeline

        transformer = SD3Transformer2DModel(
            sample_size=32,
            patch_size=1,
            in_channels=4,
            num_layers=1,
            attention_head_dim=8,
            num_attention_heads=4,
            caption_projection_dim=32,
            joint_attention_dim=_EMBED[kind][0],
            pooled_projection_dim=_EMBED[kind][1],
            out_channels=4,
        )
    else:
        from diffusers import FluxPipeline, FluxTransformer2DModel

        transformer = FluxTransformer2DModel(
            patch_size=1,
            in_channels=4,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=_EMBED[kind][0],
            pooled_projection_dim=_EMBED[kind][1],
            axes_dims_rope=[4, 4, 8],
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


def time_flow_pipelines(
    device="auto",
    *,
    steps: int = 20,
    batch: int = 4,
    size: int = 32,
    repeats: int = 3,
    guidance: float = 5.0,
    dtype=torch.float32,
    schedulers: dict | None = None,
) -> list[dict]:
    """Time the tiny SD3 and Flux pipelines with each scheduler on ``device``, with
    :func:`ersde_theory.images.pipelines.time_pipeline` (latents out, best of ``repeats`` after a warm-up; the
    scheduler's ``step`` timed in one more run with the device synchronised around it).

    ``schedulers``: name → a callable ``config -> scheduler`` (default: ``FlowMatchERSDEScheduler`` orders 1–3 with
    its default NSF, and diffusers' ``FlowMatchEulerDiscreteScheduler``), built from the released models' scheduler
    configs (:data:`RELEASED_SCHEDULER_CONFIGS`). Each row has ``time_pipeline``'s numbers plus ``images_per_s``,
    ``model_ms`` (a step's time less the scheduler's: the transformer and the pipeline's own work) and
    ``step_share`` = scheduler time / ``model_ms``.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler

    from .pipelines import time_pipeline
    from .scheduler import FlowMatchERSDEScheduler

    dev = resolve_device(device)
    if schedulers is None:
        schedulers = {"euler (diffusers)": FlowMatchEulerDiscreteScheduler.from_config}
        for k in (1, 2, 3):
            schedulers[f"ER-SDE-{k}"] = lambda cfg, k=k: FlowMatchERSDEScheduler.from_config(cfg, solver_order=k)
    rows = []
    for kind in KINDS:
        pipe = tiny_flow_pipeline(kind, dtype=dtype, device=dev)
        kw = dict(tiny_prompt_kwargs(kind, batch, dtype=dtype, device=dev), height=size, width=size)
        base = FlowMatchEulerDiscreteScheduler(**RELEASED_SCHEDULER_CONFIGS[kind]).config
        for name, make in schedulers.items():
            pipe.scheduler = make(base)
            r = time_pipeline(pipe, kw, steps=steps, reps=repeats, guidance=guidance, device=dev)
            model_ms = r["step_ms"] - r["scheduler_ms_per_step"]
            rows.append(
                dict(
                    pipeline=kind,
                    scheduler=name,
                    device=str(dev),
                    dtype=str(dtype).removeprefix("torch."),
                    batch=batch,
                    size=size,
                    **r,
                    images_per_s=batch / r["total_s"],
                    model_ms=model_ms,
                    step_share=r["scheduler_ms_per_step"] / model_ms,
                )
            )
    return rows


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=time_flow_pipelines.__doc__.split("\n")[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=32, help="image height = width in pixels")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dtype", choices=tuple(DTYPES), default="float32", help="pipeline dtype")
    p.add_argument("--json", help="also write the rows to this JSON file")
    a = p.parse_args(argv)
    rows = time_flow_pipelines(
        a.device, steps=a.steps, batch=a.batch, size=a.size, repeats=a.repeats, dtype=DTYPES[a.dtype]
    )
    print(f"{'pipeline':8} {'scheduler':18} {'images/s':>10} {'sched ms':>9} {'model ms':>9} {'sched/model':>11}")
    for r in rows:
        print(
            f"{r['pipeline']:8} {r['scheduler']:18} {r['images_per_s']:10.2f} {r['scheduler_ms_per_step']:9.3f} "
            f"{r['model_ms']:9.3f} {r['step_share']:11.1%}"
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
