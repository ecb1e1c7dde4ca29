"""FlowMatchERSDEScheduler (diffusers_integration): its loop equals ``sample_er_sde_vp(prediction="flow")``
(docs/theory.md eqs. (26)–(28) in VP form, the start at σ = 1), order 1 with the ODE NSF equals diffusers'
FlowMatchEulerDiscreteScheduler, its schedule equals diffusers' for the same config, config round trips, img2img
(``set_begin_index``/``scale_noise``) and bad input. The pipelines (tiny SD3 and Flux) are in
test_flow_scheduler_pipelines.py. Skipped without the optional ``diffusers`` extra."""

import math

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
from diffusers import FlowMatchEulerDiscreteScheduler  # noqa: E402

from ersde_theory import get_flow_schedule, sample_er_sde_vp  # noqa: E402
from ersde_theory.diffusers_integration.pipelines import RELEASED_SCHEDULER_CONFIGS  # noqa: E402
from ersde_theory.diffusers_integration.schedulers import FlowMatchERSDEScheduler  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = torch.Size((3, 2, 4, 4))
SD3_CONFIG, FLUX_CONFIG = RELEASED_SCHEDULER_CONFIGS["sd3"], RELEASED_SCHEDULER_CONFIGS["flux"]


class Velocity(torch.nn.Module):
    """A fixed nonlinear velocity field v(x, t) (random weights, float64): the loops compared below must agree for
    any model, and a nonlinear one that depends on t makes every step's output matter."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(SHAPE[1:].numel(), SHAPE[1:].numel(), generator=g, dtype=torch.float64) / 4
        self.b = torch.randn(SHAPE[1:], generator=g, dtype=torch.float64)

    def forward(self, x, t):
        h = torch.tanh(x.flatten(1) @ self.w).reshape(x.shape)
        s = (t.to(x.dtype) / 1000).reshape(-1, *(1,) * (x.ndim - 1))
        return h + s * self.b - (1 - s) * 0.5 * x


@pytest.fixture(scope="module")
def model():
    return Velocity()


def noise(seed=1):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def gens(seed):
    return [torch.Generator().manual_seed(seed + b) for b in range(SHAPE[0])]


def run(sched, model, x, generator=None):
    with torch.no_grad():
        for t in sched.timesteps:
            x = sched.step(model(x, t.expand(x.shape[0])), t, x, generator=generator).prev_sample
    return x


def schedule_of(sched):
    """(α, σ, model timesteps with a final 0) of a scheduler after set_timesteps."""
    s = sched.sigmas.double()
    return 1 - s, s, torch.cat([sched.timesteps.double(), torch.zeros(1, dtype=torch.float64)])


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("nsf", ["er_sde_5", "ode", "sde", "sigma**1.5"])
@pytest.mark.parametrize("derivatives", ["published", "corrected"])
@pytest.mark.parametrize("expansion", ["lambda", "flow"])
def test_loop_equals_sample_er_sde_vp_flow(model, order, nsf, derivatives, expansion):
    """The loop is sample_er_sde_vp's for both expansions (λ, eq. (20); the flow time s, eqs. (53)–(56))."""
    sched = FlowMatchERSDEScheduler(
        **SD3_CONFIG, solver_order=order, nsf=nsf, derivatives=derivatives, expansion=expansion
    )
    sched.set_timesteps(7)
    assert float(sched.sigmas[0]) == 1.0  # the exact start at σ = 1 (α = 0)
    a, s, ts = schedule_of(sched)
    x = noise()
    ref = sample_er_sde_vp(
        model,
        x,
        a,
        s,
        prediction="flow",
        timesteps=ts,
        order=order,
        nsf=nsf,
        derivatives=derivatives,
        expansion=expansion,
        generator=gens(5),
        disable=True,
    )
    out = run(sched, model, x, gens(5))
    assert float((out - x).abs().max()) > 0.5  # the sampler moved far: the comparison is not trivial
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_flux_schedule_loop_with_mu_equals_sample_er_sde_vp(model):
    """Flux passes its own base sigmas and mu; the loop on that schedule is sample_er_sde_vp's on it."""
    sched = FlowMatchERSDEScheduler(**FLUX_CONFIG, derivatives="corrected")
    sched.set_timesteps(sigmas=np.linspace(1.0, 1 / 6, 6), mu=0.8)
    sched.generator = gens(9)
    a, s, ts = schedule_of(sched)
    ref = sample_er_sde_vp(
        model, noise(), a, s, prediction="flow", timesteps=ts, derivatives="corrected", generator=gens(9), disable=True
    )
    torch.testing.assert_close(run(sched, model, noise()), ref, rtol=0, atol=1e-12)


