"""Measurements of the published ER-SDE-Solver-3 against the corrected one (docs/theory.md §6, eqs. 23–26).

1. Deterministic order (h̃ = 0). Data N(m, s0²) in 1-D: along the probability-flow ODE
   x(σ) = m + (x(σ_s) − m) √(s0² + σ²)/√(s0² + σ_s²). End-point errors on schedules without the final 0.
2. Weak order, any NSF. The denoiser m + s0²/(s0² + σ²)(x − m) is affine, so every ER-SDE-k run is
   x_N = m + A (x_T − m) + Σ_j B_j z_j exactly; A and B_j come from one batched run (unit initial state /
   unit noise at step j), giving Var x_N = A² (s0² + σ_max²) + Σ B_j² without Monte Carlo, to compare
   with the exact marginal variance s0² + σ_min² (all NSFs share the marginals).
3. Strong order, any NSF. With y = x − m the ER SDE is linear, dy = k(σ) y dσ + noise,
   k = (1 + h̃²) σ/(s0² + σ²). On each step of a fine grid the solver's noise ξ = ∫ (φ_t/φ(u)) dw and the
   exact solution's noise η = ∫ (Φ(t)/Φ(u)) dw, Φ = exp ∫ k, are jointly Gaussian with variances and
   covariance ∫ kernel·kernel 2u h̃²(u) du (nested Gauss–Legendre). Drawing (ξ_j, η_j) gives an exact
   reference y_{j+1} = (Φ_{j+1}/Φ_j) y_j + η_j, and coarse-step noise composes exactly from fine ξ_j as
   ξ[s,t] = r(m,t) ξ[s,m] + ξ[m,t] (docs/theory.md eq. 10) on nested grids.
4. Quality per NFE on the mixtures with the exact denoiser: Fréchet distance (eq. 31) of the samples' Gaussian
   fit to the exact moments, mean and 95 % t-interval (eq. 33) over seeds, and the paired difference
   corrected − published (same initial states and noise), beside the FD noise floor (eq. 32); and each seed's FD
   extrapolated to n = ∞ (FD_∞, eq. 52), whose t-interval over seeds is for the true distance.

Orders are least-squares fits and pairwise orders (eq. 34) and, for the deterministic errors, the extrapolated
order with its bound (eq. 50). :func:`run_benchmark` runs everything and writes
``third_order.json`` and ``third_order.md``; :func:`order_panel_data` is the data of the ``third_order``
figure (drawn by :mod:`ersde_theory.plots.third_order`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.stats
import torch

from ..coefficients.ersde import ersde_coefficients
from ..coefficients.schedules import get_sigmas_karras
from ..evaluation.frechet import frechet_infinity, frechet_to_moments
from ..evaluation.intervals import paired_t_interval, percentile_interval, t_interval
from ..evaluation.noise_floor import fd_noise_floor
from ..evaluation.orders import (
    EXTRAPOLATION_POINTS,
    asymptotic_window,
    extrapolated_order,
    fit_order,
    keeps_sign,
    pairwise_orders,
    window_between,
)
from ..evaluation.reports import markdown_table, write_report
from ..solvers.ersde import sample_er_sde
from ..theory.nsf import resolve_nsf
from ..theory.quadrature import integrate_log, log_nodes
from ..toys.gmm import GaussianMixture
from ..toys.problems import get_problem

SIGMA_MIN, SIGMA_MAX = 0.002, 80.0


@dataclass(frozen=True)
class Variant:
    """One solver configuration; ``correct_start=None`` follows ``derivatives`` (solver default)."""

    label: str
    order: int
    derivatives: str = "published"
    correct_start: bool | None = None


ER1 = Variant("ER-SDE-1", 1)
ER2 = Variant("ER-SDE-2", 2)
ER3_PUB = Variant("ER-SDE-3 published", 3, "published")
ER3_COR = Variant("ER-SDE-3 corrected", 3, "corrected")
ER3_COR_EULER = Variant("ER-SDE-3 corrected, Euler start", 3, "corrected", False)
MAIN_VARIANTS = (ER2, ER3_PUB, ER3_COR)


@dataclass(frozen=True)
class GaussianData:
    """1-D data N(m, s0²) under VE noising."""

    m: float = 0.5
    s0: float = 0.5

    def model(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Exact denoiser E[x_0 | x_σ = x] = m + s0²/(s0² + σ²) (x − m) (k-diffusion convention)."""
        shrink = self.s0**2 / (self.s0**2 + sigma.reshape(-1, *([1] * (x.ndim - 1))) ** 2)
        return self.m + shrink * (x - self.m)

    def mixture(self) -> GaussianMixture:
        """The same data as a one-component :class:`GaussianMixture` (for cross-checks)."""
        return GaussianMixture([1.0], [[self.m]], [[self.s0**2]])

    def marginal_std(self, sigma):
        return np.sqrt(self.s0**2 + np.asarray(sigma, dtype=np.float64) ** 2)

    def pf_solution(self, x_s, sigma_s: float, sigma_t: float):
        """Closed-form probability-flow map x(σ_s) ↦ x(σ_t)."""
        return self.m + (x_s - self.m) * float(self.marginal_std(sigma_t) / self.marginal_std(sigma_s))

    def quantile_states(self, n: int, sigma: float) -> torch.Tensor:
        """n equally spaced normal quantiles of the marginal at σ (deterministic initial states), (n, 1)."""
        z = scipy.stats.norm.ppf((np.arange(n) + 0.5) / n)
        return torch.from_numpy(self.m + float(self.marginal_std(sigma)) * z)[:, None]


