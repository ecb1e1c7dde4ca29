"""Noise scale functions (NSFs) of the extended reverse-time SDE.

The ER SDE in σ-time (VE, notes §1) has the linear part ``(1 + h̃²) x / σ dσ``; its integrating
factor is the noise scale function φ with

    d log φ / dσ = (1 + h̃(σ)²) / σ      ⇔      h̃(σ)² = σ φ'(σ) / φ(σ) − 1.            (NSF)

φ is defined up to a constant factor. It is *admissible* when h̃² ≥ 0, i.e. when φ(σ)/σ is
non-decreasing. φ = σ is the probability-flow ODE, φ = σ² the reverse SDE, φ = σ^p gives h̃² = p − 1.

Numerically every NSF is handled through ``ell(σ) = log(φ(σ)/σ)``: admissibility is ``ell`` non-decreasing,
and the step quantities r = φ_t/φ_s and 1 − r·s/t are evaluated from differences of ``ell`` with
``expm1``, which keeps them accurate for small steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Union

import numpy as np
import sympy as sp

from .quadrature import integrate_log
from .symbolic.sde import h_tilde_sq
from .symbolic.symbols import SIGMA  # noqa: F401  (re-exported: the symbol every symbolic NSF is written in)

ArrayFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class NoiseScaleFunction:
    """A noise scale function φ(σ) > 0 with its numeric helpers (all float64 numpy).

    Build one with :func:`resolve_nsf` from a registry name, a sympy expression in ``sigma`` or a callable.
    ``power`` is set when φ = c·σ^p, which has closed-form coefficients.
    """

    name: str
    phi: ArrayFn
    ell: ArrayFn  # log(φ(σ)/σ)
    h2: ArrayFn  # h̃² = σ φ'(σ)/φ(σ) − 1
    expr: sp.Expr | None = None
    power: float | None = None
    description: str = field(default="", compare=False)

    def __call__(self, sigma):
        return self.phi(np.asarray(sigma, dtype=np.float64))

    def delta_ell(self, t, s) -> np.ndarray:
        """ℓ(s) − ℓ(t) = log(φ_s t/(φ_t s)) = ∫_t^s h̃²(σ) dσ/σ ≥ 0 (since dℓ/dσ = h̃²/σ).

        Closed form for φ = cσ^p; for symbolic φ the integral of h̃² (sign-definite, so accurate even when
        the difference of ℓ is below rounding); for callables the difference of ℓ.
        """
        t, s = np.asarray(t, dtype=np.float64), np.asarray(s, dtype=np.float64)
        if self.power is not None:
            return (self.power - 1.0) * np.log1p((s - t) / t)
        if self.expr is not None:
            return integrate_log(self.h_tilde_sq, t.ravel(), s.ravel()).reshape(t.shape)
        return self.ell(s) - self.ell(t)

    def h_tilde_sq(self, sigma) -> np.ndarray:
        """h̃(σ)² = σ φ'(σ)/φ(σ) − 1 (eq. NSF): the squared relative noise level."""
        return self.h2(np.asarray(sigma, dtype=np.float64))

    def check_admissible(self, sigma_min: float, sigma_max: float, *, n: int = 4001, tol: float = 1e-9) -> None:
        """Raise ``ValueError`` unless φ > 0 and h̃² ≥ −tol on a log grid of [sigma_min, sigma_max].

        The tolerance absorbs rounding (and the finite-difference error of callables); the grid also
        contains both end points. The error names the first σ where the condition fails.
        """
        if not (np.isfinite(sigma_min) and np.isfinite(sigma_max) and 0 < sigma_min <= sigma_max):
            raise ValueError(
                f"admissibility range must satisfy 0 < sigma_min <= sigma_max, got [{sigma_min}, {sigma_max}]"
            )
        grid = np.geomspace(sigma_min, sigma_max, n) if sigma_max > sigma_min else np.array([sigma_min])
        with np.errstate(all="ignore"):
            phi = self.phi(grid)
            h2 = self.h_tilde_sq(grid)
        bad = ~(np.isfinite(phi) & (phi > 0))
        if bad.any():
            s = grid[np.argmax(bad)]
            raise ValueError(
                f"noise scale function {self.name!r} is not positive and finite at "
                f"sigma={s:.6g} (phi={phi[np.argmax(bad)]!r})"
            )
        bad = ~np.isfinite(h2) | (h2 < -tol)
        if bad.any():
            j = np.argmax(bad)
            raise ValueError(
                f"noise scale function {self.name!r} is not admissible: h~^2 = sigma*phi'/phi - 1 "
                f"= {h2[j]:.3e} < 0 at sigma={grid[j]:.6g} (phi(sigma)/sigma must be "
                f"non-decreasing over [{sigma_min:.6g}, {sigma_max:.6g}])"
            )


