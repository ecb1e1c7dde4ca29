"""bench NAME: the toy-problem benchmarks (quality, speed, nsf, official), the digits bench (images) and the
diffusers pipeline timings (pipelines).
Each study runs as entry_point(outdir, quick=, device=); the study modules are imported only when run."""

from __future__ import annotations

import sys
import time

from .args import QUICK_OUTDIR, Command, add_device, add_quick, add_threads, apply_threads, device_of


def _add_bench_outdir(p) -> None:
    p.add_argument("--outdir", default=None, help=f"output folder (default: figures; {QUICK_OUTDIR} with --quick)")


def _outdir(args) -> str:
    return args.outdir or (QUICK_OUTDIR if args.quick else "figures")


def add_study_arguments(p) -> None:
    add_quick(p, f"small CI preset (writes to {QUICK_OUTDIR} unless --outdir is given)")
    _add_bench_outdir(p)
    add_threads(p, 0)
    add_device(p)


def _run_study(args, entry_point) -> int:
    apply_threads(args)
    t0 = time.perf_counter()
    entry_point(_outdir(args), quick=args.quick, device=str(device_of(args)))
    print(f"done in {time.perf_counter() - t0:.1f}s")
    return 0


def run_quality(args) -> int:
    from ..plots.benches import run_quality  # study, then its figures

    return _run_study(args, run_quality)


def run_speed(args) -> int:
    from ..plots.benches import run_speed

    return _run_study(args, run_speed)


def run_nsf(args) -> int:
    from ..plots.benches import run_nsf_study

    return _run_study(args, run_nsf_study)


def run_official(args) -> int:
    from ..plots.benches import run_official_vs_exact

    return _run_study(args, run_official_vs_exact)


def add_images_arguments(p) -> None:
    p.add_argument("--nfe", type=int, nargs="+", default=[10, 20, 50], help="NFE values")
    p.add_argument("--n-per-block", type=int, default=250, help="images per seed block")
    p.add_argument("--blocks", type=int, default=4, help="seed blocks (confidence intervals over blocks)")
    add_quick(p, f"CI preset: 2 samplers, NFE 10, 2 blocks of 64 (writes to {QUICK_OUTDIR} unless --outdir is given)")
    p.add_argument("--no-speed", action="store_true", help="skip the solver-overhead timing")
    _add_bench_outdir(p)
    add_threads(p, 0)
    add_device(p)


def run_images(args) -> int:
    from ..images.bench import markdown_table, run_bench, write_results

    apply_threads(args)
    t0 = time.perf_counter()
    kw = (
        dict(nfes=(10,), n_per_block=64, blocks=2, quick=True)
        if args.quick
        else dict(nfes=tuple(args.nfe), n_per_block=args.n_per_block, blocks=args.blocks)
    )
    res = run_bench(device=device_of(args), speed=not args.no_speed, **kw)
    paths = write_results(res, _outdir(args))
    print(markdown_table(res))
    print(f"wrote {', '.join(map(str, paths))} in {time.perf_counter() - t0:.0f}s")
    return 0


PIPELINE_CHOICES = ("sd", "sdxl", "img2img", "sd3", "flux")  # = images.pipelines.PIPELINES (not imported: torch)
SIZE_CHOICES = ("tiny", "full")  # = images.pipelines.SIZES
PIPELINE_DTYPE_CHOICES = ("float32", "float16", "bfloat16", "float64")  # = the keys of images.pipelines.DTYPES


def add_pipelines_arguments(p) -> None:
    p.add_argument("--pipelines", nargs="+", default=list(PIPELINE_CHOICES), choices=PIPELINE_CHOICES, help="pipelines")
    p.add_argument(
        "--size",
        choices=("auto", *SIZE_CHOICES),
        default="auto",
        help="sd, sdxl, img2img: tiny = diffusers' test UNets, full = SD-1.5 (SDXL) UNet architecture with random "
        "weights, auto = full on CUDA; sd3 and flux are always tiny",
    )
    p.add_argument("--steps", type=int, default=25, help="inference steps (model calls)")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions (best is reported)")
    p.add_argument("--batch", type=int, default=1, help="images per pipeline call")
    p.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale")
    p.add_argument(
        "--dtype", choices=PIPELINE_DTYPE_CHOICES, help="model dtype (default: float16 on CUDA, else float32)"
    )
    p.add_argument(
        "--orders", type=int, nargs="+", default=[1, 2, 3], help="FlowMatchERSDEScheduler orders timed in sd3, flux"
    )
    add_quick(p, f"CI preset: 10 steps, at most 2 reps (writes to {QUICK_OUTDIR} unless --outdir is given)")
    _add_bench_outdir(p)
    add_threads(p, 0)
    add_device(p)


