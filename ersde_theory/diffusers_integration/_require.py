"""The one import of diffusers, an optional extra: :func:`require_diffusers`."""

from __future__ import annotations

import importlib


def require_diffusers():
    """The diffusers module, or an ImportError that says how to install it."""
    try:
        return importlib.import_module("diffusers")
    except ImportError as e:
        raise ImportError('this needs diffusers, an optional extra: pip install "ersde-theory[diffusers]"') from e
