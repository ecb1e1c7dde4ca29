"""High-precision (mpmath) reference values of the ER-SDE step coefficients, for verification only.

Evaluates the *definitions* (notes §2–3) directly, independently of the float64 code path:
r = φ_t/φ_s, var = σ_t² − σ_s² r², C_1 = (σ_t − σ_s) + φ_t ∫ dσ/φ, C_2 = (σ_t − σ_s)²/2 + φ_t ∫ (σ − σ_s)/φ dσ.
"""
from __future__ import annotations

import mpmath as mp
import sympy as sp

from ..theory.nsf import SIGMA, resolve_nsf


def mp_step_coefficients(nsf, s: float, t: float, dps: int = 40) -> dict[str, float]:
    """Reference r, std, C_1, C_2 for one step σ_s → σ_t > 0 (mpmath at ``dps`` digits)."""
    f = resolve_nsf(nsf)
    if f.expr is None:
        raise ValueError("the mpmath reference needs a symbolic NSF")
    phi = sp.lambdify(SIGMA, f.expr, modules="mpmath")
    with mp.workdps(dps):
        s_, t_ = mp.mpf(s), mp.mpf(t)
        pt = phi(t_)
        i0 = mp.quad(lambda u: 1 / phi(u), [t_, s_])
        i1 = mp.quad(lambda u: (u - s_) / phi(u), [t_, s_])
        r = pt / phi(s_)
        return dict(r=float(r), std=float(mp.sqrt(max(t_ ** 2 - s_ ** 2 * r ** 2, 0))),
                    c1=float((t_ - s_) + pt * i0), c2=float((t_ - s_) ** 2 / 2 + pt * i1))