def steps(n: int, schedule: str = "karras", sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX) -> np.ndarray:
    """n steps from σ_max to σ_min without the final 0: Karras ρ = 7 or log-uniform (n + 1 values)."""
    if schedule == "karras":
        return get_sigmas_karras(n + 1, sigma_min, sigma_max, final_zero=False).numpy()
    if schedule == "loguniform":
        return np.geomspace(sigma_max, sigma_min, n + 1)
    raise ValueError(f"unknown schedule {schedule!r}; use 'karras' or 'loguniform'")


def run_variant(
    variant: Variant, model, x: torch.Tensor, sigmas, *, nsf="ode", noise_sampler=None, generator=None
) -> torch.Tensor:
    """ER-SDE-``variant.order`` on a VE model: :func:`sample_er_sde` with the variant's derivative estimate
    and third-order start (``correct_start``, eq. 26)."""
    return sample_er_sde(
        model,
        x,
        sigmas,
        order=variant.order,
        nsf=nsf,
        derivatives=variant.derivatives,
        correct_start=variant.correct_start,
        noise_sampler=noise_sampler,
        generator=generator,
        disable=True,
    )


# ----- order fits (eq. 34) --------------------------------------------------------------------------------
def windowed_orders(ns, errs, windows, signs=None) -> dict[str, float | None]:
    """Least-squares orders over each window (lo, hi) of N that holds at least two points; None (no order)
    where, inside the window, the error changes sign (``signs`` given) or does not decrease."""
    out = {}
    e = np.abs(np.asarray(errs, dtype=np.float64))
    same = keeps_sign(signs) if signs is not None else np.ones(len(e) - 1, dtype=bool)
    for lo, hi in windows:
        idx = window_between(ns, lo, hi)
        if idx.size >= 2:
            steps_ok = same[idx[:-1]].all() and np.all(np.diff(e[idx]) < 0)
            out[f"{lo}-{hi}"] = fit_order(np.asarray(ns)[idx], e[idx]) if steps_ok else None
    return out


def asymptotic_order(ns, errs, signs=None, *, min_steps: int = 0, mask=None) -> dict:
    """The asymptotic order of a deterministic error (eq. 50) over the finest window where it keeps its sign and
    decreases (:func:`~ersde_theory.evaluation.orders.asymptotic_window`, or ``mask``): the extrapolated order
    and its bound ``ci``, or ``order`` None with the ``reason`` and only the window's pairwise orders."""
    if mask is None:
        same = keeps_sign(signs) if signs is not None else None
        mask = asymptotic_window(ns, errs, same_sign=same, min_steps=min_steps)
    r = extrapolated_order(ns, errs, mask)
    w = np.asarray(ns)[mask][-EXTRAPOLATION_POINTS:]  # the finest points eq. (50) uses
    return dict(
        window=[int(w[0]), int(w[-1])],
        points=int(w.size),
        order=r.order,
        ci=None if r.order is None else [r.lo, r.hi],
        pairwise=r.pairwise,
        reason=r.reason,
    )


