"""Models layer, loading and the image sampler: ``load_image_model`` puts the model on the device it resolves;
``image_sampler`` checks a configuration and computes the schedule and step plan once, without calling the model,
and then samples any batch of seeds exactly as ``sample_images`` does."""

import pytest
import torch

from ersde_theory.devices import resolve_device
from ersde_theory.models.loading import ImageModel, load_image_model
from ersde_theory.models.sampling import image_sampler, sample_images
from ersde_theory.solvers.registry import available_samplers

pytest.importorskip("sklearn")


class NotToBeCalled(torch.nn.Module):
    def forward(self, x, sigma):
        raise AssertionError("the model was called")


def test_load_puts_the_model_on_its_resolved_device():
    im = load_image_model("digits", "auto")
    assert im.device == resolve_device("auto") and next(im.model.parameters()).device.type == im.device.type
    assert im.samplers == available_samplers("ve") and im.label == "digits" and len(im.weights_sha256) == 64
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        load_image_model("digits", "tpu")
    assert load_image_model("digits-flow").samplers == available_samplers("flow")


def test_the_sampler_checks_and_plans_once_without_a_model_call():
    im = ImageModel("never-called", "ve", NotToBeCalled(), (1, 4, 4))
    s = image_sampler(im, steps=6, nsf="er_sde_5", derivatives="corrected")
    assert s.plan is not None and s.plan.sigmas.size == 7 and s.plan.start_step == 1
    with pytest.raises(ValueError, match="not admissible"):
        image_sampler(im, steps=6, nsf="1/sigma")
    with pytest.raises(ValueError, match="does not sample ve model"):
        image_sampler(im, steps=6, sampler="flow_euler")
    assert image_sampler(im, steps=6, sampler="heun").plan is None  # a baseline: no ER-SDE plan
    with pytest.raises(ValueError, match="expansion='flow' needs a VP or flow model"):
        image_sampler(im, steps=6, expansion="flow")  # a VE model is expanded in σ (eqs. (53)–(57) are VP)
    flow = ImageModel("never-called", "flow", NotToBeCalled(), (1, 4, 4), 0.0, 1.0)
    plan = image_sampler(flow, steps=6, derivatives="corrected", expansion="flow").plan
    assert plan.expansion == "flow" and plan.start_step == 1


@pytest.mark.parametrize("model, kw", [("digits", dict(order=3, derivatives="corrected")), ("digits-flow", {})])
def test_one_sampler_serves_every_batch(model, kw):
    im = load_image_model(model)
    seeds = list(range(7))
    sampler = image_sampler(im, steps=5, **kw)
    for batch in (seeds[:3], seeds[3:], seeds[:3]):  # one plan, reused: exactly the images of a fresh call
        assert torch.equal(sampler(batch), sample_images(im, batch, steps=5, **kw))
