"""EDM network pickles (Karras et al. 2022, ``network-snapshot-*.pkl``): data prediction through their own
preconditioning, so ``net(x, sigma, class_labels)`` is already a VE denoiser for
:func:`ersde_theory.sample_er_sde`. Unpickling needs the EDM code (``dnnlib``, ``torch_utils``) importable; only
load pickles you trust.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import torch


class EDMNetworkDenoiser(torch.nn.Module):
    """``model(x, sigma, class_labels=None)``: an EDM network (already preconditioned) as a VE denoiser."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.label_dim = int(getattr(net, "label_dim", 0) or 0)
        self.sigma_min = float(getattr(net, "sigma_min", 0.002))
        self.sigma_max = float(getattr(net, "sigma_max", 80.0))
        res, ch = getattr(net, "img_resolution", None), getattr(net, "img_channels", None)
        self.sample_shape = (int(ch), int(res), int(res)) if res and ch else None

    def forward(self, x, sigma, class_labels=None):
        if class_labels is None:
            return self.net(x, sigma).to(x.dtype)
        return self.net(x, sigma, class_labels).to(x.dtype)


def load_edm_network(path, *, edm_repo=None, key: str = "ema", device="cpu") -> EDMNetworkDenoiser:
    """Load an EDM network pickle (``network-snapshot-*.pkl``, entry ``key``) as a VE denoiser.

    The pickle references the EDM repository's modules (``dnnlib``, ``torch_utils``): give ``edm_repo`` (a
    clone of github.com/NVlabs/edm) or put it on PYTHONPATH; otherwise this raises an ImportError naming the
    missing module. URLs are not fetched: download the pickle first.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"EDM network pickle {p} does not exist (URLs are not downloaded; fetch the file first)"
        )
    if edm_repo is not None:
        if not Path(edm_repo).is_dir():
            raise FileNotFoundError(f"edm_repo {edm_repo} is not a folder")
        if str(edm_repo) not in sys.path:
            sys.path.insert(0, str(edm_repo))
    try:
        with open(p, "rb") as f:
            data = pickle.load(f)
    except ModuleNotFoundError as e:
        raise ImportError(
            f"unpickling {p} needs the module {e.name!r} from the EDM code: clone "
            f"https://github.com/NVlabs/edm and pass its folder as edm_repo= (CLI: --edm-repo) "
            f"or add it to PYTHONPATH"
        ) from e
    net = data[key] if isinstance(data, dict) else data
    if not isinstance(net, torch.nn.Module):
        raise ValueError(f"{p}: entry {key!r} is a {type(net).__name__}, not a torch network")
    return EDMNetworkDenoiser(net.to(device).eval().requires_grad_(False))