# ----- 1. deterministic order ---------------------------------------------------------------------------
def ode_errors(
    ns=(10, 20, 40, 80, 160, 320),
    variants=MAIN_VARIANTS,
    *,
    schedule: str = "karras",
    data: GaussianData = GaussianData(),
    n_points: int = 64,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    fit_windows=((20, 160),),
) -> dict:
    """Max end-point error over ``n_points`` quantile initial states (φ = σ), its sign at the largest state,
    pairwise orders and the least-squares orders over ``fit_windows``."""
    x = data.quantile_states(n_points, sigma_max)
    out = dict(schedule=schedule, ns=list(ns), sigma_min=sigma_min, sigma_max=sigma_max, data=asdict(data), variants={})
    for v in variants:
        err, sign = [], []
        for n in ns:
            sig = steps(n, schedule, sigma_min, sigma_max)
            e = run_variant(v, data.model, x.clone(), sig) - data.pf_solution(x, sig[0], sig[-1])
            err.append(float(e.abs().max()))
            sign.append(float(np.sign(float(e[-1, 0]))))
        out["variants"][v.label] = dict(
            max_error=err,
            sign=sign,
            pairwise=pairwise_orders(ns, err),
            fitted_orders=windowed_orders(ns, err, fit_windows, sign),
            asymptotic=asymptotic_order(ns, err, sign),
        )
    return out


# ----- 2. weak order (exact moments) ---------------------------------------------------------------------
def _step_index(sig: np.ndarray) -> dict[float, int]:
    return {float(v): i for i, v in enumerate(sig[:-1])}


def final_std(variant: Variant, sigmas: np.ndarray, nsf, data: GaussianData) -> float:
    """Exact std of x_N for x_T ~ N(m, s0² + σ_max²) (module docstring, item 2)."""
    n = len(sigmas) - 1
    idx = _step_index(sigmas)
    x = torch.zeros(n + 1, 1, dtype=torch.float64)
    x[0] = 1.0

    def unit_noise(sigma, sigma_next):
        z = torch.zeros(n + 1, 1, dtype=torch.float64)
        z[idx[float(sigma)] + 1] = 1.0
        return z

    out = run_variant(variant, replace(data, m=0.0).model, x, sigmas, nsf=nsf, noise_sampler=unit_noise)[:, 0]
    var = out[0] ** 2 * (data.s0**2 + sigmas[0] ** 2) + (out[1:] ** 2).sum()
    return float(torch.sqrt(var))


def weak_errors(
    ns=(10, 20, 40, 80, 160, 320),
    variants=MAIN_VARIANTS,
    nsfs=("ode", "er_sde_2", "er_sde_5", "sde"),
    *,
    schedule: str = "karras",
    data: GaussianData = GaussianData(),
    fit_windows=((20, 160),),
) -> dict:
    """|std(x_N) − √(s0² + σ_min²)| (exact, no sampling) per NSF and variant, with fitted orders."""
    out = dict(schedule=schedule, ns=list(ns), data=asdict(data), nsfs={})
    for nsf in nsfs:
        rows = {}
        for v in variants:
            signed = []
            for n in ns:
                sig = steps(n, schedule)
                signed.append(final_std(v, sig, nsf, data) - float(data.marginal_std(sig[-1])))
            err = np.abs(signed).tolist()
            rows[v.label] = dict(
                std_error=err,
                sign=np.sign(signed).tolist(),
                pairwise=pairwise_orders(ns, err),
                fitted_orders=windowed_orders(ns, err, fit_windows, np.sign(signed)),
                asymptotic=asymptotic_order(ns, err, np.sign(signed)),
            )
        out["nsfs"][nsf] = rows
    return out