def diffusers_pair(config, n, **kw):
    ours = FlowMatchERSDEScheduler(**config)
    ref = FlowMatchEulerDiscreteScheduler(**config)
    ours.set_timesteps(n, **kw)
    ref.set_timesteps(n, **kw)
    return ours, ref


@pytest.mark.parametrize(
    "config, n, kw",
    [
        ({}, 10, {}),
        (SD3_CONFIG, 28, {}),
        (dict(shift=0.4), 5, {}),
        (FLUX_CONFIG, 20, dict(mu=1.15)),
        (FLUX_CONFIG, 4, dict(mu=0.3, sigmas=np.linspace(1.0, 1 / 4, 4))),
        (SD3_CONFIG, 6, dict(sigmas=[1.0, 0.9, 0.6, 0.5, 0.2, 0.05])),
        ({}, 1, {}),
    ],
)
def test_timesteps_and_sigmas_equal_diffusers(config, n, kw):
    ours, ref = diffusers_pair(config, n, **kw)
    assert ours.sigmas.dtype == torch.float64 and ours.sigmas[-1] == 0
    assert ours.timesteps.dtype == ref.timesteps.dtype == torch.float32
    np.testing.assert_allclose(ours.sigmas.numpy(), ref.sigmas.double().numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ours.timesteps.numpy(), ref.timesteps.numpy(), rtol=1e-6, atol=1e-4)
    assert ours.num_inference_steps == ref.num_inference_steps == n


def test_schedule_is_get_flow_schedule():
    ours = FlowMatchERSDEScheduler(**SD3_CONFIG)
    ours.set_timesteps(9)
    a, s, t = get_flow_schedule(9, shift=3.0)
    assert torch.equal(ours.sigmas, s)
    torch.testing.assert_close(ours.timesteps.double(), t[:-1], rtol=1e-7, atol=0)  # T σ, in float32
    dyn = FlowMatchERSDEScheduler(**FLUX_CONFIG)
    dyn.set_timesteps(9, mu=0.7)
    assert torch.equal(dyn.sigmas, get_flow_schedule(9, mu=0.7)[1])


def test_mu_is_ignored_without_dynamic_shifting_as_in_diffusers():
    """FluxPipeline always passes mu; a config without dynamic shifting (FLUX.1-schnell's) ignores it."""
    ours, ref = diffusers_pair(SD3_CONFIG, 5, mu=2.0)
    plain = FlowMatchERSDEScheduler(**SD3_CONFIG)
    plain.set_timesteps(5)
    assert torch.equal(ours.sigmas, plain.sigmas)
    np.testing.assert_allclose(ours.sigmas.numpy(), ref.sigmas.double().numpy(), rtol=1e-6)


@pytest.mark.parametrize("config, kw", [(SD3_CONFIG, {}), (FLUX_CONFIG, dict(mu=0.9))])
def test_order_1_ode_equals_diffusers_euler_loop(model, config, kw):
    ours, ref = diffusers_pair(config, 12, **kw)
    x = noise()
    euler = run(ref, model, x)
    er1_sched = FlowMatchERSDEScheduler(**config, solver_order=1, nsf="ode")
    er1_sched.set_timesteps(12, **kw)
    er1 = run(er1_sched, model, x)
    diff = float((er1 - euler).abs().max())
    print(f"ER-SDE-1 (ode) vs FlowMatchEulerDiscreteScheduler, {config}: max |diff| = {diff:.3g}")
    # diffusers steps in float32 (its sigmas and an upcast of the sample), so agreement is to float32 rounding
    assert diff < 1e-5 * float(euler.abs().max())
    x64, sig = x, er1_sched.sigmas.tolist()  # the flow Euler step x + (σ_{i+1} − σ_i) v in float64: exact agreement
    with torch.no_grad():
        for i, t in enumerate(er1_sched.timesteps):
            x64 = x64 + (sig[i + 1] - sig[i]) * model(x64, t.expand(SHAPE[0]))
    torch.testing.assert_close(er1, x64, rtol=0, atol=1e-13)
    er2_sched = FlowMatchERSDEScheduler(**config, solver_order=2, nsf="ode")
    er2_sched.set_timesteps(12, **kw)
    assert float((run(er2_sched, model, x) - euler).abs().max()) > 1e-3  # a different solver does differ


