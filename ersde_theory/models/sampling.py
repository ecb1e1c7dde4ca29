"""Sampling a loaded image model (:class:`~ersde_theory.models.loading.ImageModel`) by seed: one
``torch.Generator`` per seed draws the initial noise and every step's noise of that image (and its class label,
for conditional EDM models), so an image depends only on its seed, not on the batch it is in, the number of
ranks, or a resume (EDM's convention).

Each kind of model has its schedule (:func:`sampling_schedule`): VE models Karras/EDM steps (ρ = ``rho``) from the
model's σ_max to σ_min, then 0, x_T = σ_max z; VP models (diffusers UNet2DModel) ``get_vp_schedule`` with
``spacing`` ∈ {time, logsnr} on the β schedule of their config; flow models ``get_flow_schedule(steps,
shift=shift)`` from x = z at σ = 1 exactly, the model getting t = σ. ``er_sde`` is ``sample_er_sde`` (VE) or
``sample_er_sde_vp`` (VP, and flow with ``prediction="flow"``); the other names are the baselines of the sampler
registry (:func:`ersde_theory.solvers.registry.available_samplers`). :func:`check_sampling` runs every check of
a configuration that needs no model call, before a job writes anything.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from ..coefficients.ersde import validate_sigmas
from ..coefficients.schedules import get_flow_schedule, get_sigmas_karras
from ..solvers._common import check_model_output
from ..solvers.ersde import sample_er_sde, sample_er_sde_vp
from ..solvers.plan import step_plan, vp_step_coefficients
from ..solvers.registry import FLOW_SAMPLERS, available_samplers, solver_functions
from .loading import ImageModel

__all__ = ["check_sampling", "initial_noise", "probe_model", "sample_images", "sampling_schedule"]


def sampling_schedule(im: ImageModel, steps: int, *, spacing: str = "time", rho: float = 7.0, shift: float = 1.0):
    """(alphas, sigmas, timesteps) the model ``im`` is sampled on (module docstring): ``alphas`` None for a VE
    model, ``timesteps`` None where the model takes σ itself."""
    if im.kind == "flow":
        alphas, sigmas, _ = get_flow_schedule(steps, shift=shift)
        return alphas, sigmas, None
    if im.kind == "vp":
        from ..diffusers_integration.unet import vp_schedule_from_config

        return vp_schedule_from_config(im.scheduler_config, steps, spacing=spacing)
    return None, get_sigmas_karras(steps, im.sigma_min, im.sigma_max, rho), None


def check_sampling(
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
) -> None:
    """Every check of sampling ``im`` with these settings that needs no model call: the sampler for the model's
    kind, the schedule and, for ``er_sde``, its step plan (an inadmissible NSF fails here). ValueError."""
    if sampler not in available_samplers(im.kind):
        raise ValueError(
            f"sampler {sampler!r} does not sample {im.kind} model {im.name!r}; "
            f"available: {', '.join(available_samplers(im.kind))}"
        )
    alphas, sigmas, _ = sampling_schedule(im, steps, spacing=spacing, rho=rho, shift=shift)
    ersde = dict(order=order, derivatives=derivatives)
    if sampler != "er_sde":
        validate_sigmas(sigmas)
    elif alphas is None:
        step_plan(sigmas, nsf, quadrature, **ersde)  # eqs. (26)–(28)
    else:
        vp_step_coefficients(alphas, sigmas, nsf, quadrature, **ersde)  # eqs. (36)–(40)


def flow_sampler(name: str) -> Callable:
    """``fn(model, x, sigmas, *, generator, disable)`` of a flow baseline (:data:`FLOW_SAMPLERS`)."""
    if name not in FLOW_SAMPLERS:
        raise ValueError(f"unknown flow sampler {name!r}; available: {', '.join(FLOW_SAMPLERS)}")
    return FLOW_SAMPLERS[name].fn


def get_sampler(
    name: str, *, order: int = 3, nsf="er_sde_5", quadrature: str = "exact", derivatives: str = "published"
) -> Callable:
    """``fn(model, x, sigmas, *, generator, disable, extra_args)`` for a VE model."""
    if name == "er_sde":
        return partial(sample_er_sde, order=order, nsf=nsf, quadrature=quadrature, derivatives=derivatives)
    if name not in available_samplers():
        raise ValueError(f"unknown sampler {name!r}; available: {available_samplers()}")
    return solver_functions()[name].fn


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


@torch.no_grad()
def sample_images(
    im: ImageModel,
    seeds,
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
    device="cpu",
    dtype=torch.float64,
) -> torch.Tensor:
    """Images (B, C, H, W), model space, one per seed, on the model's schedule (module docstring)."""
    if im.kind == "vp" and sampler != "er_sde":
        raise ValueError("diffusers VP models are sampled with sampler 'er_sde' only (sample_er_sde_vp)")
    gens, z = initial_noise(seeds, im.shape, device, dtype)
    alphas, sigmas, timesteps = sampling_schedule(im, steps, spacing=spacing, rho=rho, shift=shift)
    ersde = dict(order=order, nsf=nsf, quadrature=quadrature, derivatives=derivatives)  # the ER-SDE settings
    if im.kind == "vp":
        from ..diffusers_integration.unet import DiffusersVPModel, prediction_from_config

        model, prediction = DiffusersVPModel(im.model), prediction_from_config(im.scheduler_config)
        return sample_er_sde_vp(model, z, alphas, sigmas, prediction=prediction, timesteps=timesteps, **ersde,
                                generator=gens, disable=True)  # fmt: skip
    if im.kind == "flow":
        if sampler == "er_sde":
            return sample_er_sde_vp(
                im.model, z, alphas, sigmas, prediction="flow", **ersde, generator=gens, disable=True
            )
        return flow_sampler(sampler)(im.model, z, sigmas, generator=gens, disable=True)
    labels = _class_labels(gens, im.label_dim, device)
    kw = {"extra_args": {"class_labels": labels}} if labels is not None else {}
    return get_sampler(sampler, **ersde)(im.model, z * float(sigmas[0]), sigmas, generator=gens, disable=True, **kw)
