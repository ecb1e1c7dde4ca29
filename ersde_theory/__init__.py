"""ER-SDE theory and solvers (Cui et al., arXiv 2309.06169).

Layers, data flowing one way: ``theory`` (noise scale functions) → ``coefficients`` (schedules, step
coefficients) → ``solvers`` (the step plan, the samplers, their registry) → ``toys`` (Gaussian mixtures with exact
denoisers), ``references``, ``datasets``, ``diffusers_integration`` → ``models`` → ``evaluation`` → ``studies`` →
``plots``; the sample job and the command line on top.

Importing the package does not import sympy: the sympy-based names (``SIGMA``) are loaded on first access.
"""

from .coefficients.ersde import QUADRATURES, StepCoefficients, ersde_coefficients
from .coefficients.schedules import (
    get_flow_schedule,
    get_sigmas_karras,
    get_sigmas_loguniform,
    get_vp_schedule,
    vp_alphas_cumprod,
    vp_to_lambda,
)
from .solvers import baselines as _baselines
from .solvers import flow as _flow
from .solvers.baselines import *  # noqa: F403  (every sample_<baseline>, listed in baselines.__all__)
from .solvers.ersde import sample_er_sde, sample_er_sde_vp
from .solvers.flow import *  # noqa: F403  (sample_flow_euler/heun/dpmpp_2m/dpmpp_2m_sde, listed in flow.__all__)
from .solvers.plan import StepPlan, VPStepCoefficients, step_plan, vp_step_coefficients
from .theory.nsf import DEFAULT_NSF, NSF_NAMES, NoiseScaleFunction, power_nsf, resolve_nsf
from .toys.flow import flow_velocity
from .toys.gmm import GaussianMixture
from .toys.problems import bimodal_1d, get_problem, image_like_64d, ring_2d

__all__ = [
    "sample_er_sde",
    "sample_er_sde_vp",
    *_baselines.__all__,
    *_flow.__all__,
    "get_sigmas_karras",
    "get_sigmas_loguniform",
]
__all__ += [
    "get_flow_schedule",
    "get_vp_schedule",
    "vp_alphas_cumprod",
    "vp_to_lambda",
    "GaussianMixture",
    "ring_2d",
    "image_like_64d",
]
__all__ += [
    "flow_velocity",
    "bimodal_1d",
    "get_problem",
    "ersde_coefficients",
    "StepCoefficients",
    "QUADRATURES",
    "resolve_nsf",
]
__all__ += ["power_nsf", "NoiseScaleFunction", "NSF_NAMES", "DEFAULT_NSF", "vp_step_coefficients", "VPStepCoefficients"]
__all__ += ["step_plan", "StepPlan"]
__all__ += ["SIGMA"]  # noqa: F405  (loaded on first use by __getattr__ below)
__version__ = "0.9.1"


def __getattr__(name: str):
    """Sympy-based exports, imported on first use (PEP 562) so that ``import ersde_theory`` stays sympy-free."""
    if name == "SIGMA":
        from .theory.symbolic.symbols import SIGMA

        return SIGMA
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
