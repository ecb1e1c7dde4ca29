"""figures: regenerate the registered figures (figures --list) and the verification report: for each entry of the
figure registry (ersde_theory.plots.FIGURES), its study, then the study's report, then the drawing."""

from __future__ import annotations

import time
from pathlib import Path

from .args import Command, add_outdir, fail


def add_arguments(p):
    add_outdir(p, "figures")
    p.add_argument("--only", nargs="*", help="names of figures to make (default: all)")
    p.add_argument("--list", action="store_true", help="list the registered figures and exit")


def run(args) -> int:
    from ..plots import FIGURES

    if args.list:
        print("\n".join(FIGURES))
        return 0
    names = args.only or list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        return fail(f"unknown figure(s) {unknown}; registered: {', '.join(FIGURES)}")
    outdir, t_all = Path(args.outdir), time.perf_counter()
    for name in names:
        entry, t0 = FIGURES[name], time.perf_counter()
        data = entry.study()
        paths = list(entry.report(data, outdir)) if entry.report else []
        paths += entry.draw(data, outdir) if entry.draw else []
        print(f"[{time.perf_counter() - t0:6.1f}s] {name}: " + ", ".join(str(p) for p in paths))
    print(f"done in {time.perf_counter() - t_all:.1f}s")
    return 0


FIGURES = Command(
    "Regenerate the registered figures (see --list) and the verification report (CPU defaults).", add_arguments, run
)
