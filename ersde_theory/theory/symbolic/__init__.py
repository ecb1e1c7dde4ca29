"""The symbolic ER-SDE layer (sympy): the derivations every coefficient comes from or is tested against.

Modules: :mod:`.sde` (the ER SDE, h̃² ↔ φ, admissibility), :mod:`.solution` (variation of constants, Itô,
noise variance), :mod:`.taylor` (``taylor_coefficients(phi, k)`` in three forms, VP in λ, power family),
:mod:`.prediction_error` (remainders, series in Δ, ordering, gain), :mod:`.vp_ve` (VP ≡ VE),
:mod:`.divided_differences` (multistep D1/D2), :mod:`.official` (the official code's formulas),
:mod:`.numeric` (mpmath evaluation), :mod:`.latex` (self-verifying, self-rendering derivations),
:mod:`.suite` (everything, timed). ``phi`` arguments: None (general φ), a registry name, or an expression
in ``sigma``.
"""

from .divided_differences import divided_difference_derivation, grid_errors
from .latex import Derivation, Identity, latex_list, simplifies_to_zero
from .numeric import mp_step_coefficients, step_coefficients_array
from .official import official_ve_step, official_vp_step
from .prediction_error import (
    coefficient_series,
    gain,
    leading_term,
    ordering_derivation,
    power_family_ordering,
    prediction_error_weights,
    remainder_series,
    series_derivation,
)
from .sde import (
    er_sde_derivation,
    h_from_phi,
    h_tilde_sq,
    phi_from_h,
    phi_from_h_tilde_sq,
    power_family_admissible_set,
    ve_er_sde,
    vp_er_sde,
)
from .solution import noise_variance, ve_exact_step, ve_variation_of_constants, vp_exact_step, vp_variation_of_constants
from .suite import run_suite
from .symbols import SIGMA, Delta, alpha_s, alpha_t, lambda_s, lambda_t, sigma_s, sigma_t
from .taylor import (
    by_parts_derivation,
    power_family_coefficients,
    power_family_derivation,
    taylor_coefficients,
    taylor_coefficients_vp,
)
from .vp_ve import vp_to_ve_derivation, vp_update_derivation

__all__ = [
    "taylor_coefficients",
    "taylor_coefficients_vp",
    "by_parts_derivation",
    "power_family_coefficients",
    "power_family_derivation",
    "h_tilde_sq",
    "phi_from_h_tilde_sq",
    "h_from_phi",
    "phi_from_h",
    "power_family_admissible_set",
    "er_sde_derivation",
    "ve_er_sde",
    "vp_er_sde",
    "ve_exact_step",
    "vp_exact_step",
    "noise_variance",
    "ve_variation_of_constants",
    "vp_variation_of_constants",
    "gain",
    "remainder_series",
    "coefficient_series",
    "leading_term",
    "series_derivation",
    "ordering_derivation",
    "power_family_ordering",
    "prediction_error_weights",
    "vp_to_ve_derivation",
    "vp_update_derivation",
    "divided_difference_derivation",
    "grid_errors",
    "official_ve_step",
    "official_vp_step",
    "mp_step_coefficients",
    "step_coefficients_array",
    "Derivation",
    "Identity",
    "simplifies_to_zero",
    "latex_list",
    "run_suite",
    "SIGMA",
    "sigma_s",
    "sigma_t",
    "lambda_s",
    "lambda_t",
    "alpha_s",
    "alpha_t",
    "Delta",
]