def test_img2img_begin_index_runs_the_schedule_from_there(model):
    """set_begin_index(b) + scale_noise: x_b = (1 − σ_b) x_0 + σ_b ε, then the solver from σ_b, which is
    sample_er_sde_vp on the schedule from b (a fresh start there)."""
    sched = FlowMatchERSDEScheduler(**SD3_CONFIG, derivatives="corrected")
    sched.set_timesteps(8)
    b = 3
    sched.set_begin_index(b)
    image, eps = noise(3), noise(4)
    sig_b = float(sched.sigmas[b])
    xb = sched.scale_noise(image, sched.timesteps[b : b + 1].repeat(SHAPE[0]), eps)
    torch.testing.assert_close(xb, (1 - sig_b) * image + sig_b * eps, rtol=0, atol=1e-15)
    a, s, ts = schedule_of(sched)
    ref = sample_er_sde_vp(
        model,
        xb,
        a[b:],
        s[b:],
        prediction="flow",
        timesteps=ts[b:],
        derivatives="corrected",
        generator=gens(2),
        disable=True,
    )
    g = gens(2)
    with torch.no_grad():
        x = xb
        for t in sched.timesteps[b:]:
            x = sched.step(model(x, t.expand(SHAPE[0])), t, x, generator=g).prev_sample
    torch.testing.assert_close(x, ref, rtol=0, atol=1e-12)


def test_scale_noise_looks_up_timesteps_without_begin_index():
    sched = FlowMatchERSDEScheduler(**SD3_CONFIG)
    sched.set_timesteps(5)
    x0, eps = noise(3), noise(4)
    t = sched.timesteps[[2, 4, 0]]
    s = sched.sigmas[[2, 4, 0]].reshape(-1, 1, 1, 1)
    torch.testing.assert_close(sched.scale_noise(x0, t, eps), (1 - s) * x0 + s * eps, rtol=0, atol=1e-15)


def test_config_round_trips_with_diffusers(tmp_path):
    flux = FlowMatchEulerDiscreteScheduler(**FLUX_CONFIG)
    ours = FlowMatchERSDEScheduler.from_config(flux.config, solver_order=2, nsf="sde", expansion="flow")
    assert ours.config.use_dynamic_shifting and ours.config.shift == 3.0 and ours.config.solver_order == 2
    back = FlowMatchEulerDiscreteScheduler.from_config(ours.config)
    assert back.config.max_shift == 1.15 and back.config.use_dynamic_shifting
    ours.save_pretrained(tmp_path)
    again = FlowMatchERSDEScheduler.from_pretrained(tmp_path)
    assert again.config.nsf == "sde" and again.config.base_image_seq_len == 256 and again.config.expansion == "flow"
    assert "FlowMatchEulerDiscreteScheduler" in [c.__name__ for c in ours.compatibles]
    # a config dict as saved by diffusers (with its private keys and a key we do not know)
    cfg = dict(flux.config, _class_name="FlowMatchEulerDiscreteScheduler", _diffusers_version="0.30.0", future_key=1)
    assert FlowMatchERSDEScheduler.from_config(cfg).config.max_image_seq_len == 4096
    assert ours.order == 1 and ours.init_noise_sigma == 1.0


def test_pred_original_sample_is_x_minus_sigma_v(model):
    sched = FlowMatchERSDEScheduler(**SD3_CONFIG, nsf="ode")
    sched.set_timesteps(4)
    x = noise()
    t = sched.timesteps[0]
    v = model(x, t.expand(SHAPE[0]))
    out = sched.step(v, t, x)
    torch.testing.assert_close(out.pred_original_sample, x - v, rtol=0, atol=1e-15)  # σ_0 = 1
    t1 = sched.timesteps[1]
    v1 = model(out.prev_sample, t1.expand(SHAPE[0]))
    out1 = sched.step(v1, t1, out.prev_sample)
    s1 = float(sched.sigmas[1])
    torch.testing.assert_close(out1.pred_original_sample, out.prev_sample - s1 * v1, rtol=0, atol=1e-14)


def test_half_precision_latents_are_stepped_in_float32(model):
    """bf16 latents (as pipelines run them): the step computes in float32 and returns bf16."""
    sched = FlowMatchERSDEScheduler(**SD3_CONFIG, nsf="ode", solver_order=2)
    sched.set_timesteps(6)
    x = noise().to(torch.bfloat16)
    out = run(sched, lambda y, t: model(y.double(), t).to(torch.bfloat16), x)
    assert out.dtype == torch.bfloat16
    ref_sched = FlowMatchERSDEScheduler(**SD3_CONFIG, nsf="ode", solver_order=2)
    ref_sched.set_timesteps(6)
    ref = run(ref_sched, model, x.double())
    assert float((out.double() - ref).abs().max()) < 0.1 * float(ref.abs().max())


