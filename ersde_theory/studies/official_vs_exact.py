"""``python -m ersde_theory bench official``: does the official 100-point Riemann quadrature beat the exact
coefficients at NFE 5–10, and if so, why?

The official coefficients differ from the exact ones in two ways (docs/theory.md eqs. 12–13): C_1, C_2 come from left
Riemann sums (relative error of several % at low NFE), and step variances below 1e-6 are set to 0. To separate
them, four coefficient sets are run on the same seeds (paired) with ER-SDE-2 and ER-SDE-3 (er_sde_5):

* ``exact``; ``official``;
* ``riemann_only``: official C_1, C_2 with the exact r and noise std;
* ``clip_only``: exact C_1, C_2 with the official (clipped) noise std;
* for ER-SDE-3 also ``exact_corrected`` / ``official_corrected``: the same coefficients with
  ``derivatives="corrected"``, to test whether a small C_2 helps only by offsetting the bias of the published
  (midpoint) derivative estimate.

The variants differ by a few % in two coefficients, far below the noise floor of any metric at a feasible n,
so the statistics use independent paired replicates rather than the delta method: R seeds, each run with
n samples through all four variants from the same initial noise and noise stream; the per-seed difference
d_r = metric(variant) − metric(exact) has mean d̄ and a Student-t 95 % CI d̄ ± t_{R−1} sd(d)/√R (eq. 33).
Coefficient diagnostics: the relative error of the official C_1, C_2 per step and the noise std the clipping drops.
Every variant runs through the public :func:`~ersde_theory.solvers.ersde.sample_er_sde` with its precomputed
``coefficients``. The figure is drawn by :func:`ersde_theory.plots.benches.plot_official`.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from ..coefficients.ersde import StepCoefficients, ersde_coefficients
from ..evaluation.intervals import paired_t_interval, t_quantile
from ..evaluation.quality import QualityReference
from ..evaluation.reports import markdown_table, write_report
from ..solvers.ersde import sample_er_sde
from ..solvers.registry import SAMPLERS, schedule_for
from ..toys.problems import get_problem
from .bench_quality import get_model, initial_noise

__all__ = ["coefficient_variants", "run_coefficients", "run_official_vs_exact", "VARIANTS"]

VARIANTS = ("exact", "official", "riemann_only", "clip_only")
# ER-SDE-3 only: the same coefficients with the corrected derivative estimate (x_θ' at σ_i, not at the midpoint)
CORRECTED = {"exact_corrected": "exact", "official_corrected": "official"}
PRESETS = {
    "full": dict(
        n={"ring_2d": 5000, "image_like_64d": 2000},
        reps={"ring_2d": 20, "image_like_64d": 10},
        nfes=(5, 6, 7, 8, 9, 10),
        orders=(2, 3),
    ),
    "quick": dict(
        n={"ring_2d": 500, "image_like_64d": 200}, reps={"ring_2d": 4, "image_like_64d": 3}, nfes=(5, 8), orders=(3,)
    ),
}


def coefficient_variants(sigmas, nsf="er_sde_5") -> dict[str, StepCoefficients]:
    ex, off = ersde_coefficients(sigmas, nsf, "exact"), ersde_coefficients(sigmas, nsf, "official")
    return {
        "exact": ex,
        "official": off,
        "riemann_only": dataclasses.replace(ex, c1=off.c1, c2=off.c2, quadrature="riemann_only"),
        "clip_only": dataclasses.replace(ex, noise_std=off.noise_std, quadrature="clip_only"),
    }


@torch.no_grad()
def run_coefficients(
    model, x: torch.Tensor, coeffs: StepCoefficients, order: int, generator, derivatives: str = "published"
) -> torch.Tensor:
    """ER-SDE-Solver-``order`` with a given coefficient set (on ``coeffs.sigmas``)."""
    return sample_er_sde(
        model,
        x,
        coeffs.sigmas,
        order=order,
        derivatives=derivatives,
        coefficients=coeffs,
        generator=generator,
        disable=True,
    )


def coefficient_diagnostics(nfe: int) -> dict:
    v = coefficient_variants(schedule_for(SAMPLERS["er_sde_3"], nfe))
    ex, off = v["exact"], v["official"]
    reg = ex.sigmas[1:] > 0
    rel = lambda a, b: float(np.max(np.abs(a[reg] - b[reg]) / np.abs(b[reg])))  # noqa: E731
    dropped = ex.noise_std[(off.noise_std == 0) & (ex.noise_std > 0)]
    return dict(
        max_rel_err_c1=rel(off.c1, ex.c1),
        max_rel_err_c2=rel(off.c2, ex.c2),
        mean_rel_err_c2=float(np.mean((off.c2[reg] - ex.c2[reg]) / ex.c2[reg])),
        clipped_steps=int(dropped.size),
        dropped_std=[float(s) for s in dropped],
    )


def _paired_diff(variant: list[float], exact: list[float]) -> dict:
    """A metric's paired difference variant − exact over the seeds (module docstring): its mean ``diff``, standard
    error ``se`` and Student-t 95 % ``ci`` (eq. (33)), the means of ``exact`` and ``variant``, and the number of seeds
    where the variant won (``wins``)."""
    m, h = paired_t_interval(variant, exact)
    means = dict(exact=float(np.mean(exact)), variant=float(np.mean(variant)))
    wins = int(np.sum(np.subtract(variant, exact) < 0))
    return dict(diff=m, se=h / t_quantile(len(variant)), ci=[m - h, m + h], **means, wins=wins)


def run_official_vs_exact(outdir="figures", *, quick: bool = False, device="cpu", seed: int = 7, log=print) -> dict:
    preset = "quick" if quick else "full"
    p = PRESETS[preset]
    t0 = time.perf_counter()
    records, floors = [], {}
    for prob, n in p["n"].items():
        gm = get_problem(prob, device=device)
        ref = QualityReference(gm, n, floor_reps=3)
        floors[prob] = {k: list(v) for k, v in ref.floor.items()}
        reps = p["reps"][prob]
        for den in ("exact", "learned"):
            model = get_model(prob, den, device)
            for nfe in p["nfes"]:
                variants = coefficient_variants(schedule_for(SAMPLERS["er_sde_3"], nfe))
                for order in p["orders"]:
                    runs = [(v, v, "published") for v in VARIANTS]
                    if order == 3:
                        runs += [(v, c, "corrected") for v, c in CORRECTED.items()]
                    vals = {v: {k: [] for k in ref.names} for v, _, _ in runs}
                    for r in range(reps):
                        for name, co, der in runs:
                            x, g = initial_noise(n, gm.D, seed + r, device)
                            for k, m in ref.raw(run_coefficients(model, x, variants[co], order, g, der)).items():
                                vals[name][k].append(m.value)
                    cell = dict(problem=prob, denoiser=den, nfe=nfe, order=order)
                    for name in [v for v, _, _ in runs][1:]:
                        diffs = {k: _paired_diff(vals[name][k], vals["exact"][k]) for k in ref.names}
                        records.append(dict(cell, variant=name, reps=reps, n=n, metrics=diffs))
                log(f"[{time.perf_counter() - t0:6.1f}s] {prob} {den} NFE {nfe}")
    config = dict(p, nfes=list(p["nfes"]), orders=list(p["orders"]), seed=seed, nsf="er_sde_5")
    diagnostics = {str(nfe): coefficient_diagnostics(nfe) for nfe in p["nfes"]}
    data = dict(preset=preset, config=config, floors=floors, coefficients=diagnostics, records=records)
    data["seconds"] = round(time.perf_counter() - t0, 1)
    stem = "official_vs_exact_quick" if quick else "official_vs_exact"
    jpath, _ = write_report(outdir, stem, data, official_markdown(data))
    log(f"wrote {jpath}")
    return data


def _cell(m: dict) -> str:
    sig = "▼" if m["ci"][1] < 0 else ("▲" if m["ci"][0] > 0 else "·")
    return f"{m['diff']:+.2e} [{m['ci'][0]:+.1e}, {m['ci'][1]:+.1e}] {sig} ({m['wins']})"


def official_markdown(data: dict) -> str:
    cfg = data["config"]
    lines = [
        f"# Official (100-point Riemann, clipped variance) vs exact coefficients ({data['preset']} preset)\n",
        "Mean paired difference variant − exact over R independent seeds (negative: the variant is better), "
        "Student-t 95 % CI, and the number of seeds where the variant won; ▼ significantly better, "
        "▲ significantly worse, · indistinguishable. er_sde_5, Karras ρ = 7. Samples per seed: "
        + ", ".join(f"{p}: {n} × {cfg['reps'][p]} seeds" for p, n in cfg["n"].items())
        + ".\n",
        "## Coefficients\n",
        *markdown_table(
            [
                "NFE",
                "max rel. err. C_1",
                "max rel. err. C_2",
                "mean rel. err. C_2",
                "clipped steps (noise std dropped)",
            ],
            [
                [
                    nfe,
                    f"{c['max_rel_err_c1']:.3g}",
                    f"{c['max_rel_err_c2']:.3g}",
                    f"{c['mean_rel_err_c2']:+.3g}",
                    f"{c['clipped_steps']} ({', '.join(f'{s:.2g}' for s in c['dropped_std'])})",
                ]
                for nfe, c in data["coefficients"].items()
            ],
        ),
    ]
    for prob in cfg["n"]:
        metrics = list(data["floors"][prob])
        for den in ("exact", "learned"):
            for order in cfg["orders"]:
                rows = [
                    [r["nfe"], r["variant"], *(_cell(r["metrics"][m]) for m in metrics)]
                    for r in data["records"]
                    if (r["problem"], r["denoiser"], r["order"]) == (prob, den, order)
                ]
                lines += ["", f"## {prob}, {den} denoiser, ER-SDE-{order}\n"]
                lines += markdown_table(["NFE", "variant", *metrics], rows)
    return "\n".join(lines) + "\n"
