"""High-precision references for the ER SDE: one Brownian path with two views (:mod:`.brownian`) and
integrators independent of the ER-SDE solver code (:mod:`.integrator`)."""

from .brownian import BrownianPath, CoupledNoise
from .integrator import integrate_pf_ode, integrate_sra

__all__ = ["BrownianPath", "CoupledNoise", "integrate_sra", "integrate_pf_ode"]
