"""References layer, coupled noise (references/brownian.py): one Brownian path gives every step's noise ξ on
every sub-grid with the exact variance (docs/theory.md eq. (8)) and the composition rule (eq. (10)), jointly
with the Brownian increments; with it the solver is exact on a point mass on every sub-grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from ersde_theory.coefficients.ersde import ersde_coefficients
from ersde_theory.references.brownian import BrownianPath, CoupledNoise
from ersde_theory.solvers.ersde import sample_er_sde
from ersde_theory.theory.nsf import power_nsf
from tests.helpers import karras, point_mass

NSFS = ["sde", "er_sde_2", "er_sde_5", power_nsf(1.1)]

pytestmark = pytest.mark.usefixtures("one_thread")


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


def test_solver_coupling_exact():
    """On δ_c, ER-SDE-k with exact coefficients is exact on every sub-grid: its end point equals
    r x_0 + (1 − r) c + ξ[0, n] built from the fine path, to rounding."""
    sig = karras(256)
    M, c = 64, 0.7
    _, model = point_mass(c)
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
