"""``python -m ersde_theory convergence [--full]``: the convergence study (JSON, markdown table, plots)."""

from __future__ import annotations

import time

from .cli import command


def _args(p):
    p.add_argument(
        "--full",
        action="store_true",
        help="the full study (all NSFs, 2000 paths, 7 step counts, 64-D problem); ~15 min on 2 cores",
    )
    p.add_argument("--outdir", default="figures", help="output folder (default: figures)")
    p.add_argument("--paths", type=int, help="override the number of coupled paths")
    p.add_argument("--problems", nargs="*", help="override the problems")
    p.add_argument("--nsfs", nargs="*", help="override the NSFs (registry names or power_p)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: the study's tensors are small, threads only add overhead)",
    )
    p.add_argument(
        "--benchmark",
        action="store_true",
        help="only time the reference on ring_2d with 10^4 coupled paths and report its self-consistency",
    )


@command("convergence", _args)
def _convergence(args) -> int:
    """Strong/weak convergence orders of ER-SDE-1/2/3 against a coupled high-precision reference."""
    import torch

    from .studies.convergence import config_for, reference_benchmark, run_study, write_outputs

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.benchmark:
        reference_benchmark()
        print(f"done in {time.perf_counter() - t0:.1f}s")
        return 0
    over = {}
    if args.paths:
        over.update(paths=args.paths, problem_paths={})
    if args.problems:
        over["problems"] = tuple(args.problems)
    if args.nsfs:
        over.update(nsfs=tuple(args.nsfs), problem_nsfs={})
    cfg = config_for(args.full, **over)
    results = run_study(cfg)
    for path in write_outputs(results, args.outdir, "_full" if args.full else ""):
        print(path)
    print(f"done in {time.perf_counter() - t0:.1f}s")
    return 0
