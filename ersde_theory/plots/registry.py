"""Figure registry: what ``python -m ersde_theory figures`` makes, name → :class:`Figure`.

An entry pairs a **study** function (no arguments; in ``ersde_theory.studies``) that computes the data with a
**draw** function ``draw(data, outdir) -> list[Path]`` that writes the figure files (use :func:`save`) and,
where the study has one, its **report** writer ``report(data, outdir) -> list[Path]`` (JSON and Markdown, from the
study module). Studies never import this package; the command line runs study, report, draw
(``ersde_theory.cli.figures``). Register with ``@figure("name", study=..., report=...)`` on the draw function, or
:func:`report_only` for an entry without a figure, in a module imported by ``ersde_theory.plots``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@dataclass(frozen=True)
class Figure:
    """``study()`` → data; ``report(data, outdir)`` and ``draw(data, outdir)`` → the paths they write."""

    study: Callable[[], Any]
    draw: Callable[[Any, Path], list[Path]] | None = None
    report: Callable[[Any, Path], list[Path]] | None = None


FIGURES: dict[str, Figure] = {}


def _register(name: str, entry: Figure) -> None:
    if name in FIGURES:
        raise ValueError(f"figure {name!r} registered twice")
    FIGURES[name] = entry


def figure(name: str, study: Callable[[], Any], report: Callable[[Any, Path], list[Path]] | None = None):
    """Register the decorated ``draw(data, outdir)`` with its ``study`` (and the study's ``report``) as ``name``."""

    def deco(draw):
        _register(name, Figure(study, draw, report))
        return draw

    return deco


def report_only(name: str, study: Callable[[], Any], report: Callable[[Any, Path], list[Path]]) -> None:
    """Register a study whose output is its report alone (no figure)."""
    _register(name, Figure(study, None, report))


def save(fig, outdir: Path, name: str) -> list[Path]:
    """Write ``name``.png and ``name``.pdf (no timestamps in the PDF, so reruns are byte-stable)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = [outdir / f"{name}.png", outdir / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=130, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    plt.close(fig)
    return paths
