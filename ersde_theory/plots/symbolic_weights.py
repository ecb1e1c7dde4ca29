"""The one-step prediction-error weights (docs/theory.md eqs. 17–18) C_1, C_2 and the gain r of the seven NSFs on a
20-step Karras schedule, and the ordering result (ODE minimises |C_n|, SDE-like φ has the smaller gain).

Numbers are the solver's coefficients (``ersde_coefficients``, tested against the symbolic layer to 1e-12);
each figure also writes its derivation as a LaTeX caption (``*_caption.tex``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..studies.figure_data import karras_coefficients
from ..theory.nsf import NSF_NAMES, resolve_nsf
from ..theory.symbolic import ordering_derivation, series_derivation
from .registry import figure, plt, save

N_STEPS, SIGMA_MIN, SIGMA_MAX = 20, 0.002, 80.0


def _coeffs():
    return karras_coefficients(N_STEPS, SIGMA_MIN, SIGMA_MAX)


def _caption(outdir, name, derivation) -> Path:
    path = Path(outdir) / f"{name}_caption.tex"
    path.write_text(f"% {derivation.title}\n\\[\n{derivation.latex()}\n\\]\n")
    return path


@figure("prediction_error_weights", study=_coeffs)
def prediction_error_weights(data, outdir):
    sig, co = data
    i = np.arange(N_STEPS - 1)  # the last step (to σ = 0) returns x_θ: r = C_n = 0
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for name, c in co.items():
        axes[0].semilogy(i, np.abs(c.c1[:-1]), marker=".", label=name)
        axes[1].semilogy(i, np.abs(c.c2[:-1]), marker=".", label=name)
        axes[2].plot(i, c.r[:-1], marker=".", label=name)
    axes[0].set(title=r"$|C_1|$ (weight of $x_\theta'$)", xlabel="step index $i$")
    axes[1].set(title=r"$|C_2|$ (weight of $x_\theta''$)", xlabel="step index $i$")
    axes[2].set(title=r"gain $r=\varphi(\sigma_{i+1})/\varphi(\sigma_i)$ on past error", xlabel="step index $i$")
    axes[2].legend(fontsize=8)
    fig.suptitle(
        f"One-step prediction-error weights, {N_STEPS}-step Karras schedule "
        f"($\\sigma$ {SIGMA_MAX:g} → {SIGMA_MIN:g}, then 0)",
        y=1.02,
    )
    return save(fig, outdir, "prediction_error_weights") + [
        _caption(outdir, "prediction_error_weights", series_derivation(3))
    ]


@figure("ordering_result", study=_coeffs)
def ordering_result(data, outdir):
    sig, co = data
    ode = co["ode"]
    i = np.arange(N_STEPS - 1)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    s_, t_ = 2.0, 0.5  # one step, G(σ) = φ_t/φ(σ) against the ODE's σ_t/σ
    grid = np.linspace(t_, s_, 200)
    for name in NSF_NAMES:
        f = resolve_nsf(name)
        axes[0].plot(grid, f(t_) / f(grid), label=name)
    axes[0].plot(grid, t_ / grid, "k--", lw=1, label=r"$\sigma_t/\sigma$")
    axes[0].set(
        title=rf"$G(\sigma)=\varphi_t/\varphi(\sigma)\leq\sigma_t/\sigma$  ($\sigma_s={s_:g}\to\sigma_t={t_:g}$)",
        xlabel=r"$\sigma$",
    )
    axes[0].legend(fontsize=7)
    for name, c in co.items():
        (line,) = axes[1].plot(i, np.abs(c.c1[:-1]) / np.abs(ode.c1[:-1]), marker=".", label=name)
        axes[1].plot(i, np.abs(c.c2[:-1]) / np.abs(ode.c2[:-1]), ls="--", color=line.get_color())
        axes[2].plot(i, c.r[:-1] / ode.r[:-1], marker=".", label=name)
    axes[1].axhline(1, color="k", lw=0.5)
    axes[2].axhline(1, color="k", lw=0.5)
    axes[1].set(title=r"$|C_n^\varphi|/|C_n^{ODE}|\geq 1$ ($n=1$ solid, $n=2$ dashed)", xlabel="step index $i$")
    axes[2].set(title=r"$r^\varphi/r^{ODE}\leq 1$", xlabel="step index $i$")
    axes[2].legend(fontsize=7)
    fig.suptitle(
        "The ordering result: the ODE minimises every one-step prediction error weight; "
        "SDE-like NSFs damp past errors more",
        y=1.02,
    )
    return save(fig, outdir, "ordering_result") + [_caption(outdir, "ordering_result", ordering_derivation())]
