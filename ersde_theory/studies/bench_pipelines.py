"""``python -m ersde_theory bench pipelines``: the run time of our schedulers against diffusers' in the same
diffusers pipelines (random weights, built offline by ``ersde_theory.diffusers_integration.pipelines``), one
scheduler swapped for another:

* VP pipelines ("sd", "sdxl", "img2img"): ``ERSDEScheduler`` against
  ``DPMSolverMultistepScheduler(algorithm_type="sde-dpmsolver++")``, on Stable Diffusion's β schedule;
* flow pipelines ("sd3", "flux", always tiny): ``FlowMatchERSDEScheduler`` orders 1–3 against
  ``FlowMatchEulerDiscreteScheduler``, on the released models' scheduler configs.

The scheduler is the only thing that differs between the timed runs.
"""

from __future__ import annotations

import functools
import time

import torch

from ..diffusers_integration.pipelines import (
    DTYPES,
    FLOW_ORDERS,
    KINDS,
    PIPELINES,
    RELEASED_SCHEDULER_CONFIGS,
    SD_SCHEDULE,
    SIZES,
    pipeline_and_inputs,
    schedulers,
)
from ..evaluation.reports import markdown_table, write_report


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


def run_bench_pipelines(
    outdir="figures",
    *,
    quick: bool = False,
    device="cpu",
    pipelines=PIPELINES,
    size: str | None = None,
    steps: int = 25,
    reps: int = 3,
    batch: int = 1,
    guidance: float = 7.5,
    dtype=None,
    orders=FLOW_ORDERS,
    log=print,
) -> dict:
    """Time our schedulers against diffusers' in each pipeline (module docstring): one row per (pipeline,
    scheduler) with :func:`time_pipeline`'s numbers, written to ``outdir`` as ``bench_pipelines.json``/``.md``.
    ``size`` (VP pipelines only; the flow ones are tiny) defaults to "full" on CUDA and "tiny" otherwise; ``dtype``
    (a torch dtype or a key of ``DTYPES``) to float16 on CUDA and float32 otherwise. ``orders``: the
    FlowMatchERSDEScheduler orders timed. ``quick``: 10 steps, at most 2 reps. Every value is checked before
    anything is built."""
    if quick:
        steps, reps = 10, min(reps, 2)
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
        pipe, kw = pipeline_and_inputs(kind, size=size, batch=batch, dtype=dtype, device=device)
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
    res = {
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
    write_report(outdir, "bench_pipelines", res, pipelines_markdown(res))
    if log:
        log(pipelines_markdown(res))
    return res


def pipelines_markdown(res: dict) -> str:
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
        *markdown_table(
            [
                "pipeline",
                "size",
                "scheduler",
                "total (s)",
                "images/s",
                "step (ms)",
                "scheduler (ms/step)",
                "model (ms/step)",
                "scheduler share",
            ],
            [
                [
                    r["pipeline"],
                    r["size"],
                    r["scheduler"],
                    f"{r['total_s']:.3f}",
                    f"{r['images_per_s']:.2f}",
                    f"{r['step_ms']:.2f}",
                    f"{r['scheduler_ms_per_step']:.3f}",
                    f"{r['model_ms_per_step']:.2f}",
                    f"{r['scheduler_share_pct']:.2f} %",
                ]
                for r in res["rows"]
            ],
        ),
    ]
    return "\n".join(lines) + "\n"
