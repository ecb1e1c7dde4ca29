"""``python -m ersde_theory bench nsf``: search for a noise scale function that beats the official default
``er_sde_5`` with ER-SDE-3 at NFE 10 and 20 on the learned denoiser.

Families searched (all admissible on σ > 0, i.e. h̃² = σφ'/φ − 1 ≥ 0):

* official: ode, sde, er_sde_1…5;
* ``exp``: φ = σ (e^{σ^a} + b), h̃² = a σ^a e^{σ^a}/(e^{σ^a} + b) (er_sde_5 is a = 0.3, b = 10);
* ``power``: φ = σ^p, h̃² = p − 1;
* ``ode_below``: φ = σ (1 + (σ/σ_c)^k)^{τ²/k}, h̃² = τ² s/(1 + s), s = (σ/σ_c)^k: ODE below σ_c, SDE with
  h̃² = τ² above (a smooth piecewise ODE/SDE, k = 4); ``sde_below``: the mirror image
  φ = σ (1 + (σ_c/σ)^k)^{−τ²/k}, SDE below σ_c and ODE above.

Protocol (guards against the winner's curse): every candidate is scored on the training problem (ring_2d,
learned denoiser) with seed A; the score is the worse of its two relative sliced-W2² differences to er_sde_5
(NFE 10 and 20, paired seeds). The top candidates are re-run with a fresh seed B and more samples, and on the
held-out problem (image_like_64d, learned denoiser); a win "holds" where the paired 95 % CI of the difference
lies below 0 (paired normal intervals, docs/theory.md eq. 33). Beside each candidate the one-step-error
weights of its coefficients (docs/theory.md eqs. 17–18) are recorded:
Σ|C_1|, Σ|C_2| (prediction error, smallest for the ODE) and Σ log r (how much past error is carried on,
most negative = most correction), to see whether they predict the benchmark.

The figure ``nsf_study[_quick].png/pdf`` is drawn by :func:`ersde_theory.plots.benches.plot_nsf`.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.stats
import sympy as sp

from ..coefficients.ersde import ersde_coefficients
from ..evaluation.intervals import normal_interval
from ..evaluation.quality import QualityReference, paired_difference
from ..evaluation.reports import markdown_table, write_report
from ..solvers.registry import SAMPLERS, schedule_for
from ..theory.nsf import SIGMA, resolve_nsf
from .bench_quality import get_model, sample_cell

__all__ = ["candidates", "candidate_nsf", "one_step_weights", "run_nsf_study"]

PRESETS = {
    "full": dict(n_select=20_000, n_confirm=100_000, n_heldout=10_000, top=5, nfes=(10, 20)),
    "quick": dict(n_select=1000, n_confirm=2000, n_heldout=400, top=2, nfes=(10, 20)),
}
BASELINE = "er_sde_5"
METRIC = "sw2"


def candidates(quick: bool = False) -> list[dict]:
    """name, family, parameters and sympy φ(σ) of every candidate NSF."""
    s = SIGMA
    out = [
        dict(name=n, family="official", params={}, expr=None)
        for n in ("ode", "sde", "er_sde_1", "er_sde_2", "er_sde_3", "er_sde_4", "er_sde_5")
    ]
    a_vals, b_vals = ((0.3, 1.0), (1, 10)) if quick else ((0.1, 0.2, 0.3, 0.5, 0.7, 1.0), (0, 1, 3, 10, 30, 100))
    for a in a_vals:
        for b in b_vals:
            if (a, b) != (0.3, 10):
                out.append(
                    dict(
                        name=f"exp_a{a:g}_b{b:g}",
                        family="exp",
                        params=dict(a=a, b=b),
                        expr=s * (sp.exp(s ** sp.nsimplify(a)) + b),
                    )
                )
    for p in () if quick else (1.1, 1.25, 3.0):  # 1.5, 2, 2.5 are official
        out.append(dict(name=f"power_{p:g}", family="power", params=dict(p=p), expr=s ** sp.nsimplify(p)))
    k = 4
    for sc in (1.0,) if quick else (0.1, 0.3, 1.0, 3.0, 10.0):
        for t2 in (1.0,) if quick else (0.5, 1.0, 2.0):
            out.append(
                dict(
                    name=f"ode_below_{sc:g}_tau2_{t2:g}",
                    family="ode_below",
                    params=dict(sigma_c=sc, tau2=t2),
                    expr=s * (1 + (s / sp.nsimplify(sc)) ** k) ** (sp.nsimplify(t2) / k),
                )
            )
    for sc in () if quick else (0.3, 1.0, 3.0):
        out.append(
            dict(
                name=f"sde_below_{sc:g}_tau2_1",
                family="sde_below",
                params=dict(sigma_c=sc, tau2=1.0),
                expr=s * (1 + (sp.nsimplify(sc) / s) ** k) ** (-sp.Rational(1, k)),
            )
        )
    return out


def candidate_nsf(c: dict):
    """The resolved NSF of a :func:`candidates` entry."""
    return resolve_nsf(c["name"] if c["expr"] is None else c["expr"])


def one_step_weights(nsf, nfe: int) -> dict:
    """Σ|C_1|, Σ|C_2| and Σ log r over the Karras schedule of ``nfe`` steps (steps with σ_t > 0)."""
    co = ersde_coefficients(schedule_for(SAMPLERS["er_sde_3"], nfe), nsf)
    reg = co.sigmas[1:] > 0
    return dict(
        sum_abs_c1=float(np.abs(co.c1[reg]).sum()),
        sum_abs_c2=float(np.abs(co.c2[reg]).sum()),
        sum_log_r=float(np.log(co.r[reg]).sum()),
    )


def _score(problem, denoiser, n, seed, nfes, cands, device, log):
    """Per candidate and NFE: metrics, and the paired relative difference to the baseline."""
    from ..toys.problems import get_problem

    gm = get_problem(problem, device=device)
    ref = QualityReference(gm, n, floor_reps=3)
    model = get_model(problem, denoiser, device)
    out = {}
    for nfe in nfes:
        raws = {
            c["name"]: ref.raw(sample_cell(model, gm.D, "er_sde_3", nfe, n, seed, device, nsf=c["nsf"])) for c in cands
        }
        base = raws[BASELINE]
        for c in cands:
            rec = out.setdefault(c["name"], {})
            row = {}
            for k in ref.names:
                d, se = paired_difference(raws[c["name"]][k], base[k])
                se = float(np.hypot(se, ref.floor[k][1]))
                row[k] = dict(
                    value=raws[c["name"]][k].value,
                    diff=d,
                    diff_se=se,
                    rel=d / base[k].value,
                    rel_ci=[v / base[k].value for v in normal_interval(d, se)],
                )
            rec[str(nfe)] = row
        log(f"  {problem} {denoiser} n={n} seed={seed} NFE {nfe}: {len(cands)} candidates scored")
    return out, {k: list(v) for k, v in ref.floor.items()}


def run_nsf_study(outdir="figures", *, quick: bool = False, device="cpu", log=print) -> dict:
    p = PRESETS["quick" if quick else "full"]
    nfes = p["nfes"]
    cands = candidates(quick)
    t0 = time.perf_counter()
    for c in cands:
        c["nsf"] = candidate_nsf(c)
        c["weights"] = {str(n): one_step_weights(c["nsf"], n) for n in nfes}
    log(f"[{time.perf_counter() - t0:6.1f}s] {len(cands)} candidate NSFs resolved")
    sel, sel_floor = _score("ring_2d", "learned", p["n_select"], 100, nfes, cands, device, log)
    for c in cands:
        c["selection"] = sel[c["name"]]
        c["score"] = max(sel[c["name"]][str(n)][METRIC]["rel"] for n in nfes)
    ranked = sorted((c for c in cands if c["name"] != BASELINE), key=lambda c: c["score"])
    top = ranked[: p["top"]]
    base = next(c for c in cands if c["name"] == BASELINE)
    conf_set = top + [base]
    conf, conf_floor = _score("ring_2d", "learned", p["n_confirm"], 200, nfes, conf_set, device, log)
    held, held_floor = _score("image_like_64d", "learned", p["n_heldout"], 300, nfes, conf_set, device, log)
    ex, ex_floor = _score("ring_2d", "exact", p["n_confirm"], 200, nfes, conf_set, device, log)
    for c in top:
        c["confirm"], c["heldout"], c["exact_denoiser"] = conf[c["name"]], held[c["name"]], ex[c["name"]]
        c["holds_confirm"] = all(conf[c["name"]][str(n)][METRIC]["rel_ci"][1] < 0 for n in nfes)
        c["holds_heldout"] = all(held[c["name"]][str(n)][METRIC]["rel_ci"][1] < 0 for n in nfes)
    corr = {}
    for w in ("sum_abs_c1", "sum_abs_c2", "sum_log_r"):
        for n in nfes:
            x = [c["weights"][str(n)][w] for c in cands]
            y = [c["selection"][str(n)][METRIC]["rel"] for c in cands]
            corr[f"{w}@{n}"] = float(scipy.stats.spearmanr(x, y).statistic)
    data = dict(
        preset="quick" if quick else "full",
        config=dict(p, nfes=list(nfes), metric=METRIC, baseline=BASELINE),
        floors=dict(select=sel_floor, confirm=conf_floor, heldout=held_floor, exact=ex_floor),
        spearman_weights_vs_score=corr,
        best=top[0]["name"],
        candidates=[
            {k: v for k, v in c.items() if k not in ("expr", "nsf")}
            | {"phi": str(c["expr"]) if c["expr"] is not None else c["name"]}
            for c in cands
        ],
        seconds=round(time.perf_counter() - t0, 1),
    )
    jpath, _ = write_report(outdir, "nsf_study_quick" if quick else "nsf_study", data, nsf_markdown(data))
    log(f"best: {data['best']}; wrote {jpath}")
    return data


def _pct(r: dict) -> str:
    return f"{100 * r['rel']:+.1f} % [{100 * r['rel_ci'][0]:+.1f}, {100 * r['rel_ci'][1]:+.1f}]"


def nsf_markdown(data: dict) -> str:
    nfes = data["config"]["nfes"]
    m = data["config"]["metric"]
    lines = [
        f"# NSF search (ER-SDE-3, {data['preset']} preset): sliced W2² relative to {data['config']['baseline']}\n",
        "Negative is better. Selection: ring_2d, learned denoiser, seed A; top candidates re-run with seed B "
        "(confirm), on image_like_64d (held-out, learned) and with the exact denoiser. 95 % paired CIs.\n",
        "## Top candidates\n",
    ]
    yes = lambda b: "yes" if b else "no"  # noqa: E731
    lines += markdown_table(
        ["candidate", "φ(σ)"]
        + [f"{s} NFE {n}" for s in ("select", "confirm", "held-out", "exact den.") for n in nfes]
        + ["holds (confirm / held-out)"],
        [
            [c["name"], f"`{c['phi']}`"]
            + [_pct(c[part][str(n)][m]) for part in ("selection", "confirm", "heldout", "exact_denoiser") for n in nfes]
            + [f"{yes(c['holds_confirm'])} / {yes(c['holds_heldout'])}"]
            for c in data["candidates"]
            if "confirm" in c
        ],
    )
    lines += ["", "## All candidates (selection stage)\n"]
    w0 = str(nfes[0])
    lines += markdown_table(
        ["candidate", "family", *(f"NFE {n}" for n in nfes), "Σ abs(C_2) @10", "Σ log r @10"],
        [
            [c["name"], c["family"], *(_pct(c["selection"][str(n)][m]) for n in nfes)]
            + [f"{c['weights'][w0]['sum_abs_c2']:.3g}", f"{c['weights'][w0]['sum_log_r']:.3g}"]
            for c in sorted(data["candidates"], key=lambda c: c["score"])
        ],
    )
    lines += [
        "",
        "Spearman correlation of the one-step-error weights with the selection score: "
        + ", ".join(f"{k}: {v:+.2f}" for k, v in data["spearman_weights_vs_score"].items()),
    ]
    return "\n".join(lines) + "\n"
