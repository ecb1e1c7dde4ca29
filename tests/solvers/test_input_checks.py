"""Solvers layer, input checks of the public samplers (issue: API input): order must be the int 1, 2 or 3;
model and noise-sampler outputs must be floating tensors and are cast to x's dtype and device; a generator
list holds torch.Generators; an empty batch is refused; NSF strings parse as on the command line."""

import numpy as np
import pytest
import torch

from ersde_theory.coefficients.schedules import get_sigmas_karras
from ersde_theory.solvers.baselines import sample_euler
from ersde_theory.solvers.ersde import sample_er_sde

SIG = get_sigmas_karras(4, 0.002, 80.0)


def shrink(x, s):
    return x / (1 + s[:, None] ** 2)


@pytest.mark.parametrize("order", [True, False, 3.0, "3", 0, 4, None])
def test_order_must_be_int_1_2_3(order):
    with pytest.raises(ValueError, match=r"order must be 1, 2 or 3 \(an int\), got"):
        sample_er_sde(shrink, torch.zeros(2, 2), SIG, order=order, disable=True)


def test_order_accepts_numpy_int():
    out = sample_er_sde(shrink, torch.ones(2, 2), SIG, order=np.int64(2), generator=torch.Generator(), disable=True)
    assert out.shape == (2, 2) and torch.isfinite(out).all()


@pytest.mark.parametrize("out_dtype", [torch.float16, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("sampler", [sample_er_sde, sample_euler])
def test_model_output_is_cast_to_the_dtype_of_x(sampler, out_dtype):
    x = torch.ones(3, 2, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    out = sampler(lambda x, s: shrink(x, s).to(out_dtype), x, SIG, generator=g, disable=True)
    assert out.dtype == torch.float64


@pytest.mark.parametrize("bad", [torch.int64, torch.bool])
def test_non_floating_model_output_is_refused(bad):
    with pytest.raises(ValueError, match=f"model returned dtype {bad}"):
        sample_er_sde(lambda x, s: x.to(bad), torch.ones(2, 2), SIG, disable=True)


def test_noise_sampler_outputs():
    x = torch.ones(2, 2, dtype=torch.float64)
    out = sample_er_sde(shrink, x, SIG, noise_sampler=lambda s, t: torch.ones(2, 2, dtype=torch.float16), disable=True)
    assert out.dtype == torch.float64
    with pytest.raises(ValueError, match="noise_sampler returned ndarray, expected a floating-point torch.Tensor"):
        sample_er_sde(shrink, x, SIG, noise_sampler=lambda s, t: np.ones((2, 2)), disable=True)
    with pytest.raises(ValueError, match="noise_sampler returned dtype torch.int64"):
        sample_er_sde(shrink, x, SIG, noise_sampler=lambda s, t: torch.ones(2, 2, dtype=torch.int64), disable=True)


def test_generator_list_must_hold_generators():
    gens = [torch.Generator(), None]
    with pytest.raises(ValueError, match="entry 1 is NoneType"):
        sample_er_sde(shrink, torch.ones(2, 2), SIG, generator=gens, disable=True)


def test_empty_batch_is_refused():
    with pytest.raises(ValueError, match=r"empty batch \(shape \(0, 2\)\)"):
        sample_er_sde(shrink, torch.zeros(0, 2), SIG, generator=[], disable=True)


def test_nsf_string_expression_same_as_the_cli():
    from ersde_theory.theory.nsf import parse_nsf

    x = torch.ones(2, 2, dtype=torch.float64)
    a = sample_er_sde(shrink, x, SIG, nsf="sigma**1.5", generator=torch.Generator().manual_seed(1), disable=True)
    b = sample_er_sde(
        shrink, x, SIG, nsf=parse_nsf("sigma**1.5"), generator=torch.Generator().manual_seed(1), disable=True
    )
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="unknown noise scale function 'banana\\('"):
        sample_er_sde(shrink, x, SIG, nsf="banana(", disable=True)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: sample_er_sde(shrink, torch.ones(2, 2), ["80", "1", "0"], disable=True),
            "must be a 1-D array of numbers",
        ),
        (lambda: sample_er_sde(shrink, torch.ones(2, 2), SIG, 5, disable=True), "extra_args must be a dict"),
        (lambda: sample_euler(shrink, torch.ones(2, 2), SIG, None, 5, disable=True), "callback must be callable"),
        (lambda: sample_er_sde(shrink, torch.ones(2, 2), SIG, generator=0, disable=True), "generator must be a torch"),
        (
            lambda: sample_er_sde(shrink, torch.ones(3, 2), SIG, generator=[torch.Generator()] * 3, disable=True),
            "repeats one torch.Generator",
        ),
        (
            lambda: sample_er_sde(lambda x, s: torch.empty_like(x, device="meta"), torch.ones(2, 2), SIG, disable=True),
            "meta device",
        ),
        (
            lambda: sample_er_sde(shrink, torch.ones(2, 2), SIG, noise_scaler=lambda lam: lam[:1], disable=True),
            "noise_scaler must return phi of each lambda",
        ),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("prediction", ["eps", "score"])
def test_an_eps_model_cannot_start_at_alpha_zero(prediction):
    from ersde_theory import get_flow_schedule, sample_er_sde_vp

    a, s, _ = get_flow_schedule(4)
    with pytest.raises(ValueError, match=f"prediction='{prediction}' cannot start at alphas\\[0\\] = 0"):
        sample_er_sde_vp(lambda x, t: torch.zeros_like(x), torch.ones(2, 2), a, s, prediction=prediction, disable=True)
    for ok in ("flow", "v", "x0"):  # these read at alpha = 0
        out = sample_er_sde_vp(lambda x, t: torch.zeros_like(x), torch.ones(2, 2, dtype=torch.float64), a, s,
                               prediction=ok, generator=torch.Generator(), disable=True)  # fmt: skip
        assert torch.isfinite(out).all()
