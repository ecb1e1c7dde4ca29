"""The one step plan (solvers/plan.py, docs/theory.md eqs. (26)–(28), (36)–(40)): a VE schedule is the VP one with
α ≡ 1, so ``step_plan`` and ``vp_step_coefficients`` give the same numbers there; the samplers give the same samples
with a precomputed plan as without, and refuse a plan of another schedule; the third-order start sits on the
second step that moves."""

import numpy as np
import pytest
import torch

from ersde_theory import get_flow_schedule, get_sigmas_karras, ring_2d, sample_er_sde, sample_er_sde_vp
from ersde_theory.solvers.plan import step_plan, vp_step_coefficients
from ersde_theory.toys.flow import flow_velocity


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("derivatives", ["published", "corrected"])
@pytest.mark.parametrize("nsf", ["er_sde_5", "ode", "sde"])
def test_ve_plan_is_the_vp_plan_with_alpha_one(order, derivatives, nsf):
    sigmas = get_sigmas_karras(12, 0.002, 80.0)
    ve = step_plan(sigmas, nsf, order=order, derivatives=derivatives)
    vp = vp_step_coefficients(np.ones(sigmas.numel()), sigmas, nsf, order=order, derivatives=derivatives)
    for name in ("gain", "weights", "noise_std", "lambdas"):
        np.testing.assert_array_equal(getattr(ve, name), getattr(vp, name), err_msg=name)
    assert (ve.start_step, ve.start_weight) == (vp.start_step, vp.start_weight)
    assert ve.start_step == (1 if derivatives == "corrected" and order == 3 else -1)
    # the last step returns α_N D = D, the first step's gain is r_0 = φ_1/φ_0 (eq. (27))
    assert tuple(ve.weights[-1]) == (1.0, 0.0, 0.0) and ve.gain[-1] == 0.0
    np.testing.assert_allclose(ve.gain[0], ve.ve.r[0], rtol=0, atol=0)


def test_the_start_waits_for_the_second_step_that_moves():
    """A repeated σ is a zero-length step: the corrected start (eq. (26)) goes on the next step that moves, with
    the weight C_1(σ_0, σ_1)/(σ_1 − σ_0) of the first step that moved."""
    sig = torch.tensor([80.0, 20.0, 20.0, 5.0, 1.0, 0.0], dtype=torch.float64)
    p = step_plan(sig, "ode", derivatives="corrected")
    assert p.start_step == 2 and list(p.moves) == [True, False, True, True, True]
    assert p.start_weight == pytest.approx(p.ve.c1[0] / (20.0 - 80.0), rel=1e-15)
    assert not p.weights[1].any() and p.gain[1] == 0.0  # never used: x stays


def test_samplers_take_a_precomputed_plan_and_refuse_one_of_another_schedule():
    gm = ring_2d()
    sig = get_sigmas_karras(8, 0.002, 80.0)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    x = 80.0 * torch.randn(16, 2, generator=g(), dtype=torch.float64)
    plan = step_plan(sig, "er_sde_5", derivatives="corrected")
    a = sample_er_sde(gm, x, sig, derivatives="corrected", generator=g(), disable=True)
    b = sample_er_sde(gm, x, sig, plan=plan, generator=g(), disable=True)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="another schedule"):
        sample_er_sde(gm, x, get_sigmas_karras(9, 0.002, 80.0), plan=plan, disable=True)

    al, s, _ = get_flow_schedule(8, shift=3.0)
    vel = flow_velocity(gm)
    z = torch.randn(16, 2, generator=g(), dtype=torch.float64)
    vplan = vp_step_coefficients(al, s, "er_sde_5")
    a = sample_er_sde_vp(vel, z, al, s, prediction="flow", generator=g(), disable=True)
    b = sample_er_sde_vp(vel, z, al, s, prediction="flow", plan=vplan, generator=g(), disable=True)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="another schedule"):
        sample_er_sde_vp(vel, z, *get_flow_schedule(8, shift=1.0)[:2], prediction="flow", plan=vplan, disable=True)
    with pytest.raises(ValueError, match="StepPlan"):
        sample_er_sde(gm, x, sig, plan="not a plan", disable=True)
