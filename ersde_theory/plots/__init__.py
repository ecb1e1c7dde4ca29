"""Figures, drawn from what the studies return. Importing this package registers every figure with
:data:`registry.FIGURES` (name → the study producing the data, the draw function writing the figure files, the
study's report writer); ``python -m ersde_theory figures`` runs them."""

from . import convergence, gmm_samples, nsf_family, symbolic_weights, third_order, verification  # noqa: F401
from .registry import FIGURES, Figure, figure, report_only, save  # noqa: F401
