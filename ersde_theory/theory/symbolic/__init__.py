"""The symbolic ER-SDE layer (sympy): the derivations every coefficient comes from or is tested against
(docs/theory.md). Self-contained: it imports nothing from the numeric registry ``theory/nsf.py``.

Modules: :mod:`.symbols` (symbols, the registry NSFs of eq. (6), the φ resolver), :mod:`.sde` (the ER SDE,
h̃² ↔ φ, admissibility; eqs. (2)–(5)), :mod:`.solution` (variation of constants, Itô, noise variance;
eqs. (7)–(8)), :mod:`.taylor` (``taylor_coefficients(phi, k)`` in three forms, VP in λ, power family;
eqs. (12)–(15)), :mod:`.prediction_error` (remainders, series in Δ, ordering, gain; eqs. (17)–(18)),
:mod:`.vp_ve` (VP ≡ VE; eqs. (19)–(20)),
:mod:`.flow` (flow models and the start at σ = 1; eqs. (35)–(44)),
:mod:`.multistep` (multistep derivative estimates and their orders; eqs. (23)–(28)),
:mod:`.official` (the official code's formulas), :mod:`.numeric` (mpmath evaluation),
:mod:`.codegen` (the generated numpy closed forms of the registry), :mod:`.latex` (self-verifying,
self-rendering derivations), :mod:`.suite` (everything, timed). ``phi`` arguments: None (general φ), a registry
name, or an expression in ``sigma``.
"""

from .flow import flow_derivations, start_limit_derivation, start_limits_table
from .latex import Derivation, Identity, latex_list, simplifies_to_zero
from .multistep import divided_difference_derivation, grid_errors, multistep_derivation
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
from .symbols import NSF_NAMES, SIGMA, Delta, alpha_s, alpha_t, lambda_s, lambda_t, sigma_s, sigma_t
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
    "flow_derivations",
    "start_limit_derivation",
    "start_limits_table",
    "divided_difference_derivation",
    "grid_errors",
    "multistep_derivation",
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
    "NSF_NAMES",
    "sigma_s",
    "sigma_t",
    "lambda_s",
    "lambda_t",
    "alpha_s",
    "alpha_t",
    "Delta",
]
