"""Measured strong and weak convergence orders of ER-SDE-Solver-1/2/3 on Gaussian mixtures.

Setting. VE, Karras/EDM steps (ρ = 7) from σ_max to σ_min > 0 with **no final step to σ = 0** (that step
returns x_θ and would hide the integration error); x_0 drawn from the exact noised mixture at σ_max, so the
exact marginal at σ_min is the mixture convolved with N(0, σ_min² I). The solver schedules for N steps are
sub-grids ``fine[::stride]`` of one fine Karras grid with ``refine · max(N)`` steps.

Coupling. For every (problem, NSF) one :class:`~ersde_theory.references.brownian.BrownianPath` drives the
reference (SRA1 on the fine grid, or DOP853 rtol 1e-12 for h = 0) and, through
:class:`~ersde_theory.references.brownian.CoupledNoise`, the exact step noise of every solver run.

Errors, per step count N, over M coupled paths (e_b = x_N,b − x_ref,b):

* strong RMS   sqrt(mean_b |e_b|²)                  (the strong error)
* strong median  median_b |e_b|                      (typical path; insensitive to rare mode switches)
* weak f       |mean_b (f(x_N,b) − f(x_ref,b))|       (control variate: f(x_ref) has the exact mean up to the
                                                       reference's own error), standard error sd/sqrt(M);
                                                       the direct estimate mean f(x_N) − E f exact is also stored.

Test functions: f = x·e (mean), |x|²/D (second moment), 1[x·e' > 0] (mode indicator; e' points between modes),
with exact values from the mixture.

Orders (docs/theory.md eq. 34): least-squares slope of log error against log N on the fit window (the finest
``fit_points`` step counts with N ≥ ``fit_min_steps`` whose error is ≥ ``floor_factor`` × the reference's error
bound; weak: also |mean| ≥ 2 standard errors), with a bootstrap 95% percentile CI (paths resampled jointly for
all N). Paths that the
reference itself does not resolve (it and its check solution end > 1e-2 apart: a separatrix crossing) are
left out and counted. The floor of the ``official`` quadrature is located where its error first exceeds twice
the ``exact`` one and stays so.

This module returns data and writes JSON/markdown (:func:`write_outputs`); the log-log plots are drawn by
:mod:`ersde_theory.plots.convergence`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from scipy.special import ndtr

from ..coefficients.schedules import get_sigmas_karras
from ..evaluation.orders import (
    asymptotic_window,
    extrapolated_order,
    fit_order,
    fit_order_bootstrap,
    keeps_sign,
    pairwise_orders,
)
from ..evaluation.reports import markdown_table, write_report
from ..references.brownian import BrownianPath, CoupledNoise
from ..references.integrator import integrate_pf_ode, integrate_sra
from ..solvers.ersde import sample_er_sde
from ..theory.nsf import NoiseScaleFunction, power_nsf, resolve_nsf
from ..toys.gmm import GaussianMixture
from ..toys.problems import get_problem

__all__ = [
    "ConvergenceConfig",
    "CPU_DEFAULT",
    "FULL",
    "SOLVERS",
    "get_nsf",
    "fine_grid",
    "reference_solution",
    "weak_test_functions",
    "order_with_ci",
    "run_case",
    "run_study",
    "convergence_markdown",
    "write_outputs",
    "run_cpu_default",
    "config_for",
    "reference_benchmark",
]

# (label, order, derivatives)
SOLVERS = (
    ("ER-SDE-1", 1, "published"),
    ("ER-SDE-2", 2, "published"),
    ("ER-SDE-3", 3, "published"),
    ("ER-SDE-3c", 3, "corrected"),
)
STRONG_KINDS = ("strong_rms", "strong_median")
WEAK_KINDS = ("weak_mean", "weak_second_moment", "weak_mode")


@dataclass(frozen=True)
class ConvergenceConfig:
    problems: tuple[str, ...] = ("bimodal_1d", "ring_2d")
    nsfs: tuple[str, ...] = ("ode", "sde", "er_sde_5")
    quadratures: tuple[str, ...] = ("exact", "official")
    solvers: tuple = SOLVERS
    steps: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
    refine: int = 8  # fine (reference) steps per finest solver step, >= 4
    paths: int = 200
    sigma_max: float = 80.0
    sigma_min: float = 0.002
    rho: float = 7.0
    seed: int = 0
    bootstrap: int = 400
    fit_min_steps: int = 16
    fit_points: int = 4  # the finest resolved points used for the fit
    floor_factor: float = 10.0
    ode_rtol: float = 1e-12
    problem_paths: dict = field(default_factory=dict)  # per-problem override of ``paths``
    problem_nsfs: dict = field(default_factory=dict)  # per-problem override of ``nsfs``
    problem_steps: dict = field(default_factory=dict)  # per-problem override of ``steps``


CPU_DEFAULT = ConvergenceConfig()
FULL = ConvergenceConfig(
    problems=("bimodal_1d", "ring_2d", "image_like_64d"),
    nsfs=("ode", "sde", "er_sde_2", "er_sde_5", "power_1.1", "power_1.25", "power_3"),
    steps=(8, 16, 32, 64, 128, 256, 512),
    paths=2000,
    bootstrap=1000,
    problem_paths={"image_like_64d": 100},
    problem_nsfs={"image_like_64d": ("ode", "sde", "er_sde_5")},
    problem_steps={"image_like_64d": (8, 16, 32, 64, 128, 256)},
)


def get_nsf(name: str) -> NoiseScaleFunction:
    """A registry NSF, or ``power_p`` for φ = σ^p."""
    if name.startswith("power_"):
        return power_nsf(float(name[len("power_") :]))
    return resolve_nsf(name)


def _is_ode(nsf: NoiseScaleFunction, sig: np.ndarray) -> bool:
    return bool(np.all(nsf.h_tilde_sq(sig) == 0.0))


def fine_grid(cfg: ConvergenceConfig, steps) -> np.ndarray:
    """The fine Karras grid (σ_max … σ_min, refine · max(steps) intervals, no final 0)."""
    n = cfg.refine * max(steps)
    if cfg.refine < 4 or any(n % s for s in steps):
        raise ValueError(f"refine must be >= 4 and every step count must divide {n}")
    return get_sigmas_karras(n + 1, cfg.sigma_min, cfg.sigma_max, cfg.rho, final_zero=False).numpy()


def reference_solution(
    gm: GaussianMixture,
    nsf: NoiseScaleFunction,
    x0: torch.Tensor,
    path: BrownianPath,
    *,
    ode_rtol: float = 1e-12,
    strides=(1, 2, 4, 8),
    unresolved: float = 1e-2,
) -> dict:
    """The reference end point and its self-convergence.

    SDE: SRA1 with every stride in ``strides`` on the same path; the error bound of the stride-1 solution is
    its distance to the stride-2 one. ODE: DOP853 at ``ode_rtol`` and at 100× and 10⁴× looser tolerances; the
    bound is the distance to the 100× looser solution. Paths on which the two differ by more than
    ``unresolved`` (a path near a separatrix that the check solution sends to another mode) are marked in
    ``keep = False`` and left out of every statistic; their number is reported."""
    sig = path.sigmas
    t0 = time.perf_counter()
    if _is_ode(nsf, sig):
        tols = (ode_rtol, 100 * ode_rtol, 1e4 * ode_rtol)
        sols = [integrate_pf_ode(gm.score, x0, sig[0], sig[-1], rtol=r, atol=r) for r in tols]
        labels, kind = list(tols), "dop853"
    else:
        sols = [integrate_sra(gm.score, nsf, x0, path, k) for k in strides]
        labels, kind = list(strides), "sra1"
    seconds = time.perf_counter() - t0
    d = [((s - sols[0]) ** 2).sum(-1) for s in sols[1:]]
    keep = d[0] <= unresolved**2
    rms = [float(v[keep].mean().sqrt()) for v in d]
    med = [float(v[keep].median().sqrt()) for v in d]
    out = dict(
        kind=kind,
        levels=labels,
        fine_steps=path.n,
        seconds=seconds,
        x=sols[0],
        keep=keep,
        unresolved_paths=int((~keep).sum()),
        bound_rms_all_paths=float(d[0].mean().sqrt()),
        self_rms=rms,
        self_median=med,
        bound_rms=rms[0],
        bound_median=med[0],
    )
    if kind == "sra1" and len(strides) >= 3:
        out.update(_self_orders(strides[1:], rms))
    return out


def _self_orders(strides, rms) -> dict:
    """The reference's self-convergence orders (eq. 34 on N ∝ 1/stride): pairwise slopes and the least-squares
    order over the finest run of strides where the distance grows with the stride; None with < 3 points or
    where a pairwise slope in that run differs from the fit by more than 0.5 (no single order there)."""
    ns = 1.0 / np.asarray(strides[::-1], dtype=np.float64)
    e = np.asarray(rms[::-1], dtype=np.float64)
    mask = asymptotic_window(ns, e)
    pair = pairwise_orders(ns, e)
    p = fit_order(ns[mask], e[mask]) if mask.sum() >= 3 else None
    if p is not None and max(abs(q - p) for q, m in zip(pair, mask[1:] & mask[:-1]) if m) > 0.5:
        p = None
    return dict(self_pairwise_rms=pair[::-1], self_order_rms=p)


def weak_test_functions(gm: GaussianMixture, sigma: float) -> dict:
    """{kind: (f, exact E f under the mixture noised at σ)} for the weak errors (module docstring)."""
    D = gm.D
    e = torch.zeros(D, dtype=torch.float64)
    e[0] = 1.0
    e_mode = e.clone()
    if D > 1:
        ang = math.pi / 8  # between the modes of ring_2d; any fixed direction works
        e_mode[0], e_mode[1] = math.cos(ang), math.sin(ang)
    mean, cov = gm.mean(), gm.cov(sigma)
    s_mode = torch.sqrt(torch.einsum("i,kij,j->k", e_mode, gm.covariances, e_mode) + sigma**2)
    p_mode = float((gm.weights * torch.from_numpy(ndtr((gm.means @ e_mode / s_mode).numpy()))).sum())
    return {
        "weak_mean": (lambda x: x @ e, float(mean @ e)),
        "weak_second_moment": (lambda x: (x * x).sum(-1) / D, float((torch.trace(cov) + mean @ mean) / D)),
        "weak_mode": (lambda x: (x @ e_mode > 0).to(torch.float64), p_mode),
    }


def _stat(kind: str, v: torch.Tensor) -> torch.Tensor:
    """Error statistic over the last axis (paths) of per-path values: squared errors or f-differences."""
    if kind == "strong_rms":
        return v.mean(-1).sqrt()
    if kind == "strong_median":
        return v.median(-1).values.sqrt()
    return v.mean(-1).abs()


def order_with_ci(steps, values: torch.Tensor, kind: str, mask, *, bootstrap: int = 400, seed: int = 0):
    """Order (eq. 34) of the error statistic ``kind`` over ``mask``, with a bootstrap 95% CI over paths.

    ``values`` (n_steps, M): squared errors (strong) or f(x_N) − f(x_ref) (weak). Returns (order, lo, hi) or
    (None, None, None) with fewer than 3 points in the window."""
    return fit_order_bootstrap(steps, values, lambda v: _stat(kind, v), mask, reps=bootstrap, seed=seed)


def _floor_onset(steps, official, exact, factor: float = 2.0):
    """First N from which the official error stays above ``factor`` × the exact one (None if never)."""
    bad = np.asarray(official) > factor * np.asarray(exact)
    for i in range(len(steps)):
        if bad[i:].all():
            return int(steps[i])
    return None


def run_case(cfg: ConvergenceConfig, problem: str, nsf_name: str, log=print) -> tuple[dict, list[dict], dict]:
    """One (problem, NSF): reference, every solver × quadrature × N, entries with fitted orders.

    Returns (reference summary, entries, raw) where raw holds the end points for plots."""
    gm = get_problem(problem)
    nsf = get_nsf(nsf_name)
    steps = tuple(cfg.problem_steps.get(problem, cfg.steps))
    M = int(cfg.problem_paths.get(problem, cfg.paths))
    fine = fine_grid(cfg, steps)
    path = BrownianPath(fine, (M, gm.D), seed=cfg.seed + 1)
    x0 = gm.sample(M, torch.Generator().manual_seed(cfg.seed), sigma=float(fine[0]))
    ref = reference_solution(gm, nsf, x0, path, ode_rtol=cfg.ode_rtol)
    x_ref, keep = ref.pop("x"), ref.pop("keep")
    noise = CoupledNoise(path, nsf)
    strides = [path.n // s for s in steps]
    t0 = time.perf_counter()
    ode = ref["kind"] == "dop853"
    if not ode:
        noise.precompute(strides)
    tests = weak_test_functions(gm, float(fine[-1]))
    raw, values = {}, {}
    for quad in cfg.quadratures:
        for label, order, der in cfg.solvers:
            sq, ev, wk, direct = [], [], {k: [] for k in WEAK_KINDS}, {k: [] for k in WEAK_KINDS}
            for st in strides:
                out = sample_er_sde(
                    gm,
                    x0.clone(),
                    fine[::st],
                    order=order,
                    nsf=nsf,
                    quadrature=quad,
                    derivatives=der,
                    noise_sampler=noise.sampler(),
                    disable=True,
                )
                sq.append(((out - x_ref) ** 2).sum(-1)[keep])
                ev.append((out - x_ref)[keep])
                for k, (f, exact) in tests.items():
                    fo = f(out)
                    wk[k].append((fo - f(x_ref))[keep])
                    direct[k].append((float(fo.mean()) - exact, float(fo.std() / math.sqrt(M))))
                raw[(quad, label, steps[strides.index(st)])] = out
            same = keeps_sign(path_errors=torch.stack(ev).numpy())
            values[(quad, label)] = (torch.stack(sq), same, {k: torch.stack(v) for k, v in wk.items()}, direct)
    noise.clear()
    solver_seconds = time.perf_counter() - t0
    ref_direct = {
        k: (float(f(x_ref).mean()) - ex, float(f(x_ref).std() / math.sqrt(M))) for k, (f, ex) in tests.items()
    }
    entries = []
    h2 = nsf.h_tilde_sq(fine)
    M_used = int(keep.sum())
    common = dict(
        problem=problem, nsf=nsf_name, h_tilde_sq=[float(h2.min()), float(h2.max())], paths=M_used, steps=list(steps)
    )
    for (quad, label), (sq, same, wk, direct) in values.items():
        order, der = next((o, d) for lab, o, d in cfg.solvers if lab == label)
        base = dict(common, solver=label, order=order, derivatives=der, quadrature=quad)
        for kind in STRONG_KINDS:
            bound = ref["bound_rms"] if kind == "strong_rms" else ref["bound_median"]
            entries.append(_order_entry(base, kind, steps, sq, cfg, cfg.floor_factor * bound, same_sign=same))
        for kind in WEAK_KINDS:
            d = wk[kind]
            se = (d.std(-1) / math.sqrt(M_used)).numpy()
            floor = cfg.floor_factor * ref["bound_rms"] * _lipschitz(kind)
            direct_kw = dict(direct=[v[0] for v in direct[kind]], direct_se=[v[1] for v in direct[kind]])
            entries.append(_order_entry(base, kind, steps, d, cfg, floor, se=se, **direct_kw))
    _add_floor_onsets(entries)
    ref_summary = dict(
        problem=problem,
        nsf=nsf_name,
        paths=M,
        **ref,
        min_solver_error_rms=min(
            min(e["errors"]) for e in entries if e["error_kind"] == "strong_rms" and e["quadrature"] == "exact"
        ),
        weak_direct=ref_direct,
        solver_seconds=solver_seconds,
    )
    ref_summary["ratio_rms"] = ref_summary["min_solver_error_rms"] / max(ref["bound_rms"], 1e-300)
    log(
        f"  {problem:>15s} {nsf_name:>10s}: reference {ref['kind']} {ref['seconds']:.1f}s "
        f"(bound rms {ref['bound_rms']:.1e}, ratio {ref_summary['ratio_rms']:.0f}), solvers {solver_seconds:.1f}s"
    )
    return ref_summary, entries, dict(x0=x0, x_ref=x_ref, out=raw, fine=fine, path=path)


# Error statistics that are smooth functions of N for fixed paths, where eq. (50) applies (a median switches
# paths, an indicator jumps).
SMOOTH_KINDS = ("strong_rms", "weak_mean", "weak_second_moment")


def _order_entry(base: dict, kind: str, steps, data, cfg, floor: float, se=None, same_sign=None, **extra) -> dict:
    """One study entry: the error statistic ``kind`` of ``data`` per step count, and its order (eq. (34))
    fitted where the error is resolved (above ``floor`` and, for weak errors, ``se`` given, at least 2
    Monte-Carlo standard errors), decreases and keeps its sign: the sign of the mean difference for weak
    errors, ``same_sign`` (the paths' errors, :func:`~ersde_theory.evaluation.orders.keeps_sign`) for strong
    ones."""
    err = _stat(kind, data).numpy()
    resolved = err >= floor
    if se is not None:
        resolved &= (err > 0) & (err >= 2 * se)
        extra = dict(se=se.tolist(), **extra)
        same_sign = keeps_sign(signs=data.mean(-1).numpy())
    mask = _window(cfg, steps, resolved, err, same_sign)
    p, lo, hi = order_with_ci(steps, data, kind, mask, bootstrap=cfg.bootstrap, seed=cfg.seed)
    if base["h_tilde_sq"][1] == 0 and kind in SMOOTH_KINDS:  # no noise: deterministic in N given the paths
        full = asymptotic_window(steps, err, same_sign=same_sign, resolved=resolved, min_steps=cfg.fit_min_steps)
        x = extrapolated_order(steps, err, full)
        extra = dict(
            extra,
            extrapolated=dict(
                order=x.order,
                ci=None if x.order is None else [x.lo, x.hi],
                fit_steps=np.asarray(steps)[full].tolist(),
                pairwise=x.pairwise,
                reason=x.reason,
            ),
        )
    return dict(
        base,
        error_kind=kind,
        errors=err.tolist(),
        **extra,
        fit_steps=np.asarray(steps)[mask].tolist(),
        fitted_order=p,
        ci=[lo, hi],
        local_slopes=pairwise_orders(steps, err),
    )


def _window(cfg: ConvergenceConfig, steps, resolved, err, same_sign=None) -> np.ndarray:
    """The fit window (eq. 34): of the finest run of resolved step counts with N ≥ ``fit_min_steps`` over
    which the error decreases and keeps its sign, the finest ``fit_points``."""
    return asymptotic_window(
        steps, err, same_sign=same_sign, resolved=resolved, min_steps=cfg.fit_min_steps, max_points=cfg.fit_points
    )


def _lipschitz(kind: str) -> float:
    """Scale turning the reference's strong bound into a bound on its weak error (0 for the indicator,
    whose reference error is not controlled by the strong bound; it is checked against the exact value)."""
    return {"weak_mean": 1.0, "weak_second_moment": 10.0, "weak_mode": 0.0}[kind]


def _add_floor_onsets(entries: list[dict]) -> None:
    by_key = {(e["problem"], e["nsf"], e["solver"], e["error_kind"], e["quadrature"]): e for e in entries}
    for (p, n, s, k, q), e in by_key.items():
        if q != "exact" and (p, n, s, k, "exact") in by_key:
            e["floor_onset_steps"] = _floor_onset(e["steps"], e["errors"], by_key[(p, n, s, k, "exact")]["errors"])


def run_study(cfg: ConvergenceConfig = CPU_DEFAULT, log=print) -> dict:
    """Every (problem, NSF) of ``cfg``; returns the JSON-ready results."""
    t0 = time.perf_counter()
    refs, entries = [], []
    for problem in cfg.problems:
        for nsf_name in cfg.problem_nsfs.get(problem, cfg.nsfs):
            r, e, _ = run_case(cfg, problem, nsf_name, log=log)
            refs.append(r)
            entries += e
    conf = asdict(cfg)
    conf["solvers"] = [list(s) for s in cfg.solvers]
    return dict(
        config=conf,
        seconds=time.perf_counter() - t0,
        references=refs,
        entries=entries,
        notes=[
            "Schedules end at sigma_min > 0: no final step to sigma = 0 (it returns x_theta).",
            "Weak errors: paired estimate mean(f(x_N) - f(x_ref)) with its standard error; 'direct' is "
            "mean f(x_N) - exact with its standard error.",
            "ER-SDE-3c: derivatives='corrected'; the others derivatives='published'.",
        ],
    )


def _cell(e: dict) -> str:
    """'order [CI]' (window fit, bootstrap over paths); for a noise-free NSF also '; ext. p̂ [lo, hi]', the
    extrapolated order and bound of eq. (50), or '; ext. –' where the pairwise orders allow none."""
    cell = "–" if e["fitted_order"] is None else f"{e['fitted_order']:.2f} [{e['ci'][0]:.2f}, {e['ci'][1]:.2f}]"
    x = e.get("extrapolated")
    if x is not None:
        cell += "; ext. –" if x["order"] is None else f"; ext. {x['order']:.2f} [{x['ci'][0]:.2f}, {x['ci'][1]:.2f}]"
    return cell


def convergence_markdown(results: dict) -> str:
    """The fitted orders with bootstrap 95% CIs, one table per error kind."""
    entries = results["entries"]
    solvers = list(dict.fromkeys(e["solver"] for e in entries))
    lines = [
        "# Measured convergence orders of the ER-SDE solvers",
        "",
        "Order = −slope of log error vs log N over the fit window (the finest resolved step counts over which "
        "the error decreases and keeps its sign: the mean difference for weak errors, the paths' errors for "
        "strong ones), bootstrap 95% CI over paths in brackets; '–': fewer than 3 such points. "
        "Schedules: Karras ρ = 7, σ "
        f"{results['config']['sigma_max']:g} → {results['config']['sigma_min']:g}, no final step to 0. "
        "ER-SDE-3c uses derivatives='corrected'. For `ode` (no noise: given the paths the error is a deterministic "
        "function of N) the window fit's interval covers the slope over that window, not the asymptotic order; "
        "'ext.' (RMS, mean and second moment) gives the order extrapolated from the pairwise orders with its bound "
        "(docs/theory.md eq. (50)) over "
        "the finest run of resolved N ≥ the fit's minimum, or '–' where they are not yet converging geometrically.",
        "",
    ]
    lines += [
        "## References",
        "",
        "bound: distance of the reference to its check solution (SRA1 stride 2, or DOP853 at 100× rtol); "
        "unresolved: paths on which the two differ by > 1e-2 (left out of all statistics).",
        "",
    ]
    ref_rows = []
    for r in results["references"]:
        so = "–"
        if "self_pairwise_rms" in r:
            fit = "–" if r["self_order_rms"] is None else f"{r['self_order_rms']:.2f}"
            so = f"{fit} ({', '.join(f'{v:.2f}' for v in r['self_pairwise_rms'])})"
        elif r.get("self_order_rms") is not None:
            so = f"{r['self_order_rms']:.2f}"
        ref_rows.append(
            [r["problem"], r["nsf"], r["kind"], r["fine_steps"], f"{r['paths']} ({r['unresolved_paths']})",
             f"{r['bound_rms']:.1e}", f"{r['bound_median']:.1e}", f"{r['min_solver_error_rms']:.1e}",
             f"{r['ratio_rms']:.0f}", so]
        )  # fmt: skip
    lines += markdown_table(
        ["problem", "NSF", "kind", "fine steps", "paths (unresolved)", "bound (RMS)", "bound (median)",
         "min solver RMS", "ratio", "SRA self-order (pairwise, fine → coarse)"],
        ref_rows,
    )  # fmt: skip
    for kind in STRONG_KINDS + WEAK_KINDS:
        rows = {}
        for e in entries:
            if e["error_kind"] == kind:
                rows.setdefault((e["problem"], e["nsf"], e["quadrature"]), {})[e["solver"]] = e
        table = []
        for (p, n, q), cells in rows.items():
            h2 = next(iter(cells.values()))["h_tilde_sq"]
            floors = sorted({c.get("floor_onset_steps") for c in cells.values() if c.get("floor_onset_steps")})
            table.append(
                [p, n, f"{h2[0]:.2g}–{h2[1]:.2g}", q, *(_cell(cells[s]) if s in cells else "" for s in solvers),
                 ", ".join(map(str, floors)) if q != "exact" else ""]
            )  # fmt: skip
        head = ["problem", "NSF", "h̃² range", "quadrature", *solvers, "official floor from N"]
        lines += ["", f"## {kind}", "", *markdown_table(head, table)]
    return "\n".join(lines) + "\n"


def _json_ready(obj):
    if isinstance(obj, dict):
        return {str(k): _json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_ready(v) for v in obj]
    if isinstance(obj, float):
        return float(f"{obj:.6g}")
    return obj


def write_outputs(results: dict, outdir, suffix: str = "") -> list[Path]:
    """``convergence_orders{suffix}.json`` and ``.md`` in ``outdir`` (the log-log plots:
    :func:`ersde_theory.plots.convergence.plot_convergence`)."""
    data = _json_ready(results)  # write_report moves the timings to convergence_orders*.timings.json
    jpath, mpath = write_report(outdir, f"convergence_orders{suffix}", data, convergence_markdown(results))
    return [jpath, mpath]


def run_cpu_default() -> dict:
    """The study at CPU defaults (:data:`CPU_DEFAULT`), on one torch thread (its tensors are small)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_study(CPU_DEFAULT, log=lambda *a: None)
    finally:
        torch.set_num_threads(threads)


