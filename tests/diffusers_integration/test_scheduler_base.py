"""What ERSDEScheduler and FlowMatchERSDEScheduler share (diffusers_integration/schedulers.py): one timestep look-up
(float32 copies match, a repeated timestep gives its second index, anything else is refused), one generator rule
(``step(generator=…)``, else ``scheduler.generator``), one begin-index check, one rule for a start mid-schedule."""

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
from ersde_theory.diffusers_integration import ERSDEScheduler, FlowMatchERSDEScheduler  # noqa: E402
from ersde_theory.diffusers_integration.schedulers import _ERSDESchedulerBase  # noqa: E402

SHAPE = (3, 2, 4, 4)


def _schedulers():
    vp, flow = ERSDEScheduler(continuous_timesteps="logsnr"), FlowMatchERSDEScheduler(shift=3.0)
    vp.set_timesteps(8)
    flow.set_timesteps(8)
    return vp, flow


def _model():
    """A smooth stand-in model output (read as ε by the VP scheduler, as a velocity by the flow one)."""
    return lambda x, t: torch.tanh(x) * (0.5 + float(t) / 1000.0)


def _run(sched, x, generator=None):
    model = _model()
    for t in sched.timesteps:
        x = sched.step(model(x, t), t, x, generator=generator).prev_sample
    return x


def test_both_schedulers_are_one_base():
    for cls in (ERSDEScheduler, FlowMatchERSDEScheduler):
        assert issubclass(cls, _ERSDESchedulerBase)
        for name in ("step", "index_for_timestep", "set_begin_index", "_start_run"):
            assert getattr(cls, name) is getattr(_ERSDESchedulerBase, name), (cls, name)


@pytest.mark.parametrize("which", [0, 1])
def test_one_timestep_lookup(which):
    sched = _schedulers()[which]
    ts = sched.timesteps
    for k in (0, 3, len(ts) - 1):
        t32 = torch.tensor(float(ts[k]), dtype=torch.float32)
        assert sched.index_for_timestep(t32) == k  # a float32 copy matches
        assert sched.index_for_timestep(ts[k : k + 1]) == k
    off = float(ts[3]) * (1 + 1e-4) + 1e-3
    with pytest.raises(ValueError, match="not in the scheduler's timesteps"):
        sched.index_for_timestep(off)
    repeated = torch.tensor([900.0, 500.0, 500.0, 100.0])
    assert sched.index_for_timestep(500.0, repeated) == 2  # the second of a repeated timestep, as diffusers


@pytest.mark.parametrize("which", [0, 1])
def test_one_generator_rule(which):
    """With no generator given to step(), the attribute ``generator`` draws the noise (one per sample here)."""
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    gens = lambda: [torch.Generator().manual_seed(10 + b) for b in range(SHAPE[0])]  # noqa: E731
    a_sched, b_sched = (_schedulers()[which] for _ in range(2))
    a = _run(a_sched, x, generator=gens())
    b_sched.generator = gens()
    b = _run(b_sched, x)
    assert torch.equal(a, b)
    c_sched = _schedulers()[which]
    c_sched.generator = [torch.Generator().manual_seed(99 + b) for b in range(SHAPE[0])]
    assert not torch.equal(a, _run(c_sched, x))  # the stored generator is really used


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("bad", [-1, 8, 1.5, True])
def test_one_begin_index_check(which, bad):
    sched = _schedulers()[which]
    with pytest.raises(ValueError, match="begin_index"):
        sched.set_begin_index(bad)


@pytest.mark.parametrize("which", [0, 1])
def test_a_start_mid_schedule_by_begin_index_or_by_timestep_is_the_same_run(which):
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    model = _model()
    runs = []
    for how in ("begin_index", "timestep"):
        sched = _schedulers()[which]
        if how == "begin_index":
            sched.set_begin_index(3)
        y = x.clone()
        for t in sched.timesteps[3:]:
            y = sched.step(model(y, t), t, y, generator=torch.Generator().manual_seed(7)).prev_sample
        runs.append(y)
        assert sched.step_index == len(sched.timesteps)
        # the run from step 3 is a fresh plan on the rest of the schedule
        np.testing.assert_array_equal(sched._run.sigmas, sched._coeffs.sigmas[3:])
    assert torch.equal(*runs)


