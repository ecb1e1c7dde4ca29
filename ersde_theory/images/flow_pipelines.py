"""Tiny Stable Diffusion 3 and Flux pipelines (random weights, built offline) and a timing of flow schedulers on them.

The components have the sizes of diffusers' own pipeline tests (a one-layer transformer, a one-block VAE); the text
encoders and tokenizers are left out (``None``) and the prompt embeddings are passed directly
(:func:`tiny_prompt_kwargs`), so nothing is downloaded. Needs ``diffusers`` and ``transformers`` (the pipelines'
modules import it).

:func:`time_flow_pipelines` runs both pipelines with ``FlowMatchERSDEScheduler`` (and diffusers'
``FlowMatchEulerDiscreteScheduler`` for comparison) on a device and reports images/s and the time spent in
``scheduler.step`` as a share of the time spent in the transformer::

    python -m ersde_theory.images.flow_pipelines --device cuda --steps 20 --batch 4 --size 64 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import time

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


class _Timer:
    """Wall time of calls to ``obj.name`` (an instance attribute shadows the method), synchronising CUDA
    before and after each call so that the time is the call's own."""

    def __init__(self, obj, name: str, device: torch.device):
        self.obj, self.name, self.device, self.seconds, self.calls = obj, name, device, 0.0, 0
        self.inner = getattr(obj, name)

    def _sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, *args, **kwargs):
        self._sync()
        t0 = time.perf_counter()
        out = self.inner(*args, **kwargs)
        self._sync()
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        return out

    def __enter__(self):
        setattr(self.obj, self.name, self)
        return self

    def __exit__(self, *exc):
        delattr(self.obj, self.name)


def _run(pipe, kind, batch, steps, size, seed, device, dtype):
    g = torch.Generator(device).manual_seed(seed)
    kw = tiny_prompt_kwargs(kind, batch, seed=seed, dtype=dtype, device=device)
    return pipe(**kw, num_inference_steps=steps, height=size, width=size, generator=g, output_type="pt").images


def time_flow_pipelines(
    device="auto",
    *,
    steps: int = 20,
    batch: int = 4,
    size: int = 32,
    repeats: int = 3,
    dtype=torch.float32,
    schedulers: dict | None = None,
) -> list[dict]:
    """Time the tiny SD3 and Flux pipelines with each scheduler on ``device``.

    ``schedulers``: name → a callable ``config -> scheduler`` (default: ``FlowMatchERSDEScheduler`` orders 1–3 with
    its default NSF, and diffusers' ``FlowMatchEulerDiscreteScheduler``), built from the released models' scheduler
    configs (:data:`RELEASED_SCHEDULER_CONFIGS`). Per (pipeline, scheduler): ``images_per_s`` (end to end incl. the
    VAE decode, the best of ``repeats`` runs after a warm-up, no synchronisation inside the loop) and, from one
    more instrumented run, ``step_ms``/``model_ms`` (per call) and ``step_share`` = time in ``scheduler.step`` /
    time in the transformer.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler

    from .scheduler import FlowMatchERSDEScheduler

    dev = resolve_device(device)
    if schedulers is None:
        schedulers = {"euler (diffusers)": FlowMatchEulerDiscreteScheduler.from_config}
        for k in (1, 2, 3):
            schedulers[f"ER-SDE-{k}"] = lambda cfg, k=k: FlowMatchERSDEScheduler.from_config(cfg, solver_order=k)
    rows = []
    for kind in KINDS:
        pipe = tiny_flow_pipeline(kind, dtype=dtype, device=dev)
        base = FlowMatchEulerDiscreteScheduler(**RELEASED_SCHEDULER_CONFIGS[kind]).config
        for name, make in schedulers.items():
            pipe.scheduler = make(base)
            _run(pipe, kind, batch, steps, size, 0, dev, dtype)  # warm-up
            best = float("inf")
            for r in range(repeats):
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                t0 = time.perf_counter()
                _run(pipe, kind, batch, steps, size, r, dev, dtype)
                if dev.type == "cuda":
                    torch.cuda.synchronize(dev)
                best = min(best, time.perf_counter() - t0)
            with _Timer(pipe.scheduler, "step", dev) as st, _Timer(pipe.transformer, "forward", dev) as mt:
                _run(pipe, kind, batch, steps, size, 0, dev, dtype)
            rows.append(
                dict(
                    pipeline=kind,
                    scheduler=name,
                    device=str(dev),
                    steps=steps,
                    batch=batch,
                    size=size,
                    dtype=str(dtype).removeprefix("torch."),
                    images_per_s=batch / best,
                    step_ms=1e3 * st.seconds / st.calls,
                    model_ms=1e3 * mt.seconds / mt.calls,
                    step_share=st.seconds / mt.seconds,
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
    print(f"{'pipeline':8} {'scheduler':18} {'images/s':>10} {'step ms':>9} {'model ms':>9} {'step/model':>10}")
    for r in rows:
        print(
            f"{r['pipeline']:8} {r['scheduler']:18} {r['images_per_s']:10.2f} {r['step_ms']:9.3f} "
            f"{r['model_ms']:9.3f} {r['step_share']:10.1%}"
        )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return rows


if __name__ == "__main__":
    main()
