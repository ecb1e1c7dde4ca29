"""The same ER-SDE solvers on image models.

* :mod:`.unet` — a small UNet with EDM preconditioning (``model(x, sigma)`` is a VE denoiser), trained on
  scikit-learn's bundled 8×8 digits (:mod:`.digits`, :mod:`.train`); weights ship in ``ersde_theory/data``. The
  same UNet as a rectified-flow velocity model (``FlowVelocity``, ``model(x, t) -> v``) ships as ``digits-flow``.
* :mod:`.adapters` — diffusers ``UNet2DModel`` VP models through ``sample_er_sde_vp``; EDM network pickles.
* :mod:`.scheduler` — ``ERSDEScheduler`` for diffusers pipelines (needs the ``diffusers`` extra);
  ``FlowMatchERSDEScheduler`` for flow-matching pipelines (SD3, Flux); :mod:`.flow_pipelines` — tiny SD3/Flux
  pipelines built offline (also needs ``transformers``); :mod:`.pipelines` — SD, SDXL and img2img pipelines with
  random weights, and ``python -m ersde_theory bench pipelines``: run times of our schedulers against diffusers' in
  all five.
* :mod:`.sampling`, :mod:`.sample_cli` (the ``sample`` command of ``ersde_theory.cli``) — per-seed sampling to
  PNGs, resumable, under torchrun.
* :mod:`.fid` — FD_digits (feature-space Fréchet distance; NOT Inception-FID) and Inception-FID with
  local weights; :mod:`.bench` — ``python -m ersde_theory bench images``; :mod:`.bench_flow` —
  ``python -m ersde_theory bench flow`` (ER-SDE vs the flow baselines on flow models).
"""

from .sampling import load_image_model, parse_seeds, sample_images
from .train import load_digits_unet
from .unet import EDMDenoiser, FlowVelocity, UNetConfig


def __getattr__(name):
    if name == "ERSDEScheduler":  # imports diffusers: only on demand
        from .scheduler import ERSDEScheduler

        return ERSDEScheduler
    if name == "FlowMatchERSDEScheduler":  # imports diffusers: only on demand
        from .scheduler import FlowMatchERSDEScheduler

        return FlowMatchERSDEScheduler
    raise AttributeError(name)


__all__ = [
    "EDMDenoiser",
    "FlowVelocity",
    "UNetConfig",
    "load_digits_unet",
    "load_image_model",
    "parse_seeds",
    "sample_images",
    "ERSDEScheduler",
    "FlowMatchERSDEScheduler",
]