@pytest.mark.parametrize("which", [0, 1])
def test_the_timestep_is_checked_on_every_step(which):
    sched = _schedulers()[which]
    x = torch.zeros(SHAPE, dtype=torch.float64)
    ts = sched.timesteps
    for t in ts[:2]:
        x = sched.step(torch.zeros_like(x), t, x).prev_sample
    with pytest.raises(ValueError, match="step 2 is at timestep"):
        sched.step(torch.zeros_like(x), ts[3], x)  # skips a step
    with pytest.raises(ValueError, match="step 2 is at timestep"):
        sched.step(torch.zeros_like(x), float(ts[2]) + 7.0, x)


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("generator, match", [(5, "got int"), ("abc", "got str"), ([torch.Generator()] * 3, "repeats")])
def test_a_bad_generator_is_named(which, generator, match):
    sched = _schedulers()[which]
    x = torch.zeros(SHAPE, dtype=torch.float64)
    with pytest.raises(ValueError, match=f"generator.*{match}|{match}.*generator"):
        sched.step(torch.zeros_like(x), sched.timesteps[0], x, generator=generator)


def test_add_noise_follows_diffusers_rule():
    """No begin index: noise at the timesteps given, also after step() (diffusers' DPMSolverMultistepScheduler does
    the same); with a begin index: at the current step. A timestep outside [0, T − 1] is refused."""
    from diffusers import DPMSolverMultistepScheduler

    ours, dpm = ERSDEScheduler(), DPMSolverMultistepScheduler()
    for s in (ours, dpm):
        s.set_timesteps(10)
    x0 = torch.randn(SHAPE, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z = torch.randn(SHAPE, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    t = ours.timesteps[[1, 4, 6]]
    y = torch.zeros(SHAPE, dtype=torch.float64)
    for s in (ours, dpm):
        s.step(torch.zeros_like(y), s.timesteps[0], y)  # one step taken, no begin index
    torch.testing.assert_close(ours.add_noise(x0, z, t), dpm.add_noise(x0, z, t), rtol=1e-5, atol=1e-5)
    a = ours._coeffs.alphas[[1, 4, 6]]
    want = (
        torch.from_numpy(a).reshape(-1, 1, 1, 1) * x0
        + torch.from_numpy(ours._coeffs.sigmas[[1, 4, 6]]).reshape(-1, 1, 1, 1) * z
    )
    torch.testing.assert_close(ours.add_noise(x0, z, t), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"add_noise timesteps must lie in \[0, 999\]"):
        ours.add_noise(x0, z, torch.tensor([5, 1000, 7]))


def test_config_errors_and_unsupported_features():
    import logging as pylogging

    from diffusers.utils import logging

    with pytest.raises(ValueError, match="num_train_timesteps"):
        ERSDEScheduler(num_train_timesteps=0)
    records = []
    handler = pylogging.Handler()
    handler.emit = records.append
    log = logging.get_logger("diffusers.schedulers.ersde")
    log.addHandler(handler)
    try:
        ERSDEScheduler.from_config({"thresholding": True, "clip_sample": True, "beta_schedule": "linear"})
        FlowMatchERSDEScheduler.from_config({"stochastic_sampling": True})
        ERSDEScheduler.from_config({"thresholding": False})
    finally:
        log.removeHandler(handler)
    msgs = [r.getMessage() for r in records]
    assert len(msgs) == 2 and "thresholding=True" in msgs[0] and "stochastic_sampling=True" in msgs[1], msgs


def test_flow_timesteps_are_diffusers_float32_values():
    from diffusers import FlowMatchEulerDiscreteScheduler

    for kw, mu in ((dict(shift=3.0), None), (dict(use_dynamic_shifting=True), 0.9)):
        ours, theirs = FlowMatchERSDEScheduler(**kw), FlowMatchEulerDiscreteScheduler(**kw)
        ours.set_timesteps(28, mu=mu)
        theirs.set_timesteps(28, mu=mu)
        assert torch.equal(ours.timesteps, theirs.timesteps) and torch.equal(ours.sigmas.float(), theirs.sigmas)


def test_a_saturating_beta_schedule_is_named():
    with pytest.raises(
        ValueError, match=r"not distinct: alphas_cumprod falls below float64 resolution .*\(0\.5, 0\.1\)"
    ):
        ERSDEScheduler(beta_start=0.5, beta_end=0.1).set_timesteps(4)
