"""Writing a measurement's results: one JSON file with the data and one Markdown file with its tables
(:func:`markdown_table`, the one table writer of every report).

Every study and bench writes through :func:`write_report`, so the files look alike and are never left
half-written: each is written to a temporary file beside it and renamed into place.

Provenance: every report records the command that made it and the package version, in the JSON (key
``provenance``) and in the Markdown (a line under the title). Timings are not results: keys named in
``TIMING_KEYS`` are moved out of the data into ``stem.timings.json`` beside the report (ignored by git), so
that regenerating a report with the same numbers rewrites it byte for byte.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from .intervals import paired_t_interval, t_interval

TIMING_KEYS = frozenset({"seconds", "solver_seconds", "runtime_s"})
FD_COLUMNS = (
    "NFE k: FD_n, the distance of a block of n samples (comparable with published FIDs; a floor, docs/theory.md "
    "eq. 32, above the true distance); FD_∞ NFE k: extrapolated to n = ∞ (eq. 52), an interval for the true distance"
)  # what the columns of :func:`nfe_table` hold, for the reports' captions


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> list[str]:
    """A Markdown table as lines: ``| h1 | h2 |``, the separator ``|---|---|``, then one line per row (cells as
    given, formatted by the caller)."""
    return [
        "| " + " | ".join(map(str, header)) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(map(str, row)) + " |" for row in rows),
    ]


def fd_cells(fd_blocks, inf_blocks=None) -> dict:
    """The Fréchet-distance cells of a benchmark row from its per-block values: ``fd`` ± ``ci95`` and ``blocks`` (FD_n,
    docs/theory.md eq. (31), as published FIDs report it: a floor (eq. (32)) above the true distance), and ``fd_inf``
    ± ``fd_inf_ci95`` and ``fd_inf_blocks`` (FD_∞, eq. (52): an interval for the true distance); means and 95 %
    t-half-widths over the blocks (eq. (33)). ``inf_blocks`` None: no FD_∞ cells (the blocks are too small for its
    interval, :func:`~ersde_theory.evaluation.frechet.infinity_valid`)."""
    fd_blocks = np.asarray(fd_blocks, dtype=np.float64)
    m, h = t_interval(fd_blocks)
    cells = dict(fd=m, ci95=h, blocks=fd_blocks.tolist())
    if inf_blocks is not None:
        inf_blocks = np.asarray(inf_blocks, dtype=np.float64)
        mi, hi = t_interval(inf_blocks)
        cells.update(fd_inf=mi, fd_inf_ci95=hi, fd_inf_blocks=inf_blocks.tolist())
    return cells


def floor_cell(values, n: int) -> dict:
    """A benchmark's floor from the FDs of real (or exact) samples of size ``n`` (docs/theory.md eq. (32)):
    ``{"fd": mean, "ci95": 95 % t-half-width (eq. (33)), "n": n}``."""
    m, h = t_interval(values)
    return {"fd": m, "ci95": h, "n": n}


def paired_diffs(rows: list[dict], per_block: dict, reference: str) -> None:
    """The Δ cells of :func:`nfe_table`: into each row, its paired difference to ``reference`` at the same NFE, block
    by block (:func:`~ersde_theory.evaluation.intervals.paired_t_interval`, eq. (33)), as ``diff_vs_ref`` ±
    ``diff_ci95``; 0 ± 0 for the reference itself. ``per_block``: (sampler, NFE) → the per-block values."""
    for r in rows:
        if r["sampler"] == reference:
            r["diff_vs_ref"], r["diff_ci95"] = 0.0, 0.0
        else:
            a, b = per_block[(r["sampler"], r["nfe"])], per_block[(reference, r["nfe"])]
            r["diff_vs_ref"], r["diff_ci95"] = paired_t_interval(a, b)


def fd_log(row: dict, fmt: str = "7.3f") -> str:
    """A progress-log summary of a row's FD cells: 'FD m ± h' and, where it has them, 'FD_∞ m ± h'."""
    text = f"FD {row['fd']:{fmt}} ± {row['ci95']:.3g}"
    return text + (f"  FD_∞ {row['fd_inf']:{fmt}} ± {row['fd_inf_ci95']:.3g}" if "fd_inf" in row else "")


def fd_caption(rows: list[dict], n: int, dim: int) -> str:
    """What a benchmark's FD columns hold (:data:`FD_COLUMNS`), or, where its rows have no FD_∞ cells, why."""
    if all("fd_inf" in r for r in rows):
        return FD_COLUMNS
    return (
        "NFE k: FD_n, the distance of a block of n samples (comparable with published FIDs; a floor, docs/theory.md "
        f"eq. 32, above the true distance). FD_∞ (eq. 52) is not reported: blocks of n = {n} leave halves of {n // 2} "
        f"≤ {dim} feature dimensions, where its interval does not cover the true distance"
    )


