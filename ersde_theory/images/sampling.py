"""Sampling image models by seed: one ``torch.Generator`` per seed draws the initial noise and every step's
noise of that image (and its class label, for conditional EDM models), so an image depends only on its
seed — not on the batch it is in, the number of ranks, or a resume (EDM's convention). Images go to
``DIR/{seed:0Wd}.png`` (W = 6, or more when the first run into DIR had larger seeds: :func:`png_name`),
each written atomically (temporary file, then ``os.replace``).

Models (``--model``): ``digits`` (the shipped 8×8 digits UNet), ``digits-flow`` (the shipped 8×8 digits
rectified-flow velocity model), a ``.pt`` checkpoint written by ``train-digits`` (either objective), an EDM
network pickle (``.pkl``), or ``diffusers:FOLDER`` (a local ``UNet2DModel`` or pipeline folder; VP ε-models,
sampled by ``sample_er_sde_vp``).

Flow models (kind "flow", ``model(x, σ) -> v``) are sampled on ``get_flow_schedule(steps, shift=shift)`` from
x = z at σ = 1 exactly, by ``er_sde`` (``sample_er_sde_vp`` with ``prediction="flow"``) or a flow baseline
(:data:`ersde_theory.evaluation.samplers.FLOW_SAMPLERS`).
"""

from __future__ import annotations

import operator
import os
import re
import socket
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import accumulate
from pathlib import Path

import numpy as np
import torch

from ..coefficients.schedules import get_sigmas_karras
from ..evaluation.samplers import FLOW_SAMPLERS, solver_functions
from ..solvers._common import check_model_output
from ..solvers.ersde import sample_er_sde
from ..theory.nsf import NSF_NAMES, nsf_expression

HOST = socket.gethostname().replace(".", "_")
PNG_RE = re.compile(r"^(\d+)\.png$")


MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit seed
NAME_WIDTH = 6  # digits of an image name unless the outdir's manifest says otherwise (png_name)
_SEEDS_HELP = "expected e.g. '0-49999' or '1,5,10-19'"


class SeedRanges(Sequence):
    """Sorted unique seeds held as disjoint inclusive ranges: ``len``, indexing, iteration and
    :meth:`shard` cost O(number of ranges) memory, however many seeds the ranges hold."""

    def __init__(self, ranges):
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        self.ranges = tuple(merged)
        self._starts = list(accumulate((hi - lo + 1 for lo, hi in merged), initial=0))

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        n = len(self)
        k = operator.index(k)
        if k < 0:
            k += n
        if not 0 <= k < n:
            raise IndexError("seed index out of range")
        j = bisect_right(self._starts, k) - 1
        return self.ranges[j][0] + k - self._starts[j]

    def __iter__(self) -> Iterator[int]:
        for lo, hi in self.ranges:
            yield from range(lo, hi + 1)

    def __contains__(self, seed) -> bool:
        j = bisect_right([lo for lo, _ in self.ranges], seed) - 1
        return j >= 0 and seed <= self.ranges[j][1]

    def __eq__(self, other) -> bool:
        if isinstance(other, SeedRanges):
            return self.ranges == other.ranges
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"SeedRanges({','.join(str(lo) if lo == hi else f'{lo}-{hi}' for lo, hi in self.ranges)})"

    @property
    def max(self) -> int:
        return self.ranges[-1][1]

    def shard(self, rank: int, world: int) -> Iterator[int]:
        """seeds[rank::world], lazily (position sharding: rank r takes every world-th seed from the r-th)."""
        offset = rank  # position of this rank's next seed, counted from the start of the current range
        for lo, hi in self.ranges:
            size = hi - lo + 1
            if offset < size:
                yield from range(lo + offset, hi + 1, world)
                offset = (offset - size) % world
            else:
                offset -= size


def parse_seeds(spec: str) -> SeedRanges:
    """``"0-49999"``, ``"7"``, ``"0-9,20,30-31"`` → the sorted unique seeds, as lazy :class:`SeedRanges`
    (memory O(number of ranges)). Seeds are integers in [0, 2^63 − 1]."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"cannot parse seed range {spec!r}: {_SEEDS_HELP}")
    ranges = []
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d{1,30})\s*(?:-\s*(\d{1,30})\s*)?", part)
        if not m:
            raise ValueError(f"cannot parse seed range {spec!r} (at {part!r}): {_SEEDS_HELP}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"cannot parse seed range {spec!r}: {lo}-{hi} is empty (start > end)")
        if hi > MAX_SEED:
            raise ValueError(f"seed range {spec!r}: seed {hi} exceeds the largest seed 2^63 - 1 = {MAX_SEED}")
        ranges.append((lo, hi))
    return SeedRanges(ranges)


def parse_nsf(spec: str):
    """A registry name (ode, sde, er_sde_1…5), returned as is, or a sympy expression in ``sigma`` such as
    ``sigma**1.5`` (:func:`ersde_theory.theory.nsf.nsf_expression`, the parser ``sample_er_sde`` uses too)."""
    if spec in NSF_NAMES:
        return spec
    return nsf_expression(spec)


def png_name(seed: int, width: int = NAME_WIDTH) -> str:
    """``{seed:0{width}d}.png``. An outdir names all its images with one width (its manifest's
    ``name_width``: 6, or the digit count of the largest seed of the run that created it, if more), so
    that the names sort in seed order; a seed with more digits is refused there."""
    return f"{seed:0{width}d}.png"


def temp_name(path: Path) -> Path:
    """``.NAME.HOST.PID.tmp`` next to ``path``: owned by this process (see sample_cli's clean-up)."""
    return path.with_name(f".{path.name}.{HOST}.{os.getpid()}.tmp")


def write_png_atomic(path: Path, img: torch.Tensor) -> None:
    """Write a uint8 (C, H, W) image (C = 1 or 3) to ``path`` atomically: a temporary file of this process,
    fsynced, then renamed. A crash leaves either no file or the complete file, never a truncated PNG under
    the final name; a failed write (e.g. a full disk) removes its temporary file and raises."""
    from PIL import Image

    arr = img.cpu().numpy()
    arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as f:
            Image.fromarray(arr).save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_png_dir(folder) -> torch.Tensor:
    """All ``NNNNNN.png`` of a folder, in seed order, as uint8 (N, C, H, W)."""
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    files = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := PNG_RE.match(p.name)))
    if not files:
        raise ValueError(f"no NNNNNN.png images in {folder}")
    arrs = [np.asarray(Image.open(p)) for _, p in files]
    x = torch.from_numpy(np.stack(arrs))
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)


