"""Re-export of :mod:`ersde_theory.theory.symbolic.multistep`, where the multistep derivation now lives
(docs/theory.md eqs. (23)–(28)); kept so that ``from ersde_theory.theory import multistep`` (notebook 06)
keeps working. New code should import from ``ersde_theory.theory.symbolic.multistep``."""

from .symbolic.multistep import *  # noqa: F403
from .symbolic.multistep import __all__  # noqa: F401
