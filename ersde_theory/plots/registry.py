"""Figure registry: ``python -m ersde_theory figures`` makes every registered figure.

A figure is a pair: a **study** function (no arguments) that computes the data, and a **draw** function
``draw(data, outdir) -> list[Path]`` that writes the files (use :func:`save` for figures). Studies never
import this package; plots call studies. Register with ``@figure("name", study=...)`` on the draw function
in a module imported by ``ersde_theory.plots``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@dataclass(frozen=True)
class Figure:
    """``study()`` → data; ``draw(data, outdir)`` → the written paths."""

    study: Callable[[], Any]
    draw: Callable[[Any, Path], list[Path]]

    def __call__(self, outdir) -> list[Path]:
        return self.draw(self.study(), Path(outdir))


FIGURES: dict[str, Figure] = {}


def figure(name: str, study: Callable[[], Any]):
    """Register the decorated ``draw(data, outdir)`` with its ``study`` under ``name``."""

    def deco(draw):
        if name in FIGURES:
            raise ValueError(f"figure {name!r} registered twice")
        FIGURES[name] = Figure(study, draw)
        return draw

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
    """Run the registered figures (all, or ``only``): study, then draw; returns seconds per figure."""
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
