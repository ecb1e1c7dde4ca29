"""ER-SDE in diffusers: the one place that imports diffusers (an optional extra,
``pip install "ersde-theory[diffusers]"``).

* :mod:`.schedulers` — ``ERSDEScheduler`` (VP pipelines: SD, SDXL, img2img, DDPMPipeline) and
  ``FlowMatchERSDEScheduler`` (flow-matching pipelines: SD3, Flux), on one shared base;
* :mod:`.unet` — diffusers ``UNet2DModel`` VP models sampled by ``sample_er_sde_vp``, and their loading from a
  local folder;
* :mod:`.pipelines` — pipelines built offline with random weights (SD, SDXL, img2img; tiny SD3 and Flux), and the
  schedulers a benchmark compares in each.

Importing this package does not import diffusers; the schedulers are loaded on first access.
"""

from __future__ import annotations

from ._require import require_diffusers

__all__ = ["ERSDEScheduler", "FlowMatchERSDEScheduler", "require_diffusers"]


def __getattr__(name: str):
    if name in ("ERSDEScheduler", "FlowMatchERSDEScheduler"):  # imports diffusers: only on demand
        from . import schedulers

        return getattr(schedulers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