# ----- 3. strong order (coupled noise, exact reference) ---------------------------------------------------
def linear_sde_steps(sigmas: np.ndarray, nsf, data: GaussianData) -> dict[str, np.ndarray]:
    """Per step σ_j → σ_{j+1} of the linear ER SDE for Gaussian data: the exact gain Φ_{j+1}/Φ_j and the
    joint law of (ξ_j, η_j) (module docstring, item 3)."""
    nsf = resolve_nsf(nsf)
    s, t = sigmas[:-1], sigmas[1:]
    s02 = data.s0**2

    def k_du(sig):  # k(σ) dσ/du, u = log σ
        return (1.0 + nsf.h_tilde_sq(sig)) * sig**2 / (s02 + sig**2)

    gain = np.exp(-integrate_log(k_du, t, s))
    nodes, w = log_nodes(t, s)  # outer nodes u ∈ (t, s)
    tt = np.broadcast_to(t[:, None, None], nodes.shape).ravel()
    inner, iw = log_nodes(tt, nodes.ravel())
    ih2 = nsf.h_tilde_sq(inner)
    k_in = np.sum(iw * (1.0 + ih2) * inner**2 / (s02 + inner**2), axis=(1, 2)).reshape(nodes.shape)
    l_in = np.sum(iw * ih2, axis=(1, 2)).reshape(nodes.shape)  # log(φ(u) t/(φ_t u))
    kern_xi = (t[:, None, None] / nodes) * np.exp(-l_in)  # φ_t/φ(u)
    kern_eta = np.exp(-k_in)  # Φ(t)/Φ(u)
    rate = w * nodes * 2.0 * nodes * nsf.h_tilde_sq(nodes)  # 2u h̃² du
    var_xi = np.sum(rate * kern_xi**2, axis=(1, 2))
    var_eta = np.sum(rate * kern_eta**2, axis=(1, 2))
    cov = np.sum(rate * kern_xi * kern_eta, axis=(1, 2))
    return dict(gain=gain, var_xi=var_xi, var_eta=var_eta, cov=cov)


def coupled_paths(sig_fine: np.ndarray, nsf, data: GaussianData, n_paths: int, seed: int = 0):
    """Initial states x_T ~ N(m, s0² + σ_max²), fine solver noises ξ (n_paths, N_fine) and the exact
    end points x(σ_min) driven by the same Brownian paths."""
    g = torch.Generator().manual_seed(seed)
    x0 = data.m + float(data.marginal_std(sig_fine[0])) * torch.randn(n_paths, generator=g, dtype=torch.float64)
    z1, z2 = (torch.randn(n_paths, len(sig_fine) - 1, generator=g, dtype=torch.float64).numpy() for _ in range(2))
    q = linear_sde_steps(sig_fine, nsf, data)
    sd_xi = np.sqrt(q["var_xi"])
    c = np.divide(q["cov"], sd_xi, out=np.zeros_like(sd_xi), where=sd_xi > 0)
    xi = sd_xi * z1
    eta = c * z1 + np.sqrt(np.maximum(q["var_eta"] - c**2, 0.0)) * z2
    y = x0.numpy() - data.m
    for j in range(len(sig_fine) - 1):
        y = q["gain"][j] * y + eta[:, j]
    return x0[:, None], xi, data.m + y


def coarse_noise_sampler(sig_fine: np.ndarray, xi: np.ndarray, nsf, stride: int):
    """``noise_sampler`` for the schedule ``sig_fine[::stride]`` whose step noise is composed exactly from
    the fine noises: ξ_coarse = Σ_l (Π_{l'>l} r_{l'}) ξ_l, returned as ξ_coarse/std_coarse."""
    sig = sig_fine[::stride]
    r_f = ersde_coefficients(sig_fine, nsf).r
    n = len(sig) - 1
    comp = np.zeros((xi.shape[0], n))
    for l in range(stride):
        comp = r_f[l::stride][None, :n] * comp + xi[:, l::stride][:, :n]
    std = ersde_coefficients(sig, nsf).noise_std
    z = torch.from_numpy(np.divide(comp, std, out=np.zeros_like(comp), where=std > 0))
    idx = _step_index(sig)
    return sig, lambda sigma, sigma_next: z[:, idx[float(sigma)]][:, None]


