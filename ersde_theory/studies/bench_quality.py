"""``python -m ersde_theory bench quality``: every sampler × NFE × denoiser {exact, learned} × problem
{ring_2d, image_like_64d}, scored by :mod:`ersde_theory.evaluation.quality` with 95 % CIs (docs/theory.md
eq. 33) and noise floors (eq. 32).

All samplers of one (problem, denoiser, NFE) cell start from the same initial noise and use one generator
with the same seed, so sample i of every sampler shares its seed: differences between samplers are paired
(``paired_difference``). Verdicts per metric: "best" (lowest value), "tie" (the paired 95 % CI of the
difference to the best contains 0, with the floor sd added in quadrature: indistinguishable) or "worse".
The FD (eq. 31, a floor above the true distance at n samples, with the verdicts) is also reported extrapolated to
n = ∞ (``fd_inf``, eq. 52): mean and 95 % t-interval (eq. 33) over ``fd_blocks`` disjoint blocks of the cell's
samples, an interval for the true distance between the sampler's moments and the exact ones (no verdict).
Outputs: ``bench_quality[_quick].json`` and ``.md`` (tables at every NFE, NFE 10 and 20 first); the plots
``bench_quality[_quick]_<problem>.png/pdf`` (metric vs NFE with CI bands and the floor) are drawn by
:func:`ersde_theory.plots.benches.plot_quality` (``python -m ersde_theory bench quality`` does both).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ..evaluation.frechet import frechet_infinity_blocks
from ..evaluation.intervals import normal_interval, t_interval, z_quantile
from ..evaluation.quality import QualityReference, paired_difference
from ..evaluation.reports import markdown_table, write_report
from ..solvers.registry import SAMPLERS, SIGMA_MAX, run_sampler
from ..toys.learned import load_learned
from ..toys.problems import get_problem

__all__ = ["PRESETS", "run_quality", "sample_cell", "compare_cell", "get_model", "cell_markdown"]

PRESETS = {  # fd_blocks: the disjoint blocks of a cell's n samples over which FD_∞ (eq. 52) has its t-interval
    "full": dict(
        n={"ring_2d": 100_000, "image_like_64d": 10_000}, nfes=(5, 10, 15, 20, 30, 50), floor_reps=5, fd_blocks=10
    ),
    "quick": dict(n={"ring_2d": 2000, "image_like_64d": 400}, nfes=(5, 10), floor_reps=3, fd_blocks=2),
}
DENOISERS = ("exact", "learned")
METRIC_LABELS = {
    "fd": "FD to exact moments",
    "fd_inf": "FD_∞",
    "sw2": "sliced W2²",
    "mode_tv": "mode-weight TV",
    "hist_kl": "histogram KL",
}


def get_model(problem: str, denoiser: str, device="cpu"):
    if denoiser == "exact":
        return get_problem(problem, device=device)
    if denoiser == "learned":
        return load_learned(problem, device=device)
    raise ValueError(f"denoiser must be 'exact' or 'learned', got {denoiser!r}")


def initial_noise(n: int, dim: int, seed: int, device="cpu") -> tuple[torch.Tensor, torch.Generator]:
    """σ_max · N(0, I) initial states and the generator (same seed) that then drives the sampler noise."""
    g = torch.Generator(device=device).manual_seed(seed)
    return SIGMA_MAX * torch.randn(n, dim, generator=g, dtype=torch.float64, device=device), g


def sample_cell(model, dim: int, sampler, nfe: int, n: int, seed: int, device="cpu", **overrides):
    x, g = initial_noise(n, dim, seed, device)
    return run_sampler(sampler, model, x, nfe, generator=g, **overrides)


def compare_cell(raws: dict, ref: QualityReference) -> dict:
    """Per sampler and metric: value, SE, 95 % normal CI (eq. 33), floor (eq. 32), paired difference to the
    best and the verdict."""
    z = z_quantile(0.95)
    out = {s: {} for s in raws}
    for k in ref.names:
        best = min(raws, key=lambda s: raws[s][k].value)
        floor_sd = ref.floor[k][1]
        for s in raws:
            m = raws[s][k]
            se = float(np.hypot(m.se, floor_sd))
            diff, dse = paired_difference(m, raws[best][k]) if s != best else (0.0, 0.0)
            dse = float(np.hypot(dse, floor_sd))
            verdict = "best" if s == best else ("tie" if diff <= z * dse else "worse")
            out[s][k] = dict(
                value=m.value,
                se=se,
                ci=normal_interval(m.value, se),
                floor=ref.floor[k][0],
                floor_sd=floor_sd,
                diff_vs_best=diff,
                diff_se=dse,
                verdict=verdict,
            )
    return out


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def cell_markdown(records: list[dict], problem: str, denoiser: str, nfe: int, metrics: list[str]) -> str:
    rows = [r for r in records if (r["problem"], r["denoiser"], r["nfe"]) == (problem, denoiser, nfe)]
    if not rows:
        return ""
    mark = {"best": " ★", "tie": " ≈", "worse": ""}
    inf = all("fd_inf" in r["metrics"].get("fd", {}) for r in rows)  # FD_∞ (eq. 52) beside FD, when reported
    cols = [c for m in metrics for c in ([m, "fd_inf"] if m == "fd" and inf else [m])]

    def cell(r, c):
        if c == "fd_inf":
            v = r["metrics"]["fd"]
            return f"{_fmt(v['fd_inf'])} [{_fmt(v['fd_inf_ci'][0])}, {_fmt(v['fd_inf_ci'][1])}]"
        v = r["metrics"][c]
        return f"{_fmt(v['value'])} [{_fmt(v['ci'][0])}, {_fmt(v['ci'][1])}]{mark[v['verdict']]}"

    cells = [[r["sampler"], r["nfe_used"], *(cell(r, c) for c in cols)] for r in rows]
    lines = markdown_table(["sampler", "NFE used", *(METRIC_LABELS[c] + " [95 % CI]" for c in cols)], cells)
    floor = rows[0]["metrics"]
    lines.append(
        "| *noise floor (exact samples)* | | "
        + " | ".join("" if c == "fd_inf" else f"{_fmt(floor[c]['floor'])} ± {_fmt(floor[c]['floor_sd'])}" for c in cols)
        + " |"
    )
    return "\n".join(lines)


def quality_markdown(data: dict) -> str:
    recs, cfg = data["records"], data["config"]
    nfes = sorted(cfg["nfes"], key=lambda v: (v not in (10, 20), v))
    parts = [
        f"# Sample quality per NFE ({data['preset']} preset)\n",
        "Lower is better. ★ best; ≈ indistinguishable from the best (paired 95 % CI of the difference, "
        "noise-floor sd added in quadrature, contains 0). FD_∞: the FD extrapolated to n = ∞ (docs/theory.md eq. 52), "
        f"95 % t-interval over {cfg.get('fd_blocks', '—')} blocks of a cell's samples, an interval for the true "
        "distance (the FD column lies a floor above it). Samples per cell: "
        + ", ".join(f"{p}: {n}" for p, n in cfg["n"].items())
        + f"; seed {cfg['seed']}.\n",
    ]
    for nfe in nfes:
        for prob in cfg["n"]:
            for den in cfg["denoisers"]:
                metrics = list(data["floors"][prob])
                parts.append(f"## {prob}, {den} denoiser, NFE {nfe}\n")
                parts.append(cell_markdown(recs, prob, den, nfe, metrics) + "\n")
    return "\n".join(parts)


def run_quality(
    outdir="figures",
    *,
    quick: bool = False,
    device="cpu",
    seed: int = 0,
    samplers=None,
    problems=None,
    denoisers=DENOISERS,
    log=print,
) -> dict:
    """Run the benchmark (``quick``: the CI preset), write JSON and markdown to ``outdir`` and return the data
    (plots: :func:`ersde_theory.plots.benches.plot_quality`)."""
    preset = PRESETS["quick" if quick else "full"]
    n_by = {p: preset["n"][p] for p in (problems or preset["n"])}
    names = list(samplers or SAMPLERS)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    stem = "bench_quality_quick" if quick else "bench_quality"
    cfg = dict(
        n=n_by,
        nfes=list(preset["nfes"]),
        floor_reps=preset["floor_reps"],
        fd_blocks=preset["fd_blocks"],
        seed=seed,
        denoisers=list(denoisers),
        samplers=names,
        device=str(device),
        torch=torch.__version__,
    )
    data = dict(preset="quick" if quick else "full", config=cfg, floors={}, records=[])
    t_all = time.perf_counter()
    for prob, n in n_by.items():
        gm = get_problem(prob, device=device)
        t0 = time.perf_counter()
        ref = QualityReference(gm, n, floor_reps=preset["floor_reps"])
        data["floors"][prob] = {k: list(v) for k, v in ref.floor.items()}
        log(f"[{time.perf_counter() - t0:6.1f}s] {prob}: reference and noise floors for n={n}")
        for den in denoisers:
            model = get_model(prob, den, device)
            for nfe in preset["nfes"]:
                raws, secs, inf = {}, {}, {}
                for name in names:
                    t0 = time.perf_counter()
                    out = sample_cell(model, gm.D, name, nfe, n, seed, device)
                    secs[name] = time.perf_counter() - t0
                    raws[name] = ref.raw(out)
                    inf[name] = t_interval(frechet_infinity_blocks(out, ref.mean, ref.cov, preset["fd_blocks"]))
                cmp = compare_cell(raws, ref)
                for name, (m, h) in inf.items():
                    cmp[name]["fd"].update(fd_inf=m, fd_inf_ci=[m - h, m + h])
                for name in names:
                    data["records"].append(
                        dict(
                            problem=prob,
                            denoiser=den,
                            nfe=nfe,
                            sampler=name,
                            nfe_used=SAMPLERS[name].nfe(nfe),
                            seconds=round(secs[name], 3),
                            metrics=cmp[name],
                        )
                    )
                best = {k: min(cmp, key=lambda s: cmp[s][k]["value"]) for k in ref.names}
                log(
                    f"[{sum(secs.values()):6.1f}s] {prob} {den} NFE {nfe}: best "
                    + ", ".join(f"{k}={v}" for k, v in best.items())
                )
    data["seconds"] = round(time.perf_counter() - t_all, 1)
    jpath, mpath = write_report(outdir, stem, data, quality_markdown(data), default=_json_default)
    log(f"wrote {jpath} and {mpath.name}")
    return data


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    raise TypeError(type(o).__name__)
