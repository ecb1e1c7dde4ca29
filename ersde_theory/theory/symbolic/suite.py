"""The whole derivation suite (timed by ``python -m ersde_theory symbolic-bench``): every derivation of docs/theory.md
for the general φ and for the seven registry NSFs of eq. (6), VE and VP, Taylor coefficients for k ≤ 3 in all
three forms (eqs. (12)–(14)), C_n series to Δ⁴, the ordering proofs (eq. (18)) and the multistep estimates
(eqs. (23)–(25)). Each derivation is verified (sympy → zero)."""

from __future__ import annotations

import time

from .multistep import divided_difference_derivation
from .prediction_error import (
    coefficient_series,
    ordering_derivation,
    power_family_ordering,
    remainder_series,
    series_derivation,
)
from .sde import er_sde_derivation
from .solution import ve_variation_of_constants, vp_variation_of_constants
from .symbols import NSF_NAMES
from .taylor import (
    FORMS,
    by_parts_derivation,
    power_family_derivation,
    power_series_derivation,
    taylor_coefficients,
    taylor_coefficients_vp,
)
from .vp_ve import vp_to_ve_derivation, vp_update_derivation

SERIES_ORDER = 4
K_MAX = 3


def derivations_for(phi) -> list:
    """The per-φ derivations (VE and VP)."""
    return [
        er_sde_derivation(phi),
        ve_variation_of_constants(phi),
        vp_variation_of_constants(phi),
        vp_to_ve_derivation(phi),
        vp_update_derivation(phi, K_MAX),
    ]


def run_suite(nsfs=None, log=None) -> dict:
    """Build and verify everything; returns {"seconds": total, "parts": {name: seconds}, "failures": […]}.

    ``nsfs``: the φ's besides the general one (default: the seven registry NSFs). Results are cached
    (``functools.cache``), so a second call in the same process is fast; time the first."""
    nsfs = list(NSF_NAMES) if nsfs is None else list(nsfs)
    parts, failures = {}, []
    t_all = time.perf_counter()

    def timed(name, fn):
        t0 = time.perf_counter()
        out = fn()
        parts[name] = time.perf_counter() - t0
        if log:
            log(f"[{parts[name]:6.2f}s] {name}")
        return out

    def check(ds):
        for d in ds:
            failures.extend(f"{d.title}: {label}" for label in d.failures())

    timed(
        "general phi: derivations",
        lambda: check(
            derivations_for(None)
            + [
                by_parts_derivation(K_MAX + 1),
                power_family_derivation(K_MAX + 1),
                power_series_derivation(),
                ordering_derivation(),
                power_family_ordering(),
                series_derivation(SERIES_ORDER),
                divided_difference_derivation(),
            ]
        ),
    )
    for name in nsfs:

        def one(name=name):
            check(derivations_for(name))
            for form in FORMS:
                taylor_coefficients(name, K_MAX + 1, form=form)
            taylor_coefficients_vp(name, K_MAX + 1)
            for n in range(K_MAX + 1):
                coefficient_series(name, n, SERIES_ORDER)
            remainder_series(name, K_MAX, SERIES_ORDER)

        timed(name, one)
    return dict(seconds=time.perf_counter() - t_all, parts=parts, failures=failures)