def config_for(full: bool, **overrides) -> ConvergenceConfig:
    return replace(FULL if full else CPU_DEFAULT, **overrides)


def reference_benchmark(
    problem: str = "ring_2d",
    paths: int = 10_000,
    fine_steps: int = 4096,
    nsfs=("ode", "sde", "er_sde_5"),
    cfg: ConvergenceConfig = CPU_DEFAULT,
    log=print,
) -> list[dict]:
    """Time the reference with ``paths`` coupled paths and report its self-consistency (RMS and median
    distance between the reference and its check solution: DOP853 rtol 1e-12 vs 1e-10; SRA1 stride 1 vs 2)."""
    gm = get_problem(problem)
    fine = get_sigmas_karras(fine_steps + 1, cfg.sigma_min, cfg.sigma_max, cfg.rho, final_zero=False).numpy()
    x0 = gm.sample(paths, torch.Generator().manual_seed(cfg.seed), sigma=float(fine[0]))
    rows = []
    for name in nsfs:
        nsf = get_nsf(name)
        path = BrownianPath(fine, (paths, gm.D), seed=cfg.seed + 1)
        ref = reference_solution(gm, nsf, x0, path, ode_rtol=cfg.ode_rtol, strides=(1, 2))
        row = dict(
            problem=problem,
            nsf=name,
            paths=paths,
            kind=ref["kind"],
            fine_steps=fine_steps,
            seconds=ref["seconds"],
            self_rms=ref["bound_rms"],
            self_median=ref["bound_median"],
        )
        log(
            f"reference {problem} {name:>9s} {ref['kind']}: {paths} paths, {ref['seconds']:.1f}s (all check runs "
            f"included), self-consistency RMS {ref['bound_rms']:.1e}, median {ref['bound_median']:.1e}"
        )
        rows.append(row)
    return rows
