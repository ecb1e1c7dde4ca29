"""Sampling a loaded image model (:class:`~ersde_theory.models.loading.ImageModel`) by seed: one
``torch.Generator`` per seed draws the initial noise and every step's noise of that image (and its class label,
for conditional EDM models), so an image depends only on its seed, not on the batch it is in, the number of
ranks, or a resume (EDM's convention).

Each kind of model has its schedule (:func:`sampling_schedule`): VE models Karras/EDM steps (ρ = ``rho``) from the
model's σ_max to σ_min, then 0, x_T = σ_max z; VP models (diffusers UNet2DModel) ``get_vp_schedule`` with
``spacing`` ∈ {time, logsnr} on the β schedule of their config; flow models ``get_flow_schedule(steps,
shift=shift)`` from x = z at σ = 1 exactly, the model getting t = σ. ``er_sde`` is ``sample_er_sde`` (VE) or
``sample_er_sde_vp`` (VP, and flow with ``prediction="flow"``); the other names are the baselines of the sampler
registry (:func:`ersde_theory.solvers.registry.available_samplers`). :func:`image_sampler` checks a configuration
and computes its schedule and step plan once, without a model call; the :class:`ImageSampler` it returns samples any
batch of seeds with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..coefficients.ersde import validate_sigmas
from ..coefficients.schedules import get_flow_schedule, get_sigmas_karras
from ..solvers._common import check_model_output
from ..solvers.ersde import sample_er_sde, sample_er_sde_vp
from ..solvers.plan import StepPlan, check_expansion, step_plan, vp_step_coefficients
from ..solvers.registry import FLOW_SAMPLERS, solver_functions
from .loading import ImageModel

__all__ = ["ImageSampler", "image_sampler", "initial_noise", "probe_model", "sample_images", "sampling_schedule"]


def sampling_schedule(im: ImageModel, steps: int, *, spacing: str = "time", rho: float = 7.0, shift: float = 1.0):
    """(alphas, sigmas, timesteps) the model ``im`` is sampled on (module docstring): ``alphas`` None for a VE
    model, ``timesteps`` None where the model takes σ itself."""
    if im.kind == "vp":
        from ..diffusers_integration.unet import vp_schedule_from_config

        return vp_schedule_from_config(im.scheduler_config, steps, spacing=spacing)
    if im.kind == "flow":
        alphas, sigmas, _ = get_flow_schedule(steps, shift=shift)
        return alphas, sigmas, None
    return None, get_sigmas_karras(steps, im.sigma_min, im.sigma_max, rho), None


@dataclass(frozen=True)
class ImageSampler:
    """A loaded model with its sampler, schedule and (for ``er_sde``) step plan, checked and computed once by
    :func:`image_sampler`: ``sampler(seeds)`` gives the images (B, C, H, W), model space, one per seed."""

    im: ImageModel
    sampler: str
    alphas: torch.Tensor | None
    sigmas: torch.Tensor
    timesteps: torch.Tensor | None
    plan: StepPlan | None
    device: torch.device
    dtype: torch.dtype

    @torch.no_grad()
    def __call__(self, seeds) -> torch.Tensor:
        im, plan = self.im, self.plan
        gens, z = initial_noise(seeds, im.shape, self.device, self.dtype)
        run = dict(generator=gens, disable=True)
        if im.kind == "vp":
            from ..diffusers_integration.unet import DiffusersVPModel

            model = DiffusersVPModel(im.model)
            return sample_er_sde_vp(model, z, self.alphas, self.sigmas, prediction=im.prediction,
                                    timesteps=self.timesteps, plan=plan, **run)  # fmt: skip
        if im.kind == "flow" and plan is not None:
            return sample_er_sde_vp(im.model, z, self.alphas, self.sigmas, prediction="flow", plan=plan, **run)
        if im.kind == "flow":
            return FLOW_SAMPLERS[self.sampler].fn(im.model, z, self.sigmas, **run)
        labels = _class_labels(gens, im.label_dim, self.device)
        if labels is not None:
            run["extra_args"] = {"class_labels": labels}
        fn = sample_er_sde if plan is not None else solver_functions()[self.sampler].fn
        kw = {"plan": plan} if plan is not None else {}
        return fn(im.model, z * float(self.sigmas[0]), self.sigmas, **kw, **run)


def image_sampler(
    im: ImageModel,
    *,
    steps: int,
    sampler: str = "er_sde",
    order: int = 3,
    nsf="er_sde_5",
    quadrature: str = "exact",
    derivatives: str = "published",
    spacing: str = "time",
    rho: float = 7.0,
    shift: float = 1.0,
    device=None,
    dtype=torch.float64,
    expansion: str = "lambda",
) -> ImageSampler:
    """``im`` sampled by ``sampler`` (``er_sde`` with ``order``, ``nsf``, ``quadrature``, ``derivatives`` and, for VP
    and flow models, ``expansion`` of :func:`~ersde_theory.solvers.ersde.sample_er_sde_vp`; or a
    baseline of the sampler registry for the model's kind, ``im.samplers``) on its schedule
    (:func:`sampling_schedule`): every check that needs no model call (an inadmissible NSF fails here), the
    schedule and the step plan computed once. ``device``: where the noise is drawn (default: the model's).
    ValueError for a sampler that does not sample this kind of model."""
    if sampler not in im.samplers:
        raise ValueError(
            f"sampler {sampler!r} does not sample {im.kind} model {im.name!r}; available: {', '.join(im.samplers)}"
        )
    alphas, sigmas, timesteps = sampling_schedule(im, steps, spacing=spacing, rho=rho, shift=shift)
    plan, ersde = None, dict(order=order, derivatives=derivatives)
    check_expansion(expansion)
    if sampler == "er_sde" and alphas is None:
        if expansion != "lambda":
            raise ValueError(f"expansion={expansion!r} needs a VP or flow model; {im.name!r} is VE (expanded in sigma)")
        plan = step_plan(sigmas, nsf, quadrature, **ersde)  # eqs. (26)–(28)
    elif sampler == "er_sde":
        plan = vp_step_coefficients(
            alphas, sigmas, nsf, quadrature, expansion=expansion, **ersde
        )  # eqs. (36)–(40), (53)–(56)
    else:
        validate_sigmas(sigmas)
    dev = torch.device(device) if device is not None else im.device
    return ImageSampler(im, sampler, alphas, sigmas, timesteps, plan, dev, dtype)


def sample_images(im: ImageModel, seeds, **settings) -> torch.Tensor:
    """Images (B, C, H, W), model space, one per seed, on the model's schedule (module docstring):
    ``image_sampler(im, **settings)(seeds)``, ``settings`` being its keywords (steps, sampler, order, nsf,
    quadrature, derivatives, spacing, rho, shift, device, dtype, expansion). To sample many batches, build the
    :class:`ImageSampler` once."""
    return image_sampler(im, **settings)(seeds)


def initial_noise(seeds, shape, device, dtype) -> tuple[list[torch.Generator], torch.Tensor]:
    """One generator per seed and the N(0, I) initial draw of each: the first numbers of its stream."""
    gens = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
    z = torch.stack([torch.randn(shape, generator=g, device=device, dtype=dtype) for g in gens])
    return gens, z


def _class_labels(gens, label_dim: int, device) -> torch.Tensor | None:
    if not label_dim:
        return None
    idx = torch.cat([torch.randint(label_dim, (1,), generator=g, device=device) for g in gens])
    return torch.eye(label_dim, device=device)[idx]


@torch.no_grad()
def probe_model(im: ImageModel, device, dtype=torch.float64) -> None:
    """One model call on one input: raises ValueError when the output shape does not match the input."""
    x = torch.zeros((1, *im.shape), device=device, dtype=dtype)
    if im.kind == "vp":
        from ..diffusers_integration.unet import DiffusersVPModel

        out = DiffusersVPModel(im.model)(x, torch.full((1,), 500.0, device=device))
    elif im.kind == "flow":
        out = im.model(x, torch.ones(1, device=device, dtype=dtype))
    else:
        labels = torch.zeros(1, im.label_dim, device=device) if im.label_dim else None
        kw = {"class_labels": labels} if labels is not None else {}
        out = im.model(x, torch.full((1,), im.sigma_max, device=device, dtype=dtype), **kw)
    check_model_output(out, x)
