"""References layer, reference integrators (references/integrator.py): SRA1 on the ER SDE in τ = log(σ_max/σ)
(docs/theory.md eq. (11)) converges to the exact coupled solution on a point mass and self-converges at strong
order 1.5; the DOP853 probability-flow ODE reference is self-consistent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ersde_theory.coefficients.ersde import ersde_coefficients
from ersde_theory.references.brownian import BrownianPath, CoupledNoise
from ersde_theory.references.integrator import integrate_pf_ode, integrate_sra
from ersde_theory.toys.problems import bimodal_1d
from tests.helpers import karras, point_mass

pytestmark = pytest.mark.usefixtures("one_thread")


def test_reference_converges_to_exact_coupled_solution():
    """SRA1 reads only (ΔW, I10) of the path; on δ_c (linear drift: strong order 2) it converges to the exact
    solution built from the step noise ξ of the same path. An independent path would give an O(1) error."""
    sig = karras(1024)
    M, c = 500, 0.7
    score, _ = point_mass(c)
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