def add_flow_arguments(p) -> None:
    p.add_argument("--nfe", type=int, nargs="+", default=[10, 20, 50], help="NFE values")
    p.add_argument("--n-per-block", type=int, default=400, help="digits images per seed block")
    p.add_argument("--toy-n-per-block", type=int, default=1000, help="toy samples per seed block")
    p.add_argument("--blocks", type=int, default=5, help="seed blocks (confidence intervals over blocks)")
    p.add_argument("--shift", type=float, default=1.0, help="static shift of get_flow_schedule")
    p.add_argument("--model", default="digits-flow", help="the flow model: digits-flow or a flow CHECKPOINT.pt")
    p.add_argument("--no-toy", action="store_true", help="skip the Gaussian-mixture flow toy")
    add_quick(
        p,
        f"CI preset: 3 samplers, NFE 10, 2 blocks of 32 images / 64 toy samples (writes to {QUICK_OUTDIR} unless "
        "--outdir is given)",
    )
    _add_bench_outdir(p)
    add_threads(p, 0)
    add_device(p)


def run_pipelines(args) -> int:
    from ..images.pipelines import markdown_table, run_pipeline_bench, write_results

    apply_threads(args)
    steps, reps = (10, min(args.reps, 2)) if args.quick else (args.steps, args.reps)
    t0 = time.perf_counter()
    try:  # checks every value before it builds anything
        res = run_pipeline_bench(
            tuple(args.pipelines),
            size=None if args.size == "auto" else args.size,
            steps=steps,
            reps=reps,
            batch=args.batch,
            guidance=args.guidance,
            device=device_of(args),
            dtype=args.dtype,
            orders=tuple(args.orders),
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths = write_results(res, _outdir(args))
    print(markdown_table(res))
    print(f"wrote {', '.join(map(str, paths))} in {time.perf_counter() - t0:.0f}s")
    return 0


def run_flow(args) -> int:
    from ..images.bench_flow import markdown_table, run_bench_flow, write_results
    from ..plots.benches import plot_bench_flow

    apply_threads(args)
    t0 = time.perf_counter()
    kw = (
        dict(nfes=(10,), n_per_block=32, toy_n_per_block=64, blocks=2, quick=True)
        if args.quick
        else dict(nfes=tuple(args.nfe), n_per_block=args.n_per_block, toy_n_per_block=args.toy_n_per_block,
                  blocks=args.blocks)
    )  # fmt: skip
    try:
        res = run_bench_flow(shift=args.shift, model=args.model, toy=not args.no_toy, device=device_of(args), **kw)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    paths = write_results(res, _outdir(args)) + plot_bench_flow(res, _outdir(args))
    print(markdown_table(res))
    print(f"wrote {', '.join(map(str, paths))} in {time.perf_counter() - t0:.0f}s")
    return 0


QUALITY = Command(
    "Sample quality per NFE with CIs: samplers x NFE x denoiser x problem.", add_study_arguments, run_quality
)
SPEED = Command("Per-step solver overhead with a trivial model, every sampler.", add_study_arguments, run_speed)
NSF = Command("Search for a noise scale function that beats er_sde_5.", add_study_arguments, run_nsf)
OFFICIAL = Command("Official 100-point Riemann vs exact coefficients at NFE 5-10.", add_study_arguments, run_official)
IMAGES = Command(
    "Sampler x NFE on the digits model: FD_digits (NOT Inception-FID) with CIs over seed blocks.",
    add_images_arguments,
    run_images,
)
PIPELINES = Command(
    "diffusers pipelines, random weights: ERSDEScheduler vs DPM-Solver++ SDE (SD, SDXL, img2img), "
    "FlowMatchERSDEScheduler vs flow Euler (tiny SD3, Flux): run times.",
    add_pipelines_arguments,
    run_pipelines,
)
FLOW = Command(
    "ER-SDE vs flow baselines on the learned digits flow model and a flow toy: FD with CIs, brightness.",
    add_flow_arguments,
    run_flow,
)
