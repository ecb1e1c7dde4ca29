"""φ(σ) and h̃²(σ) = σφ'/φ − 1 of the official NSF family over σ ∈ [0.002, 80]."""

from __future__ import annotations

from ..studies.figure_data import nsf_curves
from .registry import figure, plt, save


@figure("nsf_family", study=nsf_curves)
def nsf_family(data, outdir):
    sig = data["sigma"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    for name, (phi, h2) in data["curves"].items():
        a1.loglog(sig, phi / phi[-1], label=name)  # φ is defined up to a factor: normalise at σ_max
        a2.semilogx(sig, h2, label=name)
    a1.set(xlabel=r"$\sigma$", ylabel=r"$\varphi(\sigma)/\varphi(80)$", title="noise scale functions")
    a2.set(
        xlabel=r"$\sigma$",
        ylabel=r"$\tilde h^2 = \sigma\varphi'/\varphi - 1$",
        title="relative noise level",
        ylim=(-0.05, 2.5),
    )
    a2.axhline(0, color="k", lw=0.5)
    a2.legend(fontsize=8)
    return save(fig, outdir, "nsf_family")
