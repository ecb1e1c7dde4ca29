"""Figures. Importing this package registers every figure with :data:`registry.FIGURES` (name → study
function producing the data, draw function writing the files)."""

from . import convergence, gmm_samples, nsf_family, symbolic_weights, third_order, verification  # noqa: F401
from .registry import FIGURES, Figure, figure, make_figures, save  # noqa: F401
