"""Solvers layer, the callback of every sampler (SamplerOptions): once per step, in order, with the step's
σ_i and the state and denoiser output of the model call that step made, checked against the model's own
calls (recorded by a wrapper), VE and VP."""

from __future__ import annotations

import pytest
import torch

from ersde_theory import get_sigmas_karras, get_vp_schedule, ring_2d, sample_er_sde, sample_er_sde_vp
from ersde_theory.solvers.registry import solver_functions

GM = ring_2d()


class Recorder:
    """A model that records every call (input, σ, output)."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __call__(self, x, sigma, **kw):
        out = self.model(x, sigma, **kw)
        self.calls.append((x.clone(), sigma.clone(), out.clone()))
        return out


def _run(fn, sigmas, **kw):
    rec, seen = Recorder(GM), []
    x = 80.0 * torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fn(
        rec,
        x,
        sigmas,
        callback=lambda d: seen.append(dict(d)),
        generator=torch.Generator().manual_seed(1),
        disable=True,
        **kw,
    )
    return rec.calls, seen


@pytest.mark.parametrize("name", sorted(solver_functions()))
def test_callback_reports_the_steps_model_call(name):
    sigmas = get_sigmas_karras(7, 0.002, 80.0)
    kw = dict(order=3, nsf="er_sde_5") if name == "er_sde" else {}
    calls, seen = _run(solver_functions()[name].fn, sigmas, **kw)
    assert [d["i"] for d in seen] == list(range(len(sigmas) - 1))
    for d in seen:
        i = d["i"]
        assert float(d["sigma"]) == float(sigmas[i]), (name, i, float(d["sigma"]), float(sigmas[i]))
        match = [c for c in calls if torch.equal(c[0], d["x"]) and float(c[1][0]) == float(d["sigma_hat"])]
        assert match, f"{name}: step {i}: no model call at the reported state and σ̂"
        assert any(torch.equal(c[2], d["denoised"]) for c in match), f"{name}: step {i}: denoised is not the output"
    # the first call of step i is at σ_i (no churn): the i-th reported σ̂ is the σ of a call made at step i
    assert [float(d["sigma_hat"]) for d in seen] == [float(s) for s in sigmas[:-1]]


def test_er_sde_callback_equals_the_ith_model_call():
    """ER-SDE makes exactly one model call per step: callback i is call i (σ_i, x_i, D_i)."""
    sigmas = get_sigmas_karras(9, 0.002, 80.0)
    calls, seen = _run(sample_er_sde, sigmas, order=3, nsf="er_sde_5")
    assert len(calls) == len(seen) == len(sigmas) - 1
    for i, (d, (x, s, out)) in enumerate(zip(seen, calls)):
        assert d["i"] == i and float(d["sigma"]) == float(sigmas[i]) == float(s[0])
        assert torch.equal(d["x"], x) and torch.equal(d["denoised"], out)


def test_vp_callback_sees_vp_sigmas_states_and_x0():
    """VP: callback i reports σ_i of the VP schedule, the VP state the model was called on, and the x0
    prediction computed independently from that call's ε output: (x − σ ε̂)/α."""
    a, s, t = get_vp_schedule(8, "linear", "logsnr")
    calls = []

    def eps_model(x, ts):
        i = len(calls)
        lam = float(s[i] / a[i])
        den = GM(x / float(a[i]), torch.full((x.shape[0],), lam, dtype=x.dtype))
        eps = (x - float(a[i]) * den) / float(s[i])
        calls.append((x.clone(), ts.clone(), eps.clone()))
        return eps

    seen = []
    x = float(s[0]) * torch.randn(5, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sample_er_sde_vp(
        eps_model,
        x,
        a,
        s,
        prediction="eps",
        timesteps=t,
        callback=lambda d: seen.append(dict(d)),
        generator=torch.Generator().manual_seed(1),
        disable=True,
    )
    assert [d["i"] for d in seen] == list(range(len(s) - 1))
    for i, d in enumerate(seen):
        xc, ts, eps = calls[i]
        assert float(d["sigma"]) == float(s[i]) and float(ts[0]) == float(t[i])
        torch.testing.assert_close(d["x"], xc, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(d["denoised"], (xc - float(s[i]) * eps) / float(a[i]), rtol=1e-10, atol=1e-10)