def _from_expr(expr: sp.Expr, name: str, description: str = "") -> NoiseScaleFunction:
    """Numeric NSF from a sympy expression in :data:`SIGMA` (derivative taken symbolically)."""
    expr = sp.sympify(expr)
    # accept any symbol *named* sigma
    subs = {s: SIGMA for s in expr.free_symbols if s.name == "sigma" and s != SIGMA}
    expr = expr.subs(subs)
    extra = expr.free_symbols - {SIGMA}
    if extra:
        raise ValueError(f"NSF expression may only depend on sigma, found {sorted(map(str, extra))}")
    ell_expr = sp.expand_log(sp.log(expr / SIGMA), force=True)
    h2_expr = h_tilde_sq(expr)  # eq. (NSF), from the symbolic layer
    coeff, rest = expr.as_coeff_Mul()
    power = None
    if coeff.is_positive and rest == SIGMA:
        power = 1.0
    elif coeff.is_positive and rest.is_Pow and rest.base == SIGMA and rest.exp.is_number:
        power = float(rest.exp)
    lam = lambda e: sp.lambdify(SIGMA, e, modules="numpy")  # noqa: E731
    return NoiseScaleFunction(
        name=name,
        phi=_broadcast(lam(expr)),
        ell=_broadcast(lam(ell_expr)),
        h2=_broadcast(lam(h2_expr)),
        expr=expr,
        power=power,
        description=description,
    )


def _broadcast(f: ArrayFn) -> ArrayFn:
    """Lambdified constants return scalars: broadcast them to the input's shape, in float64."""

    def g(sigma):
        sigma = np.asarray(sigma, dtype=np.float64)
        with np.errstate(over="ignore"):  # e.g. exp(1/σ) → inf gives the right limit
            return np.broadcast_to(np.asarray(f(sigma), dtype=np.float64), sigma.shape).copy()

    return g


def _from_callable(fn: Callable, name: str) -> NoiseScaleFunction:
    """Numeric NSF from a float64 numpy callable φ(σ); h̃² = dℓ/d log σ by a 5-point stencil."""

    def phi(sigma):
        return np.asarray(fn(np.asarray(sigma, dtype=np.float64)), dtype=np.float64)

    def ell(sigma):
        sigma = np.asarray(sigma, dtype=np.float64)
        return np.log(phi(sigma)) - np.log(sigma)

    def h2(sigma, h=1e-3):
        u = np.log(np.asarray(sigma, dtype=np.float64))
        le = lambda v: ell(np.exp(v))  # noqa: E731   dℓ/du = h̃²
        return (le(u - 2 * h) - 8 * le(u - h) + 8 * le(u + h) - le(u + 2 * h)) / (12 * h)

    return NoiseScaleFunction(name=name, phi=phi, ell=ell, h2=h2)


# The seven official NSFs (official code numbering, notes §5).
_OFFICIAL = {
    "ode": (SIGMA, "probability-flow ODE, h~ = 0"),
    "sde": (SIGMA**2, "reverse SDE, h~ = 1"),
    "er_sde_1": (SIGMA * (sp.exp(-1 / SIGMA) + 10), "nearly ODE"),
    "er_sde_2": (SIGMA ** sp.Rational(3, 2), "h~^2 = 0.5"),
    "er_sde_3": (SIGMA ** sp.Rational(5, 2), "h~^2 = 1.5"),
    "er_sde_4": (
        SIGMA ** sp.Rational(9, 10) * sp.log(1 + 100 * SIGMA ** sp.Rational(3, 2), 10),
        "admissible for sigma < ~1e3",
    ),
    "er_sde_5": (SIGMA * (sp.exp(SIGMA ** sp.Rational(3, 10)) + 10), "official default"),
}
NSF_NAMES: tuple[str, ...] = tuple(_OFFICIAL)
DEFAULT_NSF = "er_sde_5"
_CACHE: dict[str, NoiseScaleFunction] = {}

NSFLike = Union[str, sp.Expr, Callable, NoiseScaleFunction]


def resolve_nsf(nsf: NSFLike) -> NoiseScaleFunction:
    """Return a :class:`NoiseScaleFunction` for a registry name, a sympy expression in ``sigma``,
    a numpy callable φ(σ), or an existing instance."""
    if isinstance(nsf, NoiseScaleFunction):
        return nsf
    if isinstance(nsf, str):
        if nsf not in _OFFICIAL:
            raise ValueError(f"unknown noise scale function {nsf!r}; known: {', '.join(NSF_NAMES)}")
        if nsf not in _CACHE:
            expr, desc = _OFFICIAL[nsf]
            _CACHE[nsf] = _from_expr(expr, nsf, desc)
        return _CACHE[nsf]
    if isinstance(nsf, sp.Basic):
        return _from_expr(nsf, f"phi={nsf}")
    if callable(nsf):
        return _from_callable(nsf, getattr(nsf, "__name__", "callable"))
    raise TypeError(f"nsf must be a name, a sympy expression in sigma or a callable, got {type(nsf).__name__}")


def power_nsf(p: float) -> NoiseScaleFunction:
    """φ = σ^p (h̃² = p − 1, admissible for p ≥ 1), with closed-form coefficients."""
    return _from_expr(SIGMA ** sp.nsimplify(p), f"power_{p:g}", f"phi = sigma^{p:g}")
