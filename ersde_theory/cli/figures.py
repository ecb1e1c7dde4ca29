"""figures: regenerate the registered figures (figures --list) and the verification report."""

from __future__ import annotations

import time

from .args import Command, add_outdir


def add_arguments(p):
    add_outdir(p, "figures")
    p.add_argument("--only", nargs="*", help="names of figures to make (default: all)")
    p.add_argument("--list", action="store_true", help="list the registered figures and exit")


def run(args) -> int:
    from ..plots import FIGURES, make_figures

    if args.list:
        print("\n".join(FIGURES))
        return 0
    t0 = time.perf_counter()
    make_figures(args.outdir, args.only)
    print(f"done in {time.perf_counter() - t0:.1f}s")
    return 0


FIGURES = Command(
    "Regenerate the registered figures (see --list) and the verification report (CPU defaults).", add_arguments, run
)
