"""Order plots of the published and the corrected ER-SDE-Solver-3 on 1-D Gaussian data (data from
:func:`ersde_theory.studies.third_order.order_panel_data`)."""

from __future__ import annotations

import numpy as np

from ..studies import third_order as T
from .registry import figure, plt, save

_STYLE = {
    T.ER1.label: ("C7", "v"),
    T.ER2.label: ("C0", "o"),
    T.ER3_PUB.label: ("C3", "s"),
    T.ER3_COR.label: ("C2", "D"),
    T.ER3_COR_EULER.label: ("C1", "x"),
}


def _curve(ax, ns, err, sign, label):
    """Log-log error curve; open markers where the signed error is positive (a sign change shows)."""
    color, marker = _STYLE[label]
    ns, err = np.asarray(ns), np.asarray(err)
    ax.loglog(ns, err, color=color, lw=1, label=label)
    pos = np.asarray(sign) > 0
    ax.loglog(ns[~pos], err[~pos], marker, color=color, ms=4, ls="none")
    ax.loglog(ns[pos], err[pos], marker, color=color, ms=4, ls="none", mfc="none")


def _slopes(ax, ns, anchor, orders):
    ns = np.asarray(ns, float)
    for p in orders:
        ax.loglog(ns, anchor * (ns / ns[0]) ** (-p), "k:", lw=0.7)
        ax.text(ns[-1], anchor * (ns[-1] / ns[0]) ** (-p), f" $N^{{-{p}}}$", fontsize=7, va="center")


def draw_order_panels(axes, data: dict) -> None:
    """Draw the four panels (Karras ODE, log-uniform ODE, weak er_sde_5, strong er_sde_5) of ``data``
    (:func:`ersde_theory.studies.third_order.order_panel_data`) on ``axes``."""
    for ax, key, title in (
        (axes[0], "ode_karras", "φ = σ, Karras 80 → 0.002"),
        (axes[1], "ode_loguniform", "φ = σ, log-uniform 2 → 0.02"),
    ):
        res = data[key]
        for lab, r in res["variants"].items():
            _curve(ax, res["ns"], r["max_error"], r["sign"], lab)
        _slopes(ax, res["ns"], res["variants"][T.ER2.label]["max_error"][0] * 3, (2, 3))
        ax.set(title=title, xlabel="steps N", ylabel="max end-point error")
    weak_ns = data["weak"]["ns"]
    weak = data["weak"]["nsfs"]["er_sde_5"]
    for lab, r in weak.items():
        _curve(axes[2], weak_ns, r["std_error"], r["sign"], lab)
    _slopes(axes[2], weak_ns, weak[T.ER2.label]["std_error"][0] * 3, (2, 3))
    axes[2].set(title="weak: |std error|, er_sde_5 (exact moments)", xlabel="steps N", ylabel="|std(x_N) − exact|")
    strong_ns, n_paths = data["strong"]["ns"], data["strong"]["n_paths"]
    strong = data["strong"]["nsfs"]["er_sde_5"]
    for lab, r in strong.items():
        _curve(axes[3], strong_ns, r["rms"], -np.ones(len(strong_ns)), lab)
    _slopes(axes[3], strong_ns, strong[T.ER1.label]["rms"][0] * 2, (1,))
    axes[3].set(
        title=f"strong: RMS error, er_sde_5 ({n_paths} coupled paths)", xlabel="steps N", ylabel="RMS end-point error"
    )
    axes[3].legend(fontsize=7, loc="lower left")


@figure("third_order", study=T.order_panel_data)
def third_order(data, outdir):
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    draw_order_panels(axes.ravel(), data)
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle("ER-SDE-Solver-3, published vs corrected, on N(0.5, 0.5²) data (open markers: error > 0)")
    fig.tight_layout()
    return save(fig, outdir, "third_order")