def test_expansion_flow_differs_from_lambda_at_order_3_only(model):
    """expansion changes only the Taylor weights: order 1 (no C_n terms) gives the same samples, order 3 not."""
    outs = {}
    for order in (1, 3):
        for expansion in ("lambda", "flow"):
            sched = FlowMatchERSDEScheduler(
                **SD3_CONFIG, solver_order=order, derivatives="corrected", expansion=expansion
            )
            sched.set_timesteps(6)
            outs[order, expansion] = run(sched, model, noise(), gens(3))
    torch.testing.assert_close(outs[1, "lambda"], outs[1, "flow"], rtol=0, atol=1e-14)
    assert float((outs[3, "lambda"] - outs[3, "flow"]).abs().max()) > 1e-4


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(shift=0.0), "shift"),
        (dict(shift=-1.0), "shift"),
        (dict(shift=math.inf), "shift"),
        (dict(solver_order=4), "order"),
        (dict(derivatives="exact"), "derivatives"),
        (dict(quadrature="simpson"), "quadrature"),
        (dict(use_karras_sigmas=True), "use_karras_sigmas"),
        (dict(shift_terminal=0.1), "shift_terminal"),
        (dict(invert_sigmas=True), "invert_sigmas"),
        (dict(time_shift_type="linear"), "time_shift_type"),
        (dict(expansion="sigma"), "expansion must be 'lambda' or 'flow', got 'sigma'"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FlowMatchERSDEScheduler(**kwargs)


def test_bad_set_timesteps_and_step(model):
    dyn = FlowMatchERSDEScheduler(**FLUX_CONFIG)
    with pytest.raises(ValueError, match="mu"):
        dyn.set_timesteps(5)
    with pytest.raises(ValueError, match="mu"):
        dyn.set_timesteps(5, mu=float("nan"))
    sched = FlowMatchERSDEScheduler(**SD3_CONFIG)
    with pytest.raises(ValueError, match="set_timesteps"):
        sched.step(noise(), 1000.0, noise())
    for bad in ([1.0, 0.5, 0.5], [1.0, 0.6, 0.8], [1.2, 0.5], [1.0, 0.5, 0.0], [[1.0, 0.5]]):
        with pytest.raises(ValueError, match="sigmas"):
            sched.set_timesteps(sigmas=bad)
    with pytest.raises(ValueError, match="num_inference_steps"):
        sched.set_timesteps(3, sigmas=[1.0, 0.5])
    for n in (0, 2.5, 1001, None):
        with pytest.raises(ValueError, match="num_inference_steps"):
            sched.set_timesteps(n)
    sched.set_timesteps(4)
    for b in (4, -1, 1.5):
        with pytest.raises(ValueError, match="begin_index"):
            sched.set_begin_index(b)
    x = noise()
    with pytest.raises(ValueError, match="shape"):
        sched.step(x[:, :1], sched.timesteps[0], x)
    with pytest.raises(ValueError, match="timestep"):
        sched.step(x, 123.456, x)
    for t in sched.timesteps:
        x = sched.step(model(x, t.expand(SHAPE[0])), t, x).prev_sample
    with pytest.raises(ValueError, match="steps have been taken"):
        sched.step(x, sched.timesteps[-1], x)


def test_inadmissible_nsf_at_the_sigma_1_start_is_refused():
    """er_sde_4 is not admissible up to λ = ∞: the start at σ = 1 names the failing λ."""
    sched = FlowMatchERSDEScheduler(nsf="er_sde_4")
    with pytest.raises(ValueError, match="lambda"):
        sched.set_timesteps(5)


def test_flow_scheduler_list_has_the_flow_expansion():
    """bench fmnist's flow part (``flow_schedulers``) compares FlowMatchERSDEScheduler order 3 corrected with
    expansion="flow" (er_sde_5 and ode)."""
    from ersde_theory.diffusers_integration.baselines import flow_schedulers
    from ersde_theory.diffusers_integration.pipelines import RELEASED_SCHEDULER_CONFIGS

    specs = flow_schedulers(RELEASED_SCHEDULER_CONFIGS["sd3"])
    for nsf in ("er_sde_5", "ode"):
        spec = specs[f"ER-SDE-3 {nsf} corrected flow-exp."]
        cfg = spec.make().config
        assert (cfg.expansion, cfg.derivatives, cfg.solver_order, cfg.nsf) == ("flow", "corrected", 3, nsf)
        assert spec.ersde and spec.stochastic == (nsf != "ode")
    cor = specs["ER-SDE-3 er_sde_5 corrected"].make().config  # the λ expansion, for the expansion's own effect
    assert (cor.expansion, cor.derivatives, cor.solver_order, cor.nsf) == ("lambda", "corrected", 3, "er_sde_5")
