"""Issue 7: order plots of the published and the corrected ER-SDE-Solver-3 on 1-D Gaussian data."""

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


def order_panels(
    axes,
    ode_ns=(10, 20, 40, 80, 160, 320, 640, 1280),
    weak_ns=(10, 20, 40, 80, 160, 320, 640),
    strong_ns=(10, 20, 40, 80, 160),
    n_paths: int = 300,
):
    """Draw the four panels (Karras ODE, log-uniform ODE, weak er_sde_5, strong er_sde_5) on ``axes``."""
    variants = T.MAIN_VARIANTS + (T.ER3_COR_EULER,)
    for ax, kw, title in (
        (axes[0], {}, "φ = σ, Karras 80 → 0.002"),
        (axes[1], dict(schedule="loguniform", sigma_min=0.02, sigma_max=2.0), "φ = σ, log-uniform 2 → 0.02"),
    ):
        res = T.ode_errors(ode_ns, variants, fit_windows=(), n_points=8, **kw)
        for lab, r in res["variants"].items():
            _curve(ax, ode_ns, r["max_error"], r["sign"], lab)
        _slopes(ax, ode_ns, res["variants"][T.ER2.label]["max_error"][0] * 3, (2, 3))
        ax.set(title=title, xlabel="steps N", ylabel="max end-point error")
    weak = T.weak_errors(weak_ns, T.MAIN_VARIANTS, ("er_sde_5",), fit_windows=())["nsfs"]["er_sde_5"]
    for lab, r in weak.items():
        _curve(axes[2], weak_ns, r["std_error"], r["sign"], lab)
    _slopes(axes[2], weak_ns, weak[T.ER2.label]["std_error"][0] * 3, (2, 3))
    axes[2].set(title="weak: |std error|, er_sde_5 (exact moments)", xlabel="steps N", ylabel="|std(x_N) − exact|")
    strong = T.strong_errors(
        strong_ns,
        (T.ER1,) + T.MAIN_VARIANTS,
        ("er_sde_5",),
        n_paths=n_paths,
        fit_window=(strong_ns[0], strong_ns[-1]),
        boot=50,
    )["nsfs"]["er_sde_5"]
    for lab, r in strong.items():
        _curve(axes[3], strong_ns, r["rms"], -np.ones(len(strong_ns)), lab)
    _slopes(axes[3], strong_ns, strong[T.ER1.label]["rms"][0] * 2, (1,))
    axes[3].set(
        title=f"strong: RMS error, er_sde_5 ({n_paths} coupled paths)", xlabel="steps N", ylabel="RMS end-point error"
    )
    axes[3].legend(fontsize=7, loc="lower left")


@figure("third_order")
def third_order(outdir):
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    order_panels(axes.ravel())
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle("ER-SDE-Solver-3, published vs corrected, on N(0.5, 0.5²) data (open markers: error > 0)")
    fig.tight_layout()
    return save(fig, outdir, "third_order")
