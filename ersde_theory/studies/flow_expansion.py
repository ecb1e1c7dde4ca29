"""Third order from σ = 1 on flow models: corrected ER-SDE-Solver-3 with the denoiser expanded in λ = σ/α
(``expansion="lambda"``, eq. (20)) or in the flow time s = λ/(1 + λ) = σ (``expansion="flow"``, eqs. (53)–(57)),
on unshifted and SD3-shifted (shift 3) flow grids from σ = 1 down to σ_min, against high-precision references:

* ``ode``: φ = λ on the bimodal 1-D Gaussian mixture with its exact velocity (eq. (44)); the reference is the
  flow ODE dx/dσ = v (eq. (35)) by DOP853 at rtol 1e-13 (its change against rtol 1e-12 is reported).
* ``er_sde_1 mean``: the mean recursion of the stochastic solver with φ = er_sde_1 (the solver run with
  ``s_noise = 0``: for Gaussian data the denoiser is affine, so the noise-free recursion is the recursion of the
  means) on N(μ, c²) data, against the exact conditional mean of the ER SDE, in closed form up to one integral
  evaluated by mpmath at 30 digits:

      E[x_t | x_s] − α_t μ = g(λ_s → λ_t) exp(∫_{λ_t}^{λ_s} (1 + h̃²) c²/(λ(c² + λ²)) dλ) (x_s − α_s μ),

  with the gain g of eqs. (36)/(37) (from λ_s = ∞ at σ = 1). The solver's mean is affine in the start x too,
  A + B x, with A = α_N μ to rounding (the data mean is a fixed point of every step); the error reported is the
  signed error of the factor, B − K (B from the start points 0 and 1).

* ``toy``: sample quality at NFE 10/20/50 on ``bench flow``'s 64-D Gaussian-mixture flow toy with its exact velocity
  (the configurations and sampling of :mod:`.bench_flow`): the Fréchet distance to the exact moments (eq. (31)) per
  block of samples, and the paired difference flow − λ expansion with its 95 % interval (eq. (33)), for corrected
  ER-SDE-3 with ``er_sde_5`` and ``ode``.

The ODE error is the RMS over start points at σ = 1 of the end state at σ_min (no final step to σ = 0, which would
hide the error); orders are the pairwise orders (eq. (34)) and the extrapolated order with its bound (eq. (50)),
from :mod:`ersde_theory.evaluation.orders`.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from scipy.integrate import solve_ivp

from ..coefficients.schedules import flow_shift
from ..evaluation.orders import asymptotic_window, extrapolated_order, keeps_sign, pairwise_orders
from ..evaluation.reports import write_report
from ..solvers.ersde import sample_er_sde_vp
from ..toys.flow import flow_velocity
from ..toys.gmm import GaussianMixture
from ..toys.problems import bimodal_1d

__all__ = [
    "PRESETS",
    "CASES",
    "exact_mean_factor",
    "flow_grid",
    "ode_case",
    "mean_case",
    "run_study",
    "markdown_report",
    "run_flow_expansion",
]

SIGMA_MIN = 0.02
SHIFTS = (1.0, 3.0)
EXPANSIONS = ("lambda", "flow")
CASES = ("ode", "er_sde_1 mean")
# An error is resolved where it is above ROUNDING_MARGIN times the worst-case rounding of an N-step recursion on
# values of size 1 (N ε): rounding then moves a pairwise order by at most about 0.03.
ROUNDING_MARGIN = 100.0
GAUSS_MEAN, GAUSS_STD = 0.5, 0.5  # the N(μ, c²) data of the mean recursion
PRESETS = {
    "quick": dict(ns=(16, 32, 64, 128, 256), points=16, nfes=(10,), toy_blocks=2, toy_n=64),
    "default": dict(ns=tuple(16 * 2**k for k in range(9)), points=64, nfes=(10, 20, 50), toy_blocks=5, toy_n=1000),
}
TOY_NSFS = ("er_sde_5", "ode")


def flow_grid(n: int, shift: float, sigma_min: float = SIGMA_MIN) -> np.ndarray:
    """n steps from σ = 1 to σ_min: uniform in σ (shift 1) or SD3's static shift (eq. in docs §9), rescaled to end at
    σ_min (float64)."""
    return flow_shift(np.linspace(1.0, 0.0, n + 1), shift) * (1.0 - sigma_min) + sigma_min


def _solve(vel, x0: torch.Tensor, sig: np.ndarray, expansion: str, nsf: str, s_noise: float = 1.0) -> torch.Tensor:
    return sample_er_sde_vp(
        vel, x0, 1.0 - sig, sig, prediction="flow", nsf=nsf, order=3, derivatives="corrected",
        expansion=expansion, s_noise=s_noise, disable=True,
    )  # fmt: skip


def _rms(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b) ** 2).sum(-1).mean().sqrt())


def _flow_ode_reference(vel, x0: torch.Tensor, sigma_min: float, rtol: float) -> torch.Tensor:
    m, d = x0.shape

    def f(s, y):
        return vel(torch.from_numpy(y.reshape(m, d)), torch.full((m,), s, dtype=torch.float64)).numpy().ravel()

    sol = solve_ivp(f, (1.0, sigma_min), x0.numpy().ravel(), method="DOP853", rtol=rtol, atol=rtol * 0.1)
    if not sol.success:
        raise RuntimeError(f"solve_ivp failed: {sol.message}")
    return torch.from_numpy(sol.y[:, -1].reshape(m, d).copy())


def _start_points(points: int, dim: int) -> torch.Tensor:
    return torch.randn(points, dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def ode_case(ns, points: int, shift: float) -> dict:
    """Errors of both expansions (φ = λ) on the bimodal mixture against DOP853 (rtol 1e-13)."""
    gm = bimodal_1d()
    vel = flow_velocity(gm)
    x0 = _start_points(points, gm.D)
    ref = _flow_ode_reference(vel, x0, SIGMA_MIN, 1e-13)
    ref_change = _rms(ref, _flow_ode_reference(vel, x0, SIGMA_MIN, 1e-12))
    errs = {e: [_rms(_solve(vel, x0, flow_grid(n, shift), e, "ode"), ref) for n in ns] for e in EXPANSIONS}
    return dict(errors=errs, reference="DOP853 rtol 1e-13", reference_change=ref_change)


def exact_mean_factor(nsf: str, sigma_t: float, c: float = GAUSS_STD, dps: int = 30) -> float:
    """K with E[x_t | x at σ = 1] = α_t μ + K x for N(μ, c²) data on α = 1 − σ (module docstring): the gain from
    λ = ∞ (eq. (37)) times exp(∫_{λ_t}^∞ (1 + h̃²) c²/(λ(c² + λ²)) dλ), the integral by mpmath."""
    import mpmath as mp
    import sympy as sp

    from ..theory.symbolic.flow import ell_at_infinity
    from ..theory.symbolic.sde import ell, h_tilde_sq
    from ..theory.symbolic.symbols import SIGMA

    h2 = sp.lambdify(SIGMA, h_tilde_sq(nsf), modules="mpmath")
    ell_t = sp.lambdify(SIGMA, ell(nsf), modules="mpmath")
    ell_inf = ell_at_infinity(nsf)
    if not ell_inf.is_finite:
        return 0.0  # g = 0 (eq. (37)): the mean forgets the start
    with mp.workdps(dps):
        lam_t = mp.mpf(sigma_t) / (1 - mp.mpf(sigma_t))
        cc = mp.mpf(c) ** 2
        integral = mp.quad(lambda u: (1 + h2(u)) * cc / (u * (cc + u * u)), [lam_t, 10 * lam_t, mp.inf])
        gain = mp.mpf(sigma_t) * mp.exp(-(sp.N(ell_inf, dps + 5) - ell_t(lam_t)))
        return float(gain * mp.exp(integral))


def mean_case(ns, _points: int, shift: float, nsf: str = "er_sde_1") -> dict:
    """Errors of both expansions in the mean recursion of ``nsf`` (s_noise = 0, Gaussian data) against the exact
    conditional mean (two start points, 0 and 1, give the factor: ``_points`` is not used)."""
    gm = GaussianMixture([1.0], [[GAUSS_MEAN]], [[GAUSS_STD**2]])
    vel = flow_velocity(gm)
    x0 = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    k = exact_mean_factor(nsf, SIGMA_MIN)

    def factor_error(out):
        return float(out[1, 0] - out[0, 0]) - k

    errs = {
        e: [factor_error(_solve(vel, x0, flow_grid(n, shift), e, nsf, s_noise=0.0)) for n in ns] for e in EXPANSIONS
    }
    return dict(errors=errs, reference="exact conditional mean (mpmath, 30 digits)", reference_change=None)


def toy_quality(nfes, blocks: int, n_per_block: int, shift: float) -> list[dict]:
    """FD to the exact moments (eq. (31)) of corrected ER-SDE-3 with both expansions on the 64-D flow toy (exact
    velocity) per NSF × NFE: mean ± 95 % interval over the seed blocks and the paired Δ = flow − λ (eq. (33))."""
    from ..evaluation.frechet import frechet_to_moments
    from ..evaluation.intervals import paired_t_interval, t_interval
    from ..models.loading import ImageModel
    from ..toys.problems import get_problem
    from .bench_flow import TOY_PROBLEM, _run

    gm = get_problem(TOY_PROBLEM)
    im = ImageModel(f"{TOY_PROBLEM} (exact)", "flow", flow_velocity(gm), (gm.D,), 0.0, 1.0)
    mean, cov = gm.mean().numpy(), gm.cov().numpy()
    seeds = list(range(n_per_block * blocks))
    rows = []
    for nsf in TOY_NSFS:
        for nfe in nfes:
            fd = {}
            for e in EXPANSIONS:
                cfg = dict(sampler="er_sde", order=3, nsf=nsf, derivatives="corrected", expansion=e)
                x = _run(im, seeds, nfe, cfg, shift, len(seeds), "cpu").reshape(blocks, n_per_block, -1)
                fd[e] = np.array([frechet_to_moments(b, mean, cov) for b in x])
            row = dict(nsf=nsf, nfe=nfe)
            for e in EXPANSIONS:
                row[e] = t_interval(fd[e])
            row["flow_minus_lambda"] = paired_t_interval(fd["flow"], fd["lambda"])
            rows.append(row)
    return rows


def _orders(ns, errs) -> dict:
    """Pairwise orders of |e| over all N (eq. (34)); the extrapolated order (eq. (50)) over the finest run where the
    error decreases, keeps its sign and is resolved, above :data:`ROUNDING_MARGIN` · N ε (:func:`asymptotic_window`)."""
    resolved = np.abs(np.asarray(errs)) > ROUNDING_MARGIN * np.asarray(ns) * np.finfo(np.float64).eps
    mask = asymptotic_window(ns, errs, same_sign=keeps_sign(signs=np.sign(errs)), resolved=resolved)
    ext = extrapolated_order(ns, errs, mask)
    return dict(
        pairwise=pairwise_orders(ns, np.abs(errs)), window_from=int(np.asarray(ns)[mask][0]),
        window_to=int(np.asarray(ns)[mask][-1]),
        extrapolated=ext.order, lo=ext.lo, hi=ext.hi, reason=ext.reason or None,
    )  # fmt: skip


def _crossover(ns, lam, flow) -> int | None:
    """The smallest N from which the flow expansion's error is below the λ expansion's at every finer N."""
    best = None
    for n, a, b in zip(reversed(ns), reversed(lam), reversed(flow), strict=True):
        if b < a:
            best = n
        else:
            break
    return best


def run_study(preset: str = "default", log=print) -> dict:
    """Both cases × both grids × both expansions at ``preset`` sizes; returns the data of the report."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {tuple(PRESETS)}")
    p = PRESETS[preset]
    ns = list(p["ns"])
    t0 = time.perf_counter()
    rows = []
    for case, fn in (("ode", ode_case), ("er_sde_1 mean", mean_case)):
        for shift in SHIFTS:
            res = fn(ns, p["points"], shift)
            errs = res.pop("errors")
            row = dict(case=case, shift=shift, **res)
            for e in EXPANSIONS:
                row[e] = dict(errors=errs[e], **_orders(ns, errs[e]))
            lam, flow = np.abs(errs["lambda"]), np.abs(errs["flow"])
            row["ratio_at_finest"] = float(lam[-1] / flow[-1])
            row["flow_better_from"] = _crossover(ns, lam, flow)
            rows.append(row)
            log(f"[{time.perf_counter() - t0:6.1f}s] {case}, shift {shift:g}")
    toy = {}
    for shift in SHIFTS:
        toy[f"{shift:g}"] = toy_quality(p["nfes"], p["toy_blocks"], p["toy_n"], shift)
        log(f"[{time.perf_counter() - t0:6.1f}s] toy quality, shift {shift:g}")
    toy_setup = dict(problem="image_like_64d", velocity="exact", blocks=p["toy_blocks"], n_per_block=p["toy_n"])
    return dict(
        preset=preset, ns=ns, sigma_min=SIGMA_MIN, points=p["points"], rows=rows, toy=toy, toy_setup=toy_setup,
        seconds=time.perf_counter() - t0,
    )  # fmt: skip


