"""Coupled noise, reference integrators and measured convergence orders (docs/theory.md eq. 34)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from ersde_theory.coefficients.ersde import ersde_coefficients
from ersde_theory.coefficients.schedules import get_sigmas_karras
from ersde_theory.plots.convergence import write_outputs
from ersde_theory.references.brownian import BrownianPath, CoupledNoise
from ersde_theory.references.integrator import integrate_pf_ode, integrate_sra
from ersde_theory.solvers.ersde import sample_er_sde
from ersde_theory.studies.convergence import ConvergenceConfig, order_with_ci, run_study, weak_test_functions
from ersde_theory.theory.nsf import power_nsf
from ersde_theory.toys.problems import bimodal_1d

NSFS = ["sde", "er_sde_2", "er_sde_5", power_nsf(1.1)]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead on a shared 2-core machine
    yield
    torch.set_num_threads(n)


def karras(n, smin=0.002, smax=80.0):
    """n intervals from smax to smin, no final 0."""
    return get_sigmas_karras(n + 1, smin, smax, final_zero=False).numpy()


# ---------------------------------------------------------------- coupled noise: variance identity, composition
@pytest.mark.parametrize("nsf", NSFS, ids=lambda n: getattr(n, "name", n))
def test_variance_identity(nsf):
    """Kernel quadrature c0² + c1² + ρ² = σ_t² − σ_s² r² per fine step, and the composed variance of every
    sub-grid equals the closed form of the coefficient module."""
    sig = karras(256)
    noise = CoupledNoise(BrownianPath(sig, (3, 1)), nsf)
    np.testing.assert_allclose(noise.kernel_variance(), noise.var_fine, rtol=1e-12)
    for stride in (2, 8, 64):
        sub = ersde_coefficients(sig[::stride], nsf).noise_std ** 2
        comp = [noise.variance(i, i + stride) for i in range(0, 256, stride)]
        np.testing.assert_allclose(comp, sub, rtol=1e-12)


def test_composition_and_ladder_exact():
    sig = karras(128)
    noise = CoupledNoise(BrownianPath(sig, (5, 2), seed=3, block=7), "er_sde_5")
    r = ersde_coefficients(sig[[40, 64, 100]], "er_sde_5").r
    composed = r[1] * noise.xi(40, 64) + noise.xi(64, 100)  # ξ[s,t] = r(m,t) ξ[s,m] + ξ[m,t]
    torch.testing.assert_close(composed, noise.xi(40, 100), rtol=1e-13, atol=1e-15)
    direct = {k: [noise.xi(i, i + k) for i in range(0, 128, k)] for k in (4, 16, 64)}
    noise.precompute([4, 16, 64])
    sampler = noise.sampler()
    for k, xs in direct.items():
        for c, xi in enumerate(xs):
            z = sampler(sig[c * k], sig[(c + 1) * k])
            torch.testing.assert_close(z * math.sqrt(noise.variance(c * k, (c + 1) * k)), xi, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="not a point"):
        sampler(sig[0] * 0.999, sig[4])


def test_joint_law_of_increment_and_step_noise():
    """Monte Carlo: Var ξ and Cov(ΔW, ξ) over a coarse step match independent quadratures of the kernel
    (scipy.quad), i.e. ξ and the Brownian increments are functionals of one path."""
    sig = karras(64, 0.1, 10.0)
    M = 40_000
    path = BrownianPath(sig, (M,), seed=11)
    noise = CoupledNoise(path, "sde")
    i0, i1 = 10, 26
    xi = noise.xi(i0, i1)
    dw, _ = path.coarse_increments(i0, i1)
    t0, t1 = path.tau[i0], path.tau[i1]
    f = lambda tau: float(noise.kernel(sig[i1], sig[0] * np.exp(-tau)))  # noqa: E731
    var = quad(lambda u: f(u) ** 2, t0, t1, epsabs=0, epsrel=1e-12)[0]
    cov = quad(f, t0, t1, epsabs=0, epsrel=1e-12)[0]
    se_var = var * math.sqrt(2 / M)
    se_cov = math.sqrt(var * (t1 - t0) / M)
    assert abs(float(xi.var()) - var) < 4 * se_var
    assert abs(float((xi * dw).mean()) - cov) < 4 * se_cov
    assert abs(var - noise.variance(i0, i1)) < 1e-10 * var


def _point_mass(c):
    """Data = δ_c: x_θ ≡ c, score (c − x)/σ². The ER SDE is then linear with the exact solution
    x_t = r x_s + (1 − r) c + ξ[s, t]."""
    return (lambda x, sigma: (c - x) / sigma**2), (lambda x, sigma: torch.full_like(x, c))


def test_solver_coupling_exact():
    """On δ_c, ER-SDE-k with exact coefficients is exact on every sub-grid: its end point equals
    r x_0 + (1 − r) c + ξ[0, n] built from the fine path, to rounding."""
    sig = karras(256)
    M, c = 64, 0.7
    _, model = _point_mass(c)
    for nsf in ("sde", "er_sde_5"):
        noise = CoupledNoise(BrownianPath(sig, (M, 1), seed=2), nsf)
        x0 = 80 * torch.randn(M, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        r = ersde_coefficients(sig[[0, -1]], nsf).r[0]
        exact = r * x0 + (1 - r) * c + noise.xi(0, 256)
        for stride, order in ((1, 1), (8, 2), (64, 3)):
            out = sample_er_sde(
                model, x0.clone(), sig[::stride], order=order, nsf=nsf, noise_sampler=noise.sampler(), disable=True
            )
            torch.testing.assert_close(out, exact, rtol=0, atol=1e-11)


def test_reference_converges_to_exact_coupled_solution():
    """SRA1 reads only (ΔW, I10) of the path; on δ_c (linear drift: strong order 2) it converges to the exact
    solution built from the step noise ξ of the same path. An independent path would give an O(1) error."""
    sig = karras(1024)
    M, c = 500, 0.7
    score, _ = _point_mass(c)
    path = BrownianPath(sig, (M, 1), seed=4)
    noise = CoupledNoise(path, "er_sde_3")
    x0 = 80 * torch.randn(M, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    r = ersde_coefficients(sig[[0, -1]], "er_sde_3").r[0]
    exact = r * x0 + (1 - r) * c + noise.xi(0, 1024)
    strides = np.array([1, 2, 4, 8])
    err = np.array(
        [float(((integrate_sra(score, "er_sde_3", x0, path, k) - exact) ** 2).mean().sqrt()) for k in strides]
    )
    order = np.polyfit(np.log(strides), np.log(err), 1)[0]
    assert 1.7 <= order <= 2.3, (order, err)
    assert err[0] < 1e-3 * float(noise.xi(0, 1024).std())


def test_reference_self_convergence_order():
    """SRA1 is strong order 1.5: self-convergence on a drift with large b² a_xx (a = −sin x, h̃² = 1.5)."""
    sig = np.geomspace(2.0, 0.5, 1025)
    M = 1000
    path = BrownianPath(sig, (M, 1), seed=5)
    score = lambda x, s: -torch.sin(x) / (2.5 * s**2)  # noqa: E731   (1 + h̃²) σ² score = −sin x
    x0 = 2 * torch.randn(M, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    fine = integrate_sra(score, "er_sde_3", x0, path, 1)
    strides = np.array([2, 4, 8, 16, 32])
    err = np.array(
        [float(((integrate_sra(score, "er_sde_3", x0, path, k) - fine) ** 2).mean().sqrt()) for k in strides]
    )
    order = np.polyfit(np.log(strides), np.log(err), 1)[0]
    assert abs(order - 1.5) <= 0.3, (order, err)


def test_pf_ode_reference_self_consistent():
    gm = bimodal_1d()
    x0 = gm.sample(300, torch.Generator().manual_seed(0), sigma=80.0)
    a = integrate_pf_ode(gm.score, x0, 80.0, 0.002)
    b = integrate_pf_ode(gm.score, x0, 80.0, 0.002, rtol=1e-10, atol=1e-10)
    assert float((a - b).abs().max()) < 1e-8
    assert float((a - b).abs().max()) > 0  # the looser run is a different computation


# ---------------------------------------------------------------- measured orders
def _ode_errors(order, derivatives, steps=(16, 32, 64, 128, 256), M=100):
    gm = bimodal_1d()
    sig = karras(max(steps))
    x0 = gm.sample(M, torch.Generator().manual_seed(0), sigma=80.0)
    ref = integrate_pf_ode(gm.score, x0, sig[0], sig[-1])
    sq = torch.stack(
        [
            (
                (
                    sample_er_sde(
                        gm,
                        x0.clone(),
                        sig[:: max(steps) // n],
                        order=order,
                        nsf="ode",
                        derivatives=derivatives,
                        disable=True,
                    )
                    - ref
                )
                ** 2
            ).sum(-1)
            for n in steps
        ]
    )
    return steps, sq


@pytest.mark.parametrize(
    "order,derivatives,lo,hi", [(1, "published", 0.7, 1.3), (3, "published", 1.7, 2.3), (3, "corrected", 2.5, 3.5)]
)
def test_ode_strong_orders(order, derivatives, lo, hi):
    """φ = σ, exact coefficients, bimodal 1-D: ER-SDE-1 order 1 ± 0.3; ER-SDE-3 ≈ 2 with the published
    (midpoint) derivative, ≥ 2.5 with the corrected one (fit on the finest 4 of 16…256 steps)."""
    steps, sq = _ode_errors(order, derivatives)
    p, ci_lo, ci_hi = order_with_ci(steps, sq, "strong_rms", [False, True, True, True, True], bootstrap=200)
    assert lo <= p <= hi, (p, (sq.mean(-1).sqrt()).tolist())
    assert ci_lo <= p <= ci_hi


def test_karras_without_final_zero():
    for n in (1, 2, 9):
        full = get_sigmas_karras(n, 0.002, 80.0)
        assert torch.equal(get_sigmas_karras(n, 0.002, 80.0, final_zero=False), full[:-1]) and full[-1] == 0


def test_order_with_ci_recovers_slope():
    g = torch.Generator().manual_seed(0)
    steps = np.array([16, 32, 64, 128])
    base = torch.from_numpy(3.0 * steps.astype(float) ** -1.7)[:, None]
    sq = (base * (1 + 0.3 * torch.randn(4, 2000, generator=g, dtype=torch.float64))) ** 2
    p, lo, hi = order_with_ci(steps, sq, "strong_rms", [True] * 4, bootstrap=300)
    assert abs(p - 1.7) < 0.05 and lo < 1.7 < hi
    assert order_with_ci(steps, sq, "strong_rms", [True, True, False, False])[0] is None


def test_weak_error_at_fine_step():
    """Reverse SDE (φ = σ²), ER-SDE-2, 256 steps: E f(x_N) matches the exact mixture values within 3 Monte
    Carlo standard errors for the mean, the second moment and the mode indicator."""
    gm = bimodal_1d()
    M = 4000
    sig = karras(256)
    g = torch.Generator().manual_seed(7)
    x0 = gm.sample(M, g, sigma=80.0)
    out = sample_er_sde(gm, x0, sig, order=2, nsf="sde", generator=g, disable=True)
    for kind, (f, exact) in weak_test_functions(gm, float(sig[-1])).items():
        v = f(out)
        se = float(v.std()) / math.sqrt(M)
        assert abs(float(v.mean()) - exact) < 3 * se, (kind, float(v.mean()), exact, se)


def test_study_outputs(tmp_path):
    cfg = ConvergenceConfig(
        problems=("bimodal_1d",),
        nsfs=("sde",),
        quadratures=("exact", "official"),
        solvers=(("ER-SDE-1", 1, "published"),),
        steps=(8, 16, 32),
        paths=40,
        bootstrap=50,
        fit_min_steps=8,
    )
    res = run_study(cfg, log=lambda *a: None)
    paths = write_outputs(res, tmp_path)
    data = json.loads((tmp_path / "convergence_orders.json").read_text())
    kinds = {(e["quadrature"], e["error_kind"]) for e in data["entries"]}
    assert len(kinds) == 2 * 5 and all(len(e["errors"]) == 3 for e in data["entries"])
    ref = data["references"][0]
    assert ref["kind"] == "sra1" and ref["ratio_rms"] >= 10
    assert "| bimodal_1d | sde |" in (tmp_path / "convergence_orders.md").read_text()
    assert all(p.exists() for p in paths)
