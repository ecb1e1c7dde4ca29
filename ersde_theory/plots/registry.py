"""Figure registry: ``python -m ersde_theory figures`` runs every registered figure function.

A figure function takes the output folder, writes its files there (use :func:`save`) and returns their
paths. Register it with ``@figure("name")`` in a module imported by ``ersde_theory.plots``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FIGURES: dict[str, Callable[[Path], list[Path]]] = {}


def figure(name: str):
    def deco(fn):
        if name in FIGURES:
            raise ValueError(f"figure {name!r} registered twice")
        FIGURES[name] = fn
        return fn

    return deco


def save(fig, outdir: Path, name: str) -> list[Path]:
    """Write ``name``.png and ``name``.pdf (no timestamps in the PDF, so reruns are byte-stable)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = [outdir / f"{name}.png", outdir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=130, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    plt.close(fig)
    return paths


def make_figures(outdir: Path, only: list[str] | None = None, log=print) -> dict[str, float]:
    """Run the registered figure functions (all, or ``only``); returns seconds per figure."""
    names = list(FIGURES) if not only else only
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; registered: {', '.join(FIGURES)}")
    timings = {}
    for n in names:
        t0 = time.perf_counter()
        paths = FIGURES[n](Path(outdir))
        timings[n] = time.perf_counter() - t0
        log(f"[{timings[n]:6.1f}s] {n}: " + ", ".join(str(p) for p in paths))
    return timings