def _bootstrap_rms(err: np.ndarray, reps: int, rng) -> np.ndarray:
    """RMS over paths (axis 0) for ``reps`` bootstrap resamples of the paths: (reps, n_cols)."""
    idx = rng.integers(0, err.shape[0], size=(reps, err.shape[0]))
    return np.sqrt(np.mean(err[idx] ** 2, axis=1))


def strong_errors(
    ns=(10, 20, 40, 80, 160, 320),
    variants=(ER1,) + MAIN_VARIANTS,
    nsfs=("ode", "er_sde_2", "er_sde_5", "sde"),
    *,
    data: GaussianData = GaussianData(),
    n_paths: int = 2000,
    seed: int = 0,
    fit_window=(20, 320),
    boot: int = 400,
) -> dict:
    """RMS end-point error against the exact coupled solution on nested Karras grids (finest = max(ns)),
    with 95 % bootstrap intervals over paths for the RMS and the fitted order.

    The order is fitted over the finest window with N ≥ ``fit_window[0]`` (and ≤ ``fit_window[1]``) where the
    RMS decreases and the paths' errors keep their sign from one N to the next (mean ⟨e_j, e_{j+1}⟩ > 0); its
    interval resamples paths; for a noise-free NSF (errors deterministic given x_T) the order is the extrapolated
    one of eq. (50) over the finest window of all N where the RMS decreases and keeps its sign."""
    ns = sorted(ns)
    n_fine = ns[-1]
    if any(n_fine % n for n in ns):
        raise ValueError(f"every N must divide the finest N={n_fine} (nested grids), got {ns}")
    sig_fine = steps(n_fine, "karras")
    rng = np.random.default_rng(seed)
    in_range = (np.asarray(ns) >= fit_window[0]) & (np.asarray(ns) <= fit_window[1])
    out = dict(ns=ns, n_paths=n_paths, data=asdict(data), fit_range=list(fit_window), nsfs={})
    for nsf in nsfs:
        x0, xi, x_ref = coupled_paths(sig_fine, nsf, data, n_paths, seed)
        deterministic = not np.any(xi)
        rows = {}
        for v in variants:
            err = np.empty((n_paths, len(ns)))
            for c, n in enumerate(ns):
                sig, sampler = coarse_noise_sampler(sig_fine, xi, nsf, n_fine // n)
                xs = run_variant(v, data.model, x0.clone(), sig, nsf=nsf, noise_sampler=sampler)
                err[:, c] = xs[:, 0].numpy() - x_ref
            rms = np.sqrt(np.mean(err**2, axis=0))
            bs = _bootstrap_rms(err, boot, rng)
            same = keeps_sign(path_errors=err.T)
            mask = asymptotic_window(ns, rms, same_sign=same, resolved=None if deterministic else in_range)
            idx = np.flatnonzero(mask)
            extra = {}
            if deterministic:  # no sampling error: eq. (50) over the finest window, without the fit range
                a = asymptotic_order(ns, rms, mask=mask)
                order, ci, extra = a["order"], a["ci"], dict(pairwise_window=a["pairwise"], reason=a["reason"])
            elif idx.size < 3:
                order, ci = None, [None, None]
            else:
                order = fit_order(np.asarray(ns)[idx], rms[idx])
                ci = percentile_interval([fit_order(np.asarray(ns)[idx], b[idx]) for b in bs]).tolist()
            rows[v.label] = dict(
                rms=rms.tolist(),
                rms_ci=percentile_interval(bs, axis=0).T.tolist(),
                pairwise=pairwise_orders(ns, rms),
                fit_window=[ns[idx[0]], ns[idx[-1]]],
                fitted_order=order,
                fitted_order_ci=ci,
                ci_kind="extrapolated bound (eq. 50)" if deterministic else "bootstrap over paths",
                **extra,
            )
        out["nsfs"][nsf] = rows
    return out


# ----- 4. quality per NFE on the mixtures ------------------------------------------------------------------
def nfe_quality(
    problems=("ring_2d", "image_like_64d"),
    nfes=(5, 10, 20, 50),
    nsfs=("ode", "er_sde_5", "sde"),
    variants=MAIN_VARIANTS,
    *,
    n_samples=None,
    seeds: int = 8,
) -> dict:
    """FD (eq. 31) to the exact moments per (problem, NSF, NFE, variant): mean ± 95 % t-half-width (eq. 33)
    over ``seeds``, the same for FD_∞ (eq. 52, each seed's n samples extrapolated to n = ∞; key "FD_∞ <variant>"),
    the paired difference corrected − published (FD), and the FD noise floor (eq. 32) at the same sample size.

    Karras ρ = 7 steps 80 → 0.002 then 0 (NFE = steps); x_T are exact samples of the mixture at σ_max and
    every variant of one seed uses the same x_T and the same noise generator seed.
    """
    n_samples = n_samples or {"ring_2d": 10000, "image_like_64d": 2000}
    out = dict(nfes=list(nfes), seeds=seeds, n_samples=dict(n_samples), problems={})
    for prob in problems:
        gm = get_problem(prob)
        n = n_samples[prob]
        mean, cov = gm.mean().numpy(), gm.cov().numpy()
        floor = fd_noise_floor(gm, n, reps=max(seeds, 5))
        res = {}
        for nsf in nsfs:
            for nfe in nfes:
                sig = get_sigmas_karras(nfe, SIGMA_MIN, SIGMA_MAX)
                fd, inf = {v.label: [] for v in variants}, {v.label: [] for v in variants}
                for sd in range(seeds):
                    x_t = gm.sample(n, torch.Generator().manual_seed(1000 + sd), sigma=SIGMA_MAX)
                    for v in variants:
                        g = torch.Generator().manual_seed(2000 + sd)
                        xs = sample_er_sde(
                            gm,
                            x_t.clone(),
                            sig,
                            order=v.order,
                            nsf=nsf,
                            derivatives=v.derivatives,
                            generator=g,
                            disable=True,
                        )
                        fd[v.label].append(frechet_to_moments(xs, mean, cov))
                        inf[v.label].append(frechet_infinity(xs, mean, cov))
                row = {lab: t_interval(vals) for lab, vals in fd.items()}
                row.update({f"FD_∞ {lab}": t_interval(vals) for lab, vals in inf.items()})
                if ER3_PUB.label in fd and ER3_COR.label in fd:
                    row["diff corrected - published"] = paired_t_interval(fd[ER3_COR.label], fd[ER3_PUB.label])
                res[f"{nsf}/{nfe}"] = row
        out["problems"][prob] = dict(noise_floor=floor, results=res)
    return out


# ----- the figure's data ----------------------------------------------------------------------------------
def order_panel_data(
    ode_ns=(10, 20, 40, 80, 160, 320, 640, 1280),
    weak_ns=(10, 20, 40, 80, 160, 320, 640),
    strong_ns=(10, 20, 40, 80, 160),
    n_paths: int = 300,
) -> dict:
    """The four order panels of the ``third_order`` figure: Karras and log-uniform ODE errors (φ = σ), the weak
    and the strong error with er_sde_5 (small sizes: 8 quantile states, 50 bootstrap resamples)."""
    variants = MAIN_VARIANTS + (ER3_COR_EULER,)
    return dict(
        ode_karras=ode_errors(ode_ns, variants, fit_windows=(), n_points=8),
        ode_loguniform=ode_errors(
            ode_ns, variants, schedule="loguniform", sigma_min=0.02, sigma_max=2.0, fit_windows=(), n_points=8
        ),
        weak=weak_errors(weak_ns, MAIN_VARIANTS, ("er_sde_5",), fit_windows=()),
        strong=strong_errors(
            strong_ns,
            (ER1,) + MAIN_VARIANTS,
            ("er_sde_5",),
            n_paths=n_paths,
            fit_window=(strong_ns[0], strong_ns[-1]),
            boot=50,
        ),
    )


# ----- report --------------------------------------------------------------------------------------------
PRESETS = {
    "quick": dict(
        ode_ns=(10, 20, 40, 80, 160),
        weak_ns=(10, 20, 40, 80, 160),
        strong_ns=(10, 20, 40, 80),
        n_paths=200,
        nfes=(5, 10, 20),
        seeds=3,
        n_samples={"ring_2d": 2000, "image_like_64d": 500},
    ),
    "default": dict(
        ode_ns=(10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120),
        weak_ns=(10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120),
        strong_ns=(10, 20, 40, 80, 160, 320),
        n_paths=2000,
        nfes=(5, 10, 20, 50),
        seeds=8,
        n_samples={"ring_2d": 10000, "image_like_64d": 2000},
    ),
    "full": dict(
        ode_ns=(10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240),
        weak_ns=(10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120),
        strong_ns=(10, 20, 40, 80, 160, 320, 640),
        n_paths=8000,
        nfes=(5, 10, 20, 50),
        seeds=16,
        n_samples={"ring_2d": 20000, "image_like_64d": 4000},
    ),
}


def _fmt(x: float) -> str:
    return f"{x:.2e}"


def _signed(x: float, sign: float) -> str:
    return ("−" if sign < 0 else "+") + _fmt(x)


def _order(p) -> str:
    return "–" if p is None else f"{p:.2f}"


def _asym(a: dict) -> str:
    """The asymptotic order as 'p̂ [lo, hi] (N=a–b)' (eq. 50), or, where it has no interval, '– (N=a–b; pairwise
    p, p, …)': the window's pairwise orders."""
    win = f"N={a['window'][0]}–{a['window'][1]}"
    if a["order"] is None:
        pw = (a.get("pairwise") or [])[-(EXTRAPOLATION_POINTS - 1) :]
        return f"– ({win}" + (("; pairwise " + ", ".join(f"{p:.2f}" for p in pw)) if pw else "") + ")"
    lo, hi = a["ci"]
    digits = 3 if hi - lo < 0.02 else 2
    return f"{a['order']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}] ({win})"


def _order_head(first: list[str], ns, windows) -> list[str]:
    """The columns ``first``, one per N, one order per fit window and the asymptotic-window order."""
    return [*first, *(f"N={n}" for n in ns), *(f"order N={w}" for w in windows), "asymptotic order [bound] (window)"]


def _nsf_rows(nsfs: dict, cells) -> list[list]:
    """One table row per (NSF, variant) of ``nsfs`` = {nsf: {variant: result}}: [nsf, variant, *cells(result)]."""
    return [[nsf, lab, *cells(r)] for nsf, rows in nsfs.items() for lab, r in rows.items()]


def markdown_report(res: dict) -> str:
    """Markdown tables of a :func:`run_benchmark` result."""
    lines = [
        "# ER-SDE-Solver-3: published vs corrected",
        "",
        "Orders (eq. 34): '–' where the error changes sign or does not decrease inside a window (no order "
        "there). The asymptotic order of these deterministic errors (eq. 50) is the Aitken extrapolation of the "
        "pairwise orders over the finest run of N where the error keeps its sign and decreases, with a bound "
        "from their trend; where the pairwise orders are not yet converging geometrically there is no bound, "
        "and the window's pairwise orders are shown instead.",
        "",
    ]
    for key in ("ode_karras", "ode_loguniform"):
        d = res[key]
        wins = list(next(iter(d["variants"].values()))["fitted_orders"])
        lines += [
            f"## Max end-point error, φ = σ, {d['schedule']} {d['sigma_max']:g} → {d['sigma_min']:g}, "
            f"no final 0 (N({d['data']['m']}, {d['data']['s0']}²) data; sign of the error at the largest "
            "initial state)",
            "",
            *markdown_table(
                _order_head(["variant"], d["ns"], wins),
                [
                    [lab, *(_signed(e, sg) for e, sg in zip(r["max_error"], r["sign"]))]
                    + [_order(r["fitted_orders"][w]) for w in wins]
                    + [_asym(r["asymptotic"])]
                    for lab, r in d["variants"].items()
                ],
            ),
            "",
        ]
    w = res["weak"]
    wins = list(next(iter(next(iter(w["nsfs"].values())).values()))["fitted_orders"])
    lines += [
        "## Weak error std(x_N) − std_exact (exact moments, no sampling), Karras 80 → 0.002, no final 0",
        "",
        *markdown_table(
            _order_head(["NSF", "variant"], w["ns"], wins),
            _nsf_rows(
                w["nsfs"],
                lambda r: (
                    [*(_signed(e, sg) for e, sg in zip(r["std_error"], r["sign"]))]
                    + [_order(r["fitted_orders"][x]) for x in wins]
                    + [_asym(r["asymptotic"])]
                ),
            ),
        ),
    ]
    s = res["strong"]
    lines += [
        "",
        f"## Strong RMS error vs exact coupled solution ({s['n_paths']} paths, Karras, nested grids), "
        f"order fitted over the finest window in N={s['fit_range'][0]}…{s['fit_range'][1]} where the RMS "
        "decreases and the paths' errors keep their sign; 95 % CI: bootstrap over paths (for the noise-free "
        "`ode`: the extrapolated order and bound of eq. (50) over all N)",
        "",
        *markdown_table(
            ["NSF", "variant", *(f"N={n}" for n in s["ns"]), "order [CI] (window)"],
            _nsf_rows(
                s["nsfs"],
                lambda r: (
                    [*(_fmt(e) for e in r["rms"])]
                    + [
                        _asym(
                            dict(
                                order=r["fitted_order"],
                                ci=r["fitted_order_ci"],
                                window=r["fit_window"],
                                pairwise=r.get("pairwise_window"),
                            )
                        )
                    ]
                ),
            ),
        ),
    ]
    q = res["nfe"]
    lines += [
        "",
        f"## FD to exact moments per NFE (exact denoiser, Karras + final 0, mean ± 95 % t-CI over "
        f"{q['seeds']} seeds; FD_∞: extrapolated to n = ∞ (docs/theory.md eq. 52), an interval for the true distance; "
        "diff = corrected − published, paired)",
        "",
    ]
    for prob, d in q["problems"].items():
        fl = d["noise_floor"]
        lines += [f"### {prob} (n = {q['n_samples'][prob]}, FD noise floor {fl[0]:.3g} ± {fl[1]:.2g})", ""]
        labels = [k for k in next(iter(d["results"].values()))]
        lines += markdown_table(
            ["NSF", "NFE", *labels],
            [
                [*key.split("/"), *(f"{row[k][0]:.4g} ± {row[k][1]:.2g}" for k in labels)]
                for key, row in d["results"].items()
            ],
        )
        lines.append("")
    lines.append(f"Preset {res['preset']}.")
    return "\n".join(lines) + "\n"


def run_benchmark(outdir="figures", preset: str = "default", log=print) -> dict:
    """All four studies at ``preset`` sizes; writes ``third_order.json`` and ``third_order.md`` in ``outdir``."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {tuple(PRESETS)}")
    p = PRESETS[preset]
    t0 = time.perf_counter()
    res = dict(preset=preset)
    variants = MAIN_VARIANTS + (ER3_COR_EULER,)
    res["ode_karras"] = ode_errors(p["ode_ns"], variants, fit_windows=((20, 160), (640, 5120), (1280, 10240)))
    res["ode_loguniform"] = ode_errors(
        p["ode_ns"],
        variants,
        schedule="loguniform",
        sigma_min=0.02,
        sigma_max=2.0,
        fit_windows=((40, 320), (640, 5120)),
    )
    log(f"[{time.perf_counter() - t0:6.1f}s] deterministic orders")
    res["weak"] = weak_errors(p["weak_ns"], fit_windows=((20, 160), (320, 2560)))
    log(f"[{time.perf_counter() - t0:6.1f}s] weak orders")
    res["strong"] = strong_errors(p["strong_ns"], n_paths=p["n_paths"], fit_window=(20, min(160, max(p["strong_ns"]))))
    log(f"[{time.perf_counter() - t0:6.1f}s] strong orders")
    res["nfe"] = nfe_quality(nfes=p["nfes"], seeds=p["seeds"], n_samples=p["n_samples"])
    log(f"[{time.perf_counter() - t0:6.1f}s] quality per NFE")
    res["seconds"] = time.perf_counter() - t0
    write_report(outdir, "third_order", res, markdown_report(res))
    return res
