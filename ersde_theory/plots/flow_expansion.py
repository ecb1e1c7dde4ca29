"""Error against N of corrected ER-SDE-3 with the λ and the flow expansion (data from
:func:`ersde_theory.studies.flow_expansion.run_study`)."""

from __future__ import annotations

import numpy as np

from .registry import plt, save

_STYLE = {"lambda": ("C3", "s", "expansion in λ"), "flow": ("C2", "D", "expansion in s (flow)")}


def flow_expansion_figure(res: dict):
    """One panel per (case, grid): |error| against N for both expansions, with N^{-2} and N^{-3} guides."""
    rows = res["rows"]
    ns = np.asarray(res["ns"], dtype=float)
    fig, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.0), sharex=True)
    for ax, row in zip(np.atleast_1d(axes), rows, strict=True):
        for e, (color, marker, label) in _STYLE.items():
            ax.loglog(ns, np.abs(row[e]["errors"]), marker=marker, color=color, ms=3.5, lw=1, label=label)
        anchor = abs(row["lambda"]["errors"][0])
        for p in (2, 3):
            ax.loglog(ns, anchor * (ns / ns[0]) ** (-p), "k:", lw=0.7)
            ax.text(ns[-1], anchor * (ns[-1] / ns[0]) ** (-p), f" $N^{{-{p}}}$", fontsize=7, va="center")
        ax.set_title(f"{row['case']}, shift {row['shift']:g}", fontsize=9)
        ax.set_xlabel("N")
    np.atleast_1d(axes)[0].set_ylabel("|error|")
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_flow_expansion(res: dict, outdir) -> list:
    """Write ``flow_expansion.png``/``.pdf`` in ``outdir``."""
    return save(flow_expansion_figure(res), outdir, "flow_expansion")
