"""Figures of the benchmarks, drawn from the data their studies return (``ersde_theory.studies.bench_quality``,
``nsf_search``, ``official_vs_exact``, ``bench_flow``): each ``plot_*(data, outdir)`` writes PNG and PDF files and
returns their paths. The command line runs the study, then draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..evaluation.intervals import z_quantile
from ..solvers.registry import SAMPLERS
from ..studies.bench_quality import METRIC_LABELS
from ..studies.nsf_search import BASELINE, candidate_nsf, candidates
from ..studies.official_vs_exact import VARIANTS
from .registry import plt, save

__all__ = ["plot_quality", "plot_problem", "plot_nsf", "plot_official", "plot_bench_flow", "plot_bench_fmnist"]


def _stem(name: str, data: dict) -> str:
    return f"{name}_quick" if data.get("preset") == "quick" else name


def plot_problem(data: dict, problem: str, outdir: Path, stem: str) -> list[Path]:
    """Metric vs NFE per denoiser for one problem, with 95 % CI bands and the noise floor ± 2 sd."""
    recs = [r for r in data["records"] if r["problem"] == problem]
    metrics = list(data["floors"][problem])
    dens = data["config"]["denoisers"]
    fig, axes = plt.subplots(
        len(metrics), len(dens), figsize=(5.2 * len(dens), 2.9 * len(metrics)), squeeze=False, sharex=True
    )
    cmap = plt.get_cmap("tab20")
    for j, den in enumerate(dens):
        for i, m in enumerate(metrics):
            ax = axes[i, j]
            f, fsd = data["floors"][problem][m]
            vals = [r["metrics"][m]["value"] for r in recs if r["denoiser"] == den]
            bottom = 0.3 * min(min(vals), max(f - 2 * fsd, f / 3))  # CI bands below this are cut off
            for c, name in enumerate(SAMPLERS):
                rs = sorted((r for r in recs if r["denoiser"] == den and r["sampler"] == name), key=lambda r: r["nfe"])
                if not rs:
                    continue
                x = [r["nfe"] for r in rs]
                v = np.array([r["metrics"][m]["value"] for r in rs])
                lo = np.array([r["metrics"][m]["ci"][0] for r in rs])
                hi = np.array([r["metrics"][m]["ci"][1] for r in rs])
                style = "-" if not SAMPLERS[name].stochastic else "--"
                lw = 2.2 if name.startswith("er_sde") else 1.2
                ax.plot(x, v, style, color=cmap(c), lw=lw, label=name, marker="o", ms=2.5)
                ax.fill_between(x, np.maximum(lo, bottom), hi, color=cmap(c), alpha=0.15, lw=0)
            ax.axhspan(max(f - 2 * fsd, bottom), f + 2 * fsd, color="0.5", alpha=0.25, lw=0)
            ax.axhline(f, color="0.4", lw=0.8, ls=":")
            ax.set(xscale="log", yscale="log", title=f"{problem}, {den}: {METRIC_LABELS[m]}", ylim=(bottom, None))
            ax.minorticks_off()
            ax.set_xticks(data["config"]["nfes"], [str(v) for v in data["config"]["nfes"]])
            if i == len(metrics) - 1:
                ax.set_xlabel("NFE")
    axes[0, -1].legend(fontsize=6.5, ncol=2, loc="upper right")
    fig.suptitle("Sample quality vs NFE (95 % CI bands; grey: noise floor ± 2 sd; solid ODE, dashed SDE)")
    fig.tight_layout()
    return save(fig, outdir, f"{stem}_{problem}")


def plot_nsf(data: dict, outdir: Path, stem: str | None = None) -> list[Path]:
    """Selection-stage scores, one-step weights vs score, and h̃² of the winner and the references."""
    stem = stem or _stem("nsf_study", data)
    cands = data["candidates"]
    by_name = {c["name"]: c for c in candidates(data["preset"] == "quick")}
    nfes = data["config"]["nfes"]
    m = data["config"]["metric"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    fams = sorted({c["family"] for c in cands})
    for f_i, fam in enumerate(fams):
        cs = [c for c in cands if c["family"] == fam]
        axes[0].scatter(
            [100 * c["selection"][str(nfes[0])][m]["rel"] for c in cs],
            [100 * c["selection"][str(nfes[-1])][m]["rel"] for c in cs],
            label=fam,
            s=14,
            color=f"C{f_i}",
        )
        axes[1].scatter(
            [c["weights"][str(nfes[0])]["sum_log_r"] for c in cs], [100 * c["score"] for c in cs], s=14, color=f"C{f_i}"
        )
    axes[0].axhline(0, color="0.5", lw=0.8)
    axes[0].axvline(0, color="0.5", lw=0.8)
    axes[0].set(
        xlabel=f"Δ sliced W2² vs {BASELINE} at NFE {nfes[0]} (%)",
        ylabel=f"at NFE {nfes[-1]} (%)",
        title="selection stage (ring_2d, learned)",
    )
    axes[0].legend(fontsize=7)
    axes[1].set(
        xlabel=f"Σ log r at NFE {nfes[0]} (more negative: more noise / correction)",
        ylabel="score = worse of the two (%)",
        title="one-step weights vs benchmark",
    )
    sig = np.geomspace(0.002, 80, 400)
    for c in [c for c in cands if c["name"] in (data["best"], BASELINE, "ode", "sde")]:
        axes[2].plot(sig, candidate_nsf(by_name[c["name"]]).h_tilde_sq(sig), label=c["name"])
    axes[2].set(xscale="log", xlabel="σ", ylabel="h̃²(σ)", title="relative noise level", ylim=(-0.05, 3))
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return save(fig, outdir, stem)


def plot_official(data: dict, outdir: Path, stem: str | None = None) -> list[Path]:
    """Relative sliced-W2² difference of each coefficient variant to the exact coefficients, per NFE."""
    stem = stem or _stem("official_vs_exact", data)
    z = z_quantile(0.95)
    cfg = data["config"]
    probs, dens = list(cfg["n"]), ("exact", "learned")
    fig, axes = plt.subplots(len(probs), len(dens), figsize=(11, 3.6 * len(probs)), squeeze=False)
    order = max(cfg["orders"])
    for i, prob in enumerate(probs):
        for j, den in enumerate(dens):
            ax = axes[i, j]
            for v_i, var in enumerate(VARIANTS[1:]):
                rs = sorted(
                    (
                        r
                        for r in data["records"]
                        if (r["problem"], r["denoiser"], r["order"], r["variant"]) == (prob, den, order, var)
                    ),
                    key=lambda r: r["nfe"],
                )
                x = np.array([r["nfe"] for r in rs]) + 0.12 * (v_i - 1)
                rel = [r["metrics"]["sw2"] for r in rs]
                y = np.array([m["diff"] / m["exact"] for m in rel])
                err = np.array([z * m["se"] / m["exact"] for m in rel])
                ax.errorbar(x, 100 * y, yerr=100 * err, fmt="o", ms=3, capsize=2, label=var)
            ax.axhline(0, color="0.5", lw=0.8)
            ax.set(title=f"{prob}, {den} denoiser, ER-SDE-{order}", xlabel="NFE", ylabel="Δ sliced W2² vs exact (%)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return save(fig, outdir, stem)


def _flow_panel(ax, rows: list[dict], key: str = "fd", ci: str = "ci95", offset: float = 0.0) -> None:
    """``key`` ± ``ci`` vs NFE, one line per sampler of a bench-flow table (ER-SDE solid, baselines dashed)."""
    names = list(dict.fromkeys(r["sampler"] for r in rows))
    cmap = plt.get_cmap("tab20")
    for c, name in enumerate(names):
        rs = sorted((r for r in rows if r["sampler"] == name), key=lambda r: r["nfe"])
        x = np.array([r["nfe"] for r in rs], dtype=float) * (1 + 0.012 * (c - len(names) / 2))
        y = np.array([r[key] for r in rs]) - offset
        err = np.array([r[ci] for r in rs])
        ersde = name.startswith("ER-SDE")
        ax.errorbar(x, y, yerr=err, fmt="-o" if ersde else "--s", ms=3, lw=1.8 if ersde else 1.2, capsize=2,
                    color=cmap(c), label=name)  # fmt: skip
    nfes = sorted({r["nfe"] for r in rows})
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(nfes, [str(v) for v in nfes])
    ax.set_xlabel("NFE")


def plot_bench_flow(data: dict, outdir, stem: str = "bench_flow") -> list[Path]:
    """``bench_flow.png/pdf`` of a ``bench flow`` result, laid out to be read at a column's width (2 × 2 panels,
    one legend below): FD_digits and the mean-intensity offset to the data on the learned flow model, and the toy's
    Fréchet distance with the exact and the perturbed velocity (95 % CIs over seed blocks)."""
    d = data["digits"]
    toys = data.get("toy", {}).get("velocities", {})
    n = 2 + len(toys)
    cols = 2 if n > 1 else 1
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.0, 3.0 * rows + 1.6), squeeze=False)
    panels = list(axes.ravel())
    ax = panels[0]
    _flow_panel(ax, d["rows"])
    f = d["real_floor"]
    ax.axhspan(f["fd"] - f["ci95"], f["fd"] + f["ci95"], color="0.5", alpha=0.25, lw=0)
    ax.set(yscale="log", ylabel="FD_digits", title=f"{d['model']}: FD_digits (grey: data floor)")
    ax = panels[1]
    _flow_panel(ax, d["rows"], "intensity", "intensity_ci95", offset=d["data_intensity"])
    ax.axhline(0, color="0.4", lw=0.8, ls=":")
    ax.set(ylabel="mean intensity − data's", title=f"{d['model']}: brightness offset")
    for j, (vname, v) in enumerate(toys.items()):
        ax = panels[2 + j]
        _flow_panel(ax, v["rows"])
        what = "exact velocity" if vname == "exact" else f"perturbed ({vname}) velocity"
        ax.set(yscale="log", ylabel="FD to exact moments", title=f"toy {data['toy']['problem']}: {what}")
    for ax in panels[n:]:
        ax.set_axis_off()
    for ax in panels[:n]:
        ax.title.set_fontsize(9)
        ax.tick_params(labelsize=8)
    handles, labels = panels[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, ncol=3, loc="lower center", bbox_to_anchor=(0.5, 0.0), frameon=False)
    fig.suptitle(f"bench flow: ER-SDE (solid) vs flow baselines (dashed); shift {data['shift']}; 95 % CIs", fontsize=10)
    fig.tight_layout(rect=(0, 0.16 if n > 2 else 0.3, 1, 1))
    return save(fig, Path(outdir), stem)


def plot_quality(data: dict, outdir, stem: str | None = None) -> list[Path]:
    """``bench_quality[_quick]_<problem>.png/pdf`` for every problem of a ``bench_quality.run_quality`` result."""
    stem = stem or _stem("bench_quality", data)
    paths = []
    for prob in data["config"]["n"]:
        paths += plot_problem(data, prob, Path(outdir), stem)
    return paths


def plot_bench_fmnist(data: dict, outdir, stem: str = "bench_fmnist") -> list[Path]:
    """``bench_fmnist.png/pdf``: FD_fmnist vs NFE per scheduler (95 % CIs over seed blocks, grey: the real-data floor),
    one panel per model; and ``bench_fmnist_grid.png``: the first images of every cell, rows schedulers, columns NFE,
    the same seeds everywhere (from the data's ``grid``, when the study returned it)."""
    parts = [k for k in ("vp", "flow") if k in data]
    fig, axes = plt.subplots(1, len(parts), figsize=(6.5 * len(parts), 4.8), squeeze=False)
    f = data["real_floor"]
    for ax, key in zip(axes[0], parts):
        _flow_panel(ax, data[key]["rows"])
        ax.axhspan(f["fd"] - f["ci95"], f["fd"] + f["ci95"], color="0.5", alpha=0.25, lw=0)
        ax.set(yscale="log", ylabel="FD_fmnist (NOT Inception-FID)", title=f"{data[key]['model']} (grey: data floor)")
        ax.legend(fontsize=6.5, ncol=2, loc="upper right")
    fig.suptitle("bench fmnist: ER-SDE vs diffusers' schedulers (95 % CIs over seed blocks)")
    fig.tight_layout()
    paths = save(fig, Path(outdir), stem)
    if data.get("grid"):
        paths.append(plot_image_grid(data["grid"], data["nfes"], Path(outdir) / f"{stem}_grid.png"))
    return paths


def plot_image_grid(grids: dict, nfes, path: Path) -> Path:
    """One PNG of uint8 images: per part (vp, flow), one row per scheduler, one column per NFE, each cell the same
    seeds side by side."""
    gap = 4
    rows, labels = [], []
    for key, cells in grids.items():
        for name in dict.fromkeys(name for name, _ in cells):
            row = []
            for k in nfes:
                row += [np.concatenate(list(cells[(name, k)][:, 0].numpy()), axis=1), np.full((28, gap), 255, np.uint8)]
            rows += [np.concatenate(row[:-1], axis=1), np.full((gap, sum(r.shape[1] for r in row[:-1])), 255, np.uint8)]
            labels.append(f"{key}: {name}")
    canvas = np.concatenate(rows[:-1], axis=0)
    h, w = canvas.shape
    fig, ax = plt.subplots(figsize=(w / 45 + 3.5, h / 45 + 0.8))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    cell_w = (w + gap) / len(nfes)
    ax.set_xticks([cell_w * (j + 0.5) for j in range(len(nfes))], [f"NFE {k}" for k in nfes])
    ax.set_yticks([(28 + gap) * i + 14 for i in range(len(labels))], labels, fontsize=7)
    ax.tick_params(length=0)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_title("the same seeds in every cell", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path