def _fmt_order(o: dict) -> str:
    if o["extrapolated"] is None:
        return f"none ({o['reason']})"
    return f"{o['extrapolated']:.3f} [{o['lo']:.3f}, {o['hi']:.3f}]"


def markdown_report(res: dict) -> str:
    ns = res["ns"]
    lines = [
        "# Third order from σ = 1 on flow models: the λ and the flow expansion",
        "",
        'Corrected ER-SDE-Solver-3 (`derivatives="corrected"`, third-order start eq. (26)) on flow grids from σ = 1 to '
        f"σ_min = {res['sigma_min']} ({res['points']} start points), with the denoiser expanded in λ = σ/α "
        '(`expansion="lambda"`, eq. (20)) or in the flow time s = σ (`expansion="flow"`, eqs. (53)–(57)). '
        "`ode`: φ = λ on the bimodal 1-D mixture against DOP853, RMS end-point error; `er_sde_1 mean`: the noise-free "
        "(mean) recursion of φ = er_sde_1 on N(0.5, 0.5²) against the exact conditional mean, signed error of the "
        "factor of the start point. Pairwise orders of |e| (eq. (34)); the extrapolated order with its bound "
        "(eq. (50)) over the finest run of N where the error decreases, keeps its sign and is resolved (above "
        f"{ROUNDING_MARGIN:g} N ε, the worst-case rounding of N steps times a margin; its N: 'window').",
        "",
        "| case | shift | expansion | " + " | ".join(f"N={n}" for n in ns) + " |",
        "|---|---|---|" + "---|" * len(ns),
    ]
    for r in res["rows"]:
        for e in EXPANSIONS:
            lines.append(
                f"| {r['case']} | {r['shift']:g} | {e} | " + " | ".join(f"{v:.2e}" for v in r[e]["errors"]) + " |"
            )
    lines += [
        "",
        "| case | shift | expansion | pairwise orders | extrapolated order [bound] | window |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        for e in EXPANSIONS:
            o = r[e]
            pw = ", ".join(f"{q:.2f}" for q in o["pairwise"])
            win = f"{o['window_from']}–{o['window_to']}"
            lines.append(f"| {r['case']} | {r['shift']:g} | {e} | {pw} | {_fmt_order(o)} | {win} |")
    lines += [
        "",
        "| case | shift | error λ / error flow at N = " + f"{ns[-1]} | flow more accurate from N = |",
        "|---|---|---|---|",
    ]
    for r in res["rows"]:
        cross = "never" if r["flow_better_from"] is None else str(r["flow_better_from"])
        lines.append(f"| {r['case']} | {r['shift']:g} | {r['ratio_at_finest']:.3g} | {cross} |")
    ts = res["toy_setup"]
    lines += [
        "",
        f"Sample quality on bench flow's {ts['problem']} flow toy ({ts['velocity']} velocity, same seeds for both "
        f"expansions): FD to the exact moments (eq. (31)), mean ± 95 % CI over {ts['blocks']} blocks of "
        f"{ts['n_per_block']}; Δ = flow − λ paired by block (eq. (33); negative: the flow expansion is better).",
        "",
        "| shift | NSF | NFE | FD λ | FD flow | Δ flow − λ |",
        "|---|---|---|---|---|---|",
    ]
    for shift, rows in res["toy"].items():
        for r in rows:
            (a, ah), (b, bh), (d, dh) = r["lambda"], r["flow"], r["flow_minus_lambda"]
            sig = " *" if abs(d) > dh else ""
            cells = (f"{a:.4f} ± {ah:.4f}", f"{b:.4f} ± {bh:.4f}", f"{d:+.4f} ± {dh:.4f}{sig}")
            lines.append(f"| {shift} | {r['nsf']} | {r['nfe']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("\\* the interval excludes 0.")
    changes = [r for r in res["rows"] if r["reference_change"] is not None]
    if changes:
        worst = max(r["reference_change"] for r in changes)
        lines += ["", f"DOP853 reference: rtol 1e-13 against 1e-12 differs by at most {worst:.1e} (RMS)."]
    lines += ["", f"Preset {res['preset']}."]
    return "\n".join(lines) + "\n"


def run_flow_expansion(outdir="figures", preset: str = "default", log=print) -> dict:
    """:func:`run_study`, then ``flow_expansion.json`` and ``flow_expansion.md`` in ``outdir``."""
    res = run_study(preset, log)
    write_report(outdir, "flow_expansion", res, markdown_report(res))
    return res
