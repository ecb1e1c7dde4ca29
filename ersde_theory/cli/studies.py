"""convergence, third-order, symbolic-bench: the numerical and symbolic studies."""

from __future__ import annotations

import json
import time

from .args import QUICK_OUTDIR, Command, RegistryChoices, add_outdir, add_threads, apply_threads, at_least


def add_convergence_arguments(p) -> None:
    p.add_argument(
        "--full",
        action="store_true",
        help="the full study (all NSFs, 2000 paths, 7 step counts, 64-D problem); about 15 min on 2 cores",
    )
    add_outdir(p, "figures")
    p.add_argument("--paths", type=at_least(2), help="override the number of coupled paths")
    p.add_argument("--problems", nargs="*", help="override the problems")
    p.add_argument("--nsfs", nargs="*", help="override the NSFs (registry names or power_p)")
    add_threads(p, 1, "the study's tensors are small, threads only add overhead")
    p.add_argument(
        "--benchmark",
        action="store_true",
        help="only time the reference on ring_2d with 10^4 coupled paths and report its self-consistency",
    )


def run_convergence(args) -> int:
    from ..plots.convergence import plot_convergence
    from ..studies.convergence import config_for, reference_benchmark, run_study, write_outputs

    apply_threads(args)
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
    suffix = "_full" if args.full else ""
    for path in write_outputs(results, args.outdir, suffix) + plot_convergence(results, args.outdir, suffix):
        print(path)
    print(f"done in {time.perf_counter() - t0:.1f}s")
    return 0


def _add_preset_arguments(p, registry: str, sizes: str) -> None:
    """--outdir, --preset (choices read from the study's PRESETS ``registry``) and --threads of a preset study."""
    help_outdir = f"output folder (default: figures; {QUICK_OUTDIR} with --preset quick)"
    p.add_argument("--outdir", default=None, help=help_outdir)
    p.add_argument("--preset", choices=RegistryChoices(registry), metavar="PRESET", default="default",
                   help=f"study sizes, one of %(choices)s: {sizes}")  # fmt: skip
    add_threads(p, 1, "the study's tensors are small")


def add_third_order_arguments(p) -> None:
    _add_preset_arguments(
        p, "ersde_theory.studies.third_order:PRESETS", "quick (seconds), default (minutes on 2 CPU cores), full"
    )


def run_third_order(args) -> int:
    from ..studies.third_order import run_benchmark

    apply_threads(args)
    outdir = args.outdir or (QUICK_OUTDIR if args.preset == "quick" else "figures")
    res = run_benchmark(outdir, args.preset)
    print(f"wrote {outdir}/third_order.json and third_order.md in {res['seconds']:.1f}s")
    return 0


def add_symbolic_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print the timings as JSON")
    p.add_argument("--quiet", action="store_true", help="only the total")


def run_symbolic(args) -> int:
    t0 = time.perf_counter()
    from ..theory.symbolic import run_suite  # the import (sympy) is part of the cost

    t_import = time.perf_counter() - t0
    res = run_suite(log=None if (args.quiet or args.json) else print)
    res["import_seconds"] = t_import
    res["total_seconds"] = time.perf_counter() - t0
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(
            f"derivation suite: {res['seconds']:.1f}s (+ {t_import:.1f}s import), "
            f"{len(res['failures'])} failed identities"
        )
        for f in res["failures"]:
            print("  FAILED:", f)
    return 1 if res["failures"] else 0


def add_flow_expansion_arguments(p) -> None:
    _add_preset_arguments(
        p,
        "ersde_theory.studies.flow_expansion:PRESETS",
        "quick (N up to 256, seconds), default (N up to 4096, minutes)",
    )


def run_flow_expansion(args) -> int:
    from ..plots.flow_expansion import plot_flow_expansion
    from ..studies.flow_expansion import run_flow_expansion as run

    apply_threads(args)
    outdir = args.outdir or (QUICK_OUTDIR if args.preset == "quick" else "figures")
    res = run(outdir, args.preset)
    for path in plot_flow_expansion(res, outdir):
        print(path)
    print(f"wrote {outdir}/flow_expansion.json and flow_expansion.md in {res['seconds']:.1f}s")
    return 0


CONVERGENCE = Command(
    "Strong/weak convergence orders of ER-SDE-1/2/3 against a coupled high-precision reference.",
    add_convergence_arguments,
    run_convergence,
)
THIRD_ORDER = Command(
    "Published vs corrected ER-SDE-Solver-3: orders, weak/strong errors, FD per NFE (third_order.json/.md).",
    add_third_order_arguments,
    run_third_order,
)
FLOW_EXPANSION = Command(
    "Corrected ER-SDE-3 on flow grids from sigma = 1: expansion in lambda vs flow time (flow_expansion.json/.md).",
    add_flow_expansion_arguments,
    run_flow_expansion,
)
SYMBOLIC_BENCH = Command(
    "Time the symbolic derivation suite (seven NSFs, k <= 3, series to Delta^4, VE and VP).",
    add_symbolic_arguments,
    run_symbolic,
)
