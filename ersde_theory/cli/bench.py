"""bench NAME: the toy-problem benchmarks (quality, speed, nsf, official), the digits benches (images, flow) and the
diffusers pipeline timings (pipelines). Each runs its study (``ersde_theory.studies``: it writes its JSON/Markdown
report into the outdir and returns the data), then draws its figures from that data (``ersde_theory.plots``); the
study and plot modules are imported only when a command runs. Choice lists come from the registries."""

from __future__ import annotations

import time

from ..diffusers_integration import pipelines as pipes  # the pipeline names, sizes, dtypes (no diffusers import)
from .args import QUICK_OUTDIR, Command, add_device, add_quick, add_threads, apply_threads, device_of, fail


def _add_bench_outdir(p) -> None:
    p.add_argument("--outdir", default=None, help=f"output folder (default: figures; {QUICK_OUTDIR} with --quick)")


def _outdir(args) -> str:
    return args.outdir or (QUICK_OUTDIR if args.quick else "figures")


def add_study_arguments(p) -> None:
    add_quick(p, f"small CI preset (writes to {QUICK_OUTDIR} unless --outdir is given)")
    _add_bench_outdir(p)
    add_threads(p, 0)
    add_device(p)


def _study_then_draw(args, study, draw=None, **kw) -> int:
    """``study(outdir, quick=, device=, **kw)`` (it writes its report and returns the data), then ``draw(data,
    outdir)``; bad input: a one-line error and exit code 2, before anything is written."""
    apply_threads(args)
    outdir = _outdir(args)
    t0 = time.perf_counter()
    try:
        data = study(outdir, quick=args.quick, device=str(device_of(args)), **kw)
    except (ValueError, FileNotFoundError) as e:
        return fail(str(e), 2)
    if draw is not None:
        draw(data, outdir)
    print(f"done in {time.perf_counter() - t0:.1f}s")
    return 0


def bench_quality(args) -> int:
    from ..plots.benches import plot_quality
    from ..studies.bench_quality import run_quality

    return _study_then_draw(args, run_quality, plot_quality)


def bench_speed(args) -> int:
    from ..studies.bench_speed import run_speed

    return _study_then_draw(args, run_speed)


def bench_nsf(args) -> int:
    from ..plots.benches import plot_nsf
    from ..studies.nsf_search import run_nsf_study

    return _study_then_draw(args, run_nsf_study, plot_nsf)


def bench_official(args) -> int:
    from ..plots.benches import plot_official
    from ..studies.official_vs_exact import run_official_vs_exact

    return _study_then_draw(args, run_official_vs_exact, plot_official)


def add_images_arguments(p) -> None:
    p.add_argument("--nfe", type=int, nargs="+", default=[10, 20, 50], help="NFE values")
    p.add_argument("--n-per-block", type=int, default=250, help="images per seed block")
    p.add_argument("--blocks", type=int, default=4, help="seed blocks (confidence intervals over blocks)")
    add_quick(p, f"CI preset: 2 samplers, NFE 10, 2 blocks of 64 (writes to {QUICK_OUTDIR} unless --outdir is given)")
    p.add_argument("--no-speed", action="store_true", help="skip the solver-overhead timing")
    _add_bench_outdir(p)
    add_threads(p, 0)
    add_device(p)


def bench_images(args) -> int:
    from ..studies.bench_images import run_bench_images

    kw = dict(nfes=tuple(args.nfe), n_per_block=args.n_per_block, blocks=args.blocks, speed=not args.no_speed)
    return _study_then_draw(args, run_bench_images, **kw)


def add_pipelines_arguments(p) -> None:
    p.add_argument("--pipelines", nargs="+", default=list(pipes.PIPELINES), choices=pipes.PIPELINES, help="pipelines")
    p.add_argument(
        "--size",
        choices=("auto", *pipes.SIZES),
        default="auto",
        help="sd, sdxl, img2img: tiny = diffusers' test UNets, full = SD-1.5 (SDXL) UNet architecture with random "
        "weights, auto = full on CUDA; sd3 and flux are always tiny",
    )
    p.add_argument("--steps", type=int, default=25, help="inference steps (model calls)")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions (best is reported)")
    p.add_argument("--batch", type=int, default=1, help="images per pipeline call")
    p.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale")
    p.add_argument("--dtype", choices=tuple(pipes.DTYPES), help="model dtype (default: float16 on CUDA, else float32)")
    p.add_argument(
        "--orders",
        type=int,
        nargs="+",
        default=list(pipes.FLOW_ORDERS),
        help="FlowMatchERSDEScheduler orders timed in sd3, flux",
    )
    add_quick(p, f"CI preset: 10 steps, at most 2 reps (writes to {QUICK_OUTDIR} unless --outdir is given)")
    _add_bench_outdir(p)
    add_threads(p, 0)
    add_device(p)


