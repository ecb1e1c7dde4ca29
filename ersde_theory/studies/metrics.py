"""Compatibility re-export: the Fréchet distance (docs/theory.md eq. 31) and its noise floor (eq. 32) live
in :mod:`ersde_theory.evaluation`."""

from ..evaluation.frechet import frechet_distance, frechet_to_moments  # noqa: F401
from ..evaluation.noise_floor import fd_noise_floor  # noqa: F401