@dataclass
class ImageModel:
    """A loaded model and what sampling it needs. ``kind`` "ve": ``model(x, sigma[, class_labels])`` is a
    denoiser on [sigma_min, sigma_max]; "vp": ``model`` is a diffusers UNet2DModel with its scheduler config."""

    name: str
    kind: str
    model: Callable
    shape: tuple
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    label_dim: int = 0
    scheduler_config: dict = field(default_factory=dict)


FLOW_MODELS = {"digits-flow": "flow"}  # --model name -> train-digits objective of its shipped weights


def load_image_model(spec: str, device="cpu", edm_repo=None) -> ImageModel:
    """Resolve ``--model`` (module docstring)."""
    if spec.startswith("diffusers:"):
        from .adapters import load_diffusers_unet

        unet, cfg = load_diffusers_unet(spec[len("diffusers:") :], device)
        size = unet.config.sample_size
        hw = (size, size) if isinstance(size, int) else tuple(size)
        return ImageModel(spec, "vp", unet, (unet.config.in_channels, *hw), scheduler_config=cfg)
    if spec in ("digits", *FLOW_MODELS) or spec.endswith(".pt"):
        from .train import load_digits_unet

        shipped = spec == "digits" or spec in FLOW_MODELS
        m = load_digits_unet(
            None if shipped else spec, device, objective=FLOW_MODELS.get(spec, "edm" if shipped else None)
        )
        kind = "flow" if m.objective == "flow" else "ve"
        return ImageModel(spec, kind, m, m.sample_shape, m.cfg.sigma_min, m.cfg.sigma_max)
    if spec.endswith(".pkl"):
        from .adapters import load_edm_network

        m = load_edm_network(spec, edm_repo=edm_repo, device=device)
        if m.sample_shape is None:
            raise ValueError(f"{spec}: the network has no img_resolution/img_channels attributes")
        return ImageModel(spec, "ve", m, m.sample_shape, m.sigma_min, m.sigma_max, m.label_dim)
    raise ValueError(
        f"unknown model {spec!r}: use 'digits', 'digits-flow', a train-digits .pt checkpoint, an EDM .pkl, "
        "or diffusers:FOLDER"
    )


def available_samplers(kind: str = "ve") -> list[str]:
    """The names ``--sampler`` accepts for a model of ``kind``: ``er_sde`` plus, for VE/VP models, every
    other solver of the sampler registry (:mod:`ersde_theory.evaluation.samplers`) by function name without
    ``sample_``; for flow models, the flow baselines :data:`FLOW_SAMPLERS`."""
    if kind == "flow":
        return ["er_sde", *FLOW_SAMPLERS]
    return ["er_sde"] + sorted(n for n in solver_functions() if n != "er_sde")


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
        from .adapters import DiffusersVPModel

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
    """Images (B, C, H, W), model space, one per seed (module docstring).

    VE models: Karras/EDM steps (ρ = ``rho``) from the model's σ_max to σ_min, then 0; x_T = σ_max z.
    VP models (er_sde only): ``sample_diffusers_unet`` with ``spacing`` ∈ {time, logsnr}.
    Flow models: ``get_flow_schedule(steps, shift=shift)`` from σ = 1 (x = z) to 0; the model gets t = σ.
    """
    gens, z = initial_noise(seeds, im.shape, device, dtype)
    ersde = dict(order=order, nsf=nsf, quadrature=quadrature, derivatives=derivatives)  # the ER-SDE settings
    if im.kind == "flow":
        from ..coefficients.schedules import get_flow_schedule

        alphas, sigmas, _ = get_flow_schedule(steps, shift=shift)
        if sampler == "er_sde":
            from ..solvers.ersde import sample_er_sde_vp

            return sample_er_sde_vp(
                im.model, z, alphas, sigmas, prediction="flow", **ersde, generator=gens, disable=True
            )
        return flow_sampler(sampler)(im.model, z, sigmas, generator=gens, disable=True)
    if im.kind == "vp":
        if sampler != "er_sde":
            raise ValueError("diffusers VP models are sampled with sampler 'er_sde' only (sample_er_sde_vp)")
        from .adapters import sample_diffusers_unet

        return sample_diffusers_unet(
            im.model,
            z,
            steps,
            scheduler_config=im.scheduler_config,
            spacing=spacing,
            **ersde,
            generator=gens,
            disable=True,
        )
    labels = _class_labels(gens, im.label_dim, device)
    sigmas = get_sigmas_karras(steps, im.sigma_min, im.sigma_max, rho)
    fn = get_sampler(sampler, **ersde)
    kw = {"extra_args": {"class_labels": labels}} if labels is not None else {}
    return fn(im.model, z * float(sigmas[0]), sigmas, generator=gens, disable=True, **kw)
