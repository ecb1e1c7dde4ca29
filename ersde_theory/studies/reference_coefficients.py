"""High-precision (mpmath) reference values of the ER-SDE step coefficients, for verification only.

Evaluates the symbolic derivation (``theory.symbolic``: r = φ_t/φ_s, var = σ_t² − σ_s² r², C_n by quadrature
of the sign-definite integrand −(1 − φ_t/φ(σ))(σ − σ_s)^{n−1}/(n−1)!) in mpmath, independently of the
float64 code path.
"""

from __future__ import annotations

from ..theory.nsf import resolve_nsf
from ..theory.symbolic.numeric import mp_step_coefficients as _mp_step


def mp_step_coefficients(nsf, s: float, t: float, dps: int = 40) -> dict[str, float]:
    """Reference r, std, C_1, C_2 for one step σ_s → σ_t > 0 (mpmath at ``dps`` digits)."""
    f = resolve_nsf(nsf)
    if f.expr is None:
        raise ValueError("the mpmath reference needs a symbolic NSF")
    v = _mp_step(f.expr, s, t, k=3, dps=dps)
    return dict(r=float(v["r"]), std=float(v["std"]), c1=float(v["c"][1]), c2=float(v["c"][2]))
