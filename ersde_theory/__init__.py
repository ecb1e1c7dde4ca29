"""ER-SDE theory and solvers (Cui et al., arXiv 2309.06169).

Layers, data flowing one way: ``theory`` (noise scale functions) → ``coefficients`` (schedules, step
coefficients) → ``solvers`` → ``toys`` (Gaussian mixtures with exact denoisers) → ``studies`` → ``plots``.
"""

import importlib

# public name -> the module that defines it; imported on first access (PEP 562), so that importing the
# package (and python -m ersde_theory --help) does not pull in sympy through theory.nsf
_EXPORTS = {
    ".coefficients.ersde": ("QUADRATURES", "StepCoefficients", "ersde_coefficients"),
    ".coefficients.schedules": (
        "get_sigmas_karras",
        "get_sigmas_loguniform",
        "get_vp_schedule",
        "vp_alphas_cumprod",
        "vp_to_lambda",
    ),
    ".solvers.baselines": (
        "sample_dpmpp_2m",
        "sample_dpmpp_2m_sde",
        "sample_dpmpp_3m_sde",
        "sample_euler",
        "sample_euler_ancestral",
        "sample_euler_maruyama",
        "sample_heun",
        "sample_sa_solver",
    ),
    ".solvers.ersde": ("sample_er_sde", "sample_er_sde_vp"),
    ".theory.nsf": ("DEFAULT_NSF", "NSF_NAMES", "SIGMA", "NoiseScaleFunction", "power_nsf", "resolve_nsf"),
    ".toys.gmm": ("GaussianMixture",),
    ".toys.problems": ("bimodal_1d", "get_problem", "image_like_64d", "ring_2d"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:  # subpackages (ersde_theory.studies, ...) after a bare "import ersde_theory"
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__():
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "sample_er_sde",
    "sample_er_sde_vp",
    "sample_euler",
    "sample_heun",
    "sample_euler_ancestral",
    "sample_euler_maruyama",
    "sample_dpmpp_2m",
    "sample_dpmpp_2m_sde",
    "sample_dpmpp_3m_sde",
    "sample_sa_solver",
    "get_sigmas_karras",
    "get_sigmas_loguniform",
    "get_vp_schedule",
    "vp_alphas_cumprod",
    "vp_to_lambda",
    "GaussianMixture",
    "ring_2d",
    "image_like_64d",
    "bimodal_1d",
    "get_problem",
    "ersde_coefficients",
    "StepCoefficients",
    "QUADRATURES",
    "resolve_nsf",
    "power_nsf",
    "NoiseScaleFunction",
    "NSF_NAMES",
    "DEFAULT_NSF",
    "SIGMA",
]
__version__ = "0.2.0"
