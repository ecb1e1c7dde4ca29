"""Log-log error against steps for every ER-SDE solver (the convergence study at CPU defaults)."""

from __future__ import annotations

import numpy as np

from ..studies import convergence as study
from .registry import figure, plt, save

ROWS = (
    ("strong_rms", "strong RMS error"),
    ("strong_median", "median path error"),
    ("weak_second_moment", "weak error, E|x|²/D"),
)
_COLORS = {"ER-SDE-1": "C0", "ER-SDE-2": "C1", "ER-SDE-3": "C2", "ER-SDE-3c": "C3"}


def _reference_slopes(ax, steps, anchor):
    n = np.asarray(steps, dtype=float)
    for k, ls in ((1, ":"), (2, "-."), (3, "--")):
        ax.loglog(n, anchor * (n / n[0]) ** (-k), color="0.6", lw=0.8, ls=ls, label=f"$N^{{-{k}}}$")


LEGEND_NOTE = (
    "Legend: solver and its fitted order with exact coefficients; '–' = no order (in the fit window the error "
    "changes sign or stops decreasing). ER-SDE-3c = ER-SDE-3 with the corrected derivative estimates "
    "(derivatives='corrected').\n"
    "Solid lines, dots: exact coefficients; dashed lines, crosses: the official 100-point quadrature (where the two "
    "coincide, the crosses sit on the dots). Open circles: weak errors below 2 Monte-Carlo standard errors."
)


def convergence_figure(results: dict, problem: str):
    """Rows = error kinds, columns = NSFs; solid lines and dots = exact, dashed lines and crosses = official
    quadrature; the legend gives the fitted order (exact quadrature); open markers: weak errors below 2 Monte-Carlo
    standard errors; a note under the panels explains the labels."""
    entries = [e for e in results["entries"] if e["problem"] == problem]
    nsfs = list(dict.fromkeys(e["nsf"] for e in entries))
    fig, axes = plt.subplots(
        len(ROWS), len(nsfs), figsize=(3.3 * len(nsfs), 3.0 * len(ROWS)), squeeze=False, sharex=True
    )
    for j, nsf in enumerate(nsfs):
        for i, (kind, title) in enumerate(ROWS):
            ax = axes[i, j]
            sel = [e for e in entries if e["nsf"] == nsf and e["error_kind"] == kind]
            for e in sel:
                exact = e["quadrature"] == "exact"
                p = e["fitted_order"]
                lab = (f"{e['solver']}: {p:.2f}" if p is not None else f"{e['solver']}: –") if exact else None
                n = np.asarray(e["steps"], dtype=float)
                err = np.maximum(np.asarray(e["errors"], dtype=float), 1e-300)
                col = _COLORS.get(e["solver"], "k")
                ax.loglog(n, err, "-" if exact else "--", color=col, label=lab, alpha=0.9 if exact else 0.6)
                ok = err >= 2 * np.asarray(e["se"]) if "se" in e else np.ones(n.size, dtype=bool)
                ax.loglog(
                    n[ok], err[ok], "o" if exact else "x", ms=3 if exact else 5, color=col, alpha=0.9 if exact else 0.7
                )
                ax.loglog(n[~ok], err[~ok], "o", ms=4, mfc="none", color=col, alpha=0.6)
            if sel:
                _reference_slopes(ax, sel[0]["steps"], max(max(e["errors"]) for e in sel))
            ax.set_title(f"{nsf}: {title}", fontsize=9)
            if i == len(ROWS) - 1:
                ax.set_xlabel("steps N")
            ax.legend(fontsize=6, loc="lower left")
    fig.suptitle(f"{problem}: error vs steps (solid: exact coefficients, dashed: official quadrature)")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.text(0.01, 0.005, LEGEND_NOTE, fontsize=7, va="bottom", ha="left", wrap=True)
    return fig


def plot_convergence(results: dict, outdir, suffix: str = "") -> list:
    """Write ``convergence_<problem><suffix>.png/.pdf`` for every problem of ``results``."""
    paths = []
    for problem in dict.fromkeys(e["problem"] for e in results["entries"]):
        paths += save(convergence_figure(results, problem), outdir, f"convergence_{problem}{suffix}")
    return paths


@figure("convergence", study=study.run_cpu_default, report=study.write_outputs)
def convergence(results, outdir):
    """The log-log plots of the study at CPU defaults."""
    return plot_convergence(results, outdir)