def bench_pipelines(args) -> int:
    from ..studies.bench_pipelines import run_bench_pipelines

    size = None if args.size == "auto" else args.size
    kw = dict(pipelines=tuple(args.pipelines), size=size, steps=args.steps, reps=args.reps, batch=args.batch,
              guidance=args.guidance, dtype=args.dtype, orders=tuple(args.orders))  # fmt: skip
    return _study_then_draw(args, run_bench_pipelines, **kw)


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


def bench_flow(args) -> int:
    from ..plots.benches import plot_bench_flow
    from ..studies.bench_flow import run_bench_flow

    kw = dict(nfes=tuple(args.nfe), n_per_block=args.n_per_block, toy_n_per_block=args.toy_n_per_block,
              blocks=args.blocks, shift=args.shift, model=args.model, toy=not args.no_toy)  # fmt: skip
    return _study_then_draw(args, run_bench_flow, plot_bench_flow, **kw)


FMNIST_CACHE = "out/cache/bench_fmnist"


def add_fmnist_arguments(p) -> None:
    p.add_argument("--nfe", type=int, nargs="+", default=[10, 20, 50], help="NFE values (model calls)")
    p.add_argument("--n-per-block", type=int, default=200, help="images per seed block")
    p.add_argument("--blocks", type=int, default=5, help="seed blocks (confidence intervals over blocks)")
    p.add_argument("--batch", type=int, default=250, help="images per model call")
    p.add_argument("--no-flow", action="store_true", help="skip the flow model (fmnist-flow)")
    p.add_argument("--data", default=None, help="folder of the Fashion-MNIST IDX files (as train-fmnist)")
    p.add_argument(
        "--cache",
        default=FMNIST_CACHE,
        help=f"folder of finished cells, read back by a rerun with the same weights, scheduler, NFE and blocks "
        f"(resume after a kill; new schedulers add cells) (default: {FMNIST_CACHE})",
    )
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cell cache")
    add_quick(
        p, f"CI preset: 2 schedulers per model, NFE 10, 2 blocks of 16 (writes to {QUICK_OUTDIR} unless --outdir)"
    )
    _add_bench_outdir(p)
    add_threads(p, 0)
    add_device(p)


def bench_fmnist(args) -> int:
    from ..plots.benches import plot_bench_fmnist
    from ..studies.bench_fmnist import run_bench_fmnist

    cache = None if args.no_cache or args.quick else args.cache
    kw = dict(nfes=tuple(args.nfe), n_per_block=args.n_per_block, blocks=args.blocks, batch=args.batch,
              flow=not args.no_flow, data=args.data, cache=cache)  # fmt: skip
    return _study_then_draw(args, run_bench_fmnist, plot_bench_fmnist, **kw)


QUALITY = Command(
    "Sample quality per NFE with CIs: samplers x NFE x denoiser x problem.", add_study_arguments, bench_quality
)
SPEED = Command("Per-step solver overhead with a trivial model, every sampler.", add_study_arguments, bench_speed)
NSF = Command("Search for a noise scale function that beats er_sde_5.", add_study_arguments, bench_nsf)
OFFICIAL = Command("Official 100-point Riemann vs exact coefficients at NFE 5-10.", add_study_arguments, bench_official)
IMAGES = Command(
    "Sampler x NFE on the digits model: FD_digits (NOT Inception-FID) with CIs over seed blocks.",
    add_images_arguments,
    bench_images,
)
PIPELINES = Command(
    "diffusers pipelines, random weights: ERSDEScheduler vs DPM-Solver++ SDE (SD, SDXL, img2img), "
    "FlowMatchERSDEScheduler vs flow Euler (tiny SD3, Flux): run times.",
    add_pipelines_arguments,
    bench_pipelines,
)
FLOW = Command(
    "ER-SDE vs flow baselines on the learned digits flow model and a flow toy: FD with CIs, brightness.",
    add_flow_arguments,
    bench_flow,
)
FMNIST = Command(
    "ER-SDE vs diffusers' own schedulers on the Fashion-MNIST VP and flow models: FD_fmnist (NOT Inception-FID) with "
    "CIs over seed blocks, paired differences, a grid figure.",
    add_fmnist_arguments,
    bench_fmnist,
)