def nfe_table(rows: list[dict], nfes, reference: str, fmt: str = ".2f", extra=None) -> list[str]:
    """The table of a sampler × NFE benchmark, one line per sampler (in the order of ``rows``): its ``fd`` ± ``ci95``
    at each NFE, then, when every row has them (:func:`fd_cells`), its ``fd_inf`` ± ``fd_inf_ci95`` at each NFE
    (columns "FD_∞ NFE k"), then its paired difference to ``reference`` (``diff_vs_ref`` ± ``diff_ci95``; "—" for
    the reference itself), then, with ``extra = (title, cell(row))``, one more column per NFE."""
    by = {(r["sampler"], r["nfe"]): r for r in rows}
    names = list(dict.fromkeys(r["sampler"] for r in rows))
    inf = all("fd_inf" in r for r in rows)
    head = ["sampler", *(f"NFE {k}" for k in nfes), *(f"FD_∞ NFE {k}" for k in nfes if inf)]
    head += [f"Δ NFE {k}" for k in nfes] + ([f"{extra[0]} NFE {k}" for k in nfes] if extra else [])
    cells = []
    for name in names:
        row = [name, *(f"{by[(name, k)]['fd']:{fmt}} ± {by[(name, k)]['ci95']:{fmt}}" for k in nfes)]
        row += [f"{by[(name, k)]['fd_inf']:{fmt}} ± {by[(name, k)]['fd_inf_ci95']:{fmt}}" for k in nfes if inf]
        row += [
            "—" if name == reference else f"{by[(name, k)]['diff_vs_ref']:+{fmt}} ± {by[(name, k)]['diff_ci95']:{fmt}}"
            for k in nfes
        ]
        row += [extra[1](by[(name, k)]) for k in nfes] if extra else []
        cells.append(row)
    return markdown_table(head, cells)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def package_version() -> str:
    from .. import __version__

    return __version__


def invoking_command(argv=None) -> str:
    """The command line that is running, as ``python -m ersde_theory ARGS`` when it is the package's command
    line (``python -m ersde_theory`` or the ``ersde`` script), else ``python (API call)``."""
    argv = sys.argv if argv is None else argv
    prog = Path(argv[0]).name if argv else ""
    if prog == "ersde" or Path(argv[0] if argv else "").parent.name == "ersde_theory":
        return shlex.join(["python", "-m", "ersde_theory", *argv[1:]])
    return "python (API call)"


def provenance(command: str | None = None) -> dict:
    """{command, package}: ``command`` (default: :func:`invoking_command`) and ``ersde_theory <version>``."""
    return dict(command=command or invoking_command(), package=f"ersde_theory {package_version()}")


def split_timings(data, path: str = ""):
    """(data without the ``TIMING_KEYS``, {json-path: seconds}) for nested dicts and lists."""
    timings = {}

    def walk(obj, where):
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                sub = f"{where}/{k}"
                if k in TIMING_KEYS and isinstance(v, (int, float)):
                    timings[sub] = v
                else:
                    out[k] = walk(v, sub)
            return out
        if isinstance(obj, (list, tuple)):
            return [walk(v, f"{where}/{i}") for i, v in enumerate(obj)]
        return obj

    return walk(data, path), timings


def _with_provenance_line(markdown: str, prov: dict) -> str:
    line = f"Generated by `{prov['command']}` ({prov['package']})."
    head, _, rest = markdown.partition("\n")
    if head.startswith("# "):
        return f"{head}\n\n{line}\n\n{rest.lstrip(chr(10))}"
    return f"{line}\n\n{markdown}"


def write_report(
    outdir, stem: str, data, markdown: str, *, default: Callable | None = None, command: str | None = None
) -> tuple[Path, Path]:
    """Write ``outdir/stem.json`` (``data`` without its timings, plus ``provenance``; indented; ``default``
    as in :func:`json.dumps`), ``outdir/stem.md`` (``markdown`` with the provenance line under its title)
    and, when ``data`` holds timings, ``outdir/stem.timings.json``; create ``outdir`` if needed. Returns the
    JSON and Markdown paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    prov = provenance(command)
    data, timings = split_timings(data)
    if isinstance(data, dict):
        data = dict(provenance=prov, **{k: v for k, v in data.items() if k != "provenance"})
    jpath, mpath = outdir / f"{stem}.json", outdir / f"{stem}.md"
    _write_atomic(jpath, json.dumps(data, indent=1, default=default) + "\n")
    md = _with_provenance_line(markdown, prov)
    _write_atomic(mpath, md if md.endswith("\n") else md + "\n")
    if timings:
        text = json.dumps(dict(provenance=prov, seconds=timings), indent=1) + "\n"
        _write_atomic(outdir / f"{stem}.timings.json", text)
    return jpath, mpath
