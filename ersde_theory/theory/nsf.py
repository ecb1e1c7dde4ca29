"""Noise scale functions (NSFs) of the extended reverse-time SDE: the numeric registry (float64 numpy).

The ER SDE in σ-time (docs/theory.md eq. (3)) has the linear part ``(1 + h̃²) x / σ dσ``; its integrating
factor is the noise scale function φ with (eq. (4))

    d log φ / dσ = (1 + h̃(σ)²) / σ      ⇔      h̃(σ)² = σ φ'(σ) / φ(σ) − 1.

φ is defined up to a constant factor. It is *admissible* when h̃² ≥ 0, i.e. when φ(σ)/σ is non-decreasing
(eq. (5)). φ = σ is the probability-flow ODE, φ = σ² the reverse SDE, φ = σ^p gives h̃² = p − 1.

Numerically every NSF is handled through ``ell(σ) = log(φ(σ)/σ)`` and h̃² = dℓ/d log σ: the step quantities
r = φ_t/φ_s and the noise are evaluated from Δℓ = ∫ h̃² dσ/σ with ``expm1`` (eq. (9)), which keeps them
accurate for small steps.

Sources of φ, ℓ and h̃²:

* a registry name (eq. (6)) or :func:`power_nsf`: the closed forms generated from the symbolic derivation
  into :mod:`ersde_theory.theory._generated` (see :mod:`ersde_theory.theory.symbolic.codegen`); no sympy is
  imported;
* a sympy expression in ``sigma``: derived and lambdified at run time (imports sympy);
* a numpy callable φ(σ): h̃² by finite differences.

The sympy expression of φ (``NoiseScaleFunction.expr``) is built only on request.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from . import _generated
from .quadrature import integrate_log

if TYPE_CHECKING:
    import sympy as sp

ArrayFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class NoiseScaleFunction:
    """A noise scale function φ(σ) > 0 with its numeric helpers (all float64 numpy).

    Build one with :func:`resolve_nsf` from a registry name, a sympy expression in ``sigma`` or a callable,
    or with :func:`power_nsf`. ``power`` is set when φ = c·σ^p, which has closed-form coefficients (eq. (15)).
    ``exact_h2`` is set when ``h2`` is the closed form of eq. (4) (not a finite difference): then Δℓ and
    1 − G (eqs. (9), (14)) are integrated from it. ``expr_source`` returns the sympy expression of φ.
    """

    name: str
    phi: ArrayFn
    ell: ArrayFn  # log(φ(σ)/σ)
    h2: ArrayFn  # h̃² = σ φ'(σ)/φ(σ) − 1
    power: float | None = None
    description: str = field(default="", compare=False)
    exact_h2: bool = False
    expr_source: Callable[[], Any] | None = field(default=None, compare=False, repr=False)

    @property
    def expr(self) -> sp.Expr | None:
        """φ as a sympy expression in ``sigma`` (imports sympy), or None for a callable φ."""
        return None if self.expr_source is None else self.expr_source()

    def __call__(self, sigma):
        return self.phi(np.asarray(sigma, dtype=np.float64))

    def delta_ell(self, t, s) -> np.ndarray:
        """ℓ(s) − ℓ(t) = log(φ_s t/(φ_t s)) = ∫_t^s h̃²(σ) dσ/σ ≥ 0 (eq. (9); dℓ/dσ = h̃²/σ).

        Closed form for φ = cσ^p; for an exact h̃² its integral (sign-definite, so accurate even when the
        difference of ℓ is below rounding); for callables the difference of ℓ.
        """
        t, s = np.asarray(t, dtype=np.float64), np.asarray(s, dtype=np.float64)
        if self.power is not None:
            return (self.power - 1.0) * np.log1p((s - t) / t)
        if self.exact_h2:
            return integrate_log(self.h_tilde_sq, t.ravel(), s.ravel()).reshape(t.shape)
        return self.ell(s) - self.ell(t)

    def h_tilde_sq(self, sigma) -> np.ndarray:
        """h̃(σ)² = σ φ'(σ)/φ(σ) − 1 (eq. (4)): the squared relative noise level."""
        return self.h2(np.asarray(sigma, dtype=np.float64))

    def check_admissible(self, sigma_min: float, sigma_max: float, *, n: int = 4001, tol: float = 1e-9) -> None:
        """Raise ``ValueError`` unless φ > 0 and h̃² ≥ −tol (eq. (5)) on a log grid of [sigma_min, sigma_max].

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


def _broadcast(f: ArrayFn) -> ArrayFn:
    """Generated and lambdified constants are scalars: broadcast them to the input's shape, in float64."""

    def g(sigma):
        sigma = np.asarray(sigma, dtype=np.float64)
        with np.errstate(over="ignore"):  # e.g. exp(1/σ) → inf gives the right limit
            return np.broadcast_to(np.asarray(f(sigma), dtype=np.float64), sigma.shape).copy()

    return g


def _registry_expr(name: str) -> sp.Expr:
    from .symbolic.symbols import registry_expr  # sympy only on request

    return registry_expr(name)


def _from_registry(name: str) -> NoiseScaleFunction:
    """Registry NSF (eq. (6)) from the generated closed forms."""
    phi, ell, h2, power, description = _generated.REGISTRY[name]
    return NoiseScaleFunction(
        name=name,
        phi=_broadcast(phi),
        ell=_broadcast(ell),
        h2=_broadcast(h2),
        power=power,
        description=description,
        exact_h2=True,
        expr_source=partial(_registry_expr, name),
    )


def _from_expr(expr: sp.Expr, name: str, description: str = "") -> NoiseScaleFunction:
    """Numeric NSF from a sympy expression in ``sigma`` (ℓ and h̃² derived symbolically, eqs. (4), (9))."""
    import sympy as sp

    from .symbolic.sde import ell, h_tilde_sq, power_exponent
    from .symbolic.symbols import SIGMA

    expr = sp.sympify(expr)
    # accept any symbol *named* sigma
    subs = {s: SIGMA for s in expr.free_symbols if s.name == "sigma" and s != SIGMA}
    expr = expr.subs(subs)
    extra = expr.free_symbols - {SIGMA}
    if extra:
        raise ValueError(f"NSF expression may only depend on sigma, found {sorted(map(str, extra))}")
    lam = lambda e: _broadcast(sp.lambdify(SIGMA, e, modules="numpy"))  # noqa: E731
    return NoiseScaleFunction(
        name=name,
        phi=lam(expr),
        ell=lam(ell(expr)),
        h2=lam(h_tilde_sq(expr)),
        power=power_exponent(expr),
        description=description,
        exact_h2=True,
        expr_source=lambda: expr,
    )


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


# The seven registry NSFs of eq. (6) (official code numbering).
NSF_NAMES: tuple[str, ...] = _generated.NSF_NAMES
DEFAULT_NSF = "er_sde_5"
_CACHE: dict[str, NoiseScaleFunction] = {}

NSFLike = Union[str, "sp.Expr", Callable, NoiseScaleFunction]


def _is_sympy(obj) -> bool:
    """A sympy object? (If sympy is not imported, ``obj`` cannot be one: no import needed to tell.)"""
    sympy = sys.modules.get("sympy")
    return sympy is not None and isinstance(obj, sympy.Basic)


def resolve_nsf(nsf: NSFLike) -> NoiseScaleFunction:
    """Return a :class:`NoiseScaleFunction` for a registry name, a sympy expression in ``sigma``,
    a numpy callable φ(σ), or an existing instance."""
    if isinstance(nsf, NoiseScaleFunction):
        return nsf
    if isinstance(nsf, str):
        if nsf not in _generated.REGISTRY:
            return _from_expr(nsf_expression(nsf), f"phi={nsf}")
        if nsf not in _CACHE:
            _CACHE[nsf] = _from_registry(nsf)
        return _CACHE[nsf]
    if _is_sympy(nsf):  # before callable(): sympy symbols are callable
        return _from_expr(nsf, f"phi={nsf}")
    if callable(nsf):
        return _from_callable(nsf, getattr(nsf, "__name__", "callable"))
    raise TypeError(f"nsf must be a name, a sympy expression in sigma or a callable, got {type(nsf).__name__}")


def nsf_expression(spec: str) -> sp.Expr:
    """A string that is not a registry name, read as a sympy expression in ``sigma`` (e.g. ``"sigma**1.5"``);
    the one parser of NSF strings (API and command line). Imports sympy."""
    import sympy as sp

    from .symbolic.symbols import SIGMA

    unknown = (
        f"unknown noise scale function {spec!r}: neither a registry name ({', '.join(NSF_NAMES)}) "
        "nor a sympy expression in sigma alone"
    )
    try:
        expr = sp.sympify(spec, locals={"sigma": SIGMA})
    except (sp.SympifyError, SyntaxError, TypeError, AttributeError, ValueError) as e:
        raise ValueError(unknown) from e
    if not isinstance(expr, sp.Expr) or expr.free_symbols != {SIGMA}:
        raise ValueError(unknown)
    return expr


def parse_nsf(spec: str):
    """An NSF as the command line and the scheduler configs give it: a registry name (ode, sde, er_sde_1…5),
    returned as is, or a sympy expression in ``sigma`` such as ``sigma**1.5`` (:func:`nsf_expression`)."""
    if spec in NSF_NAMES:
        return spec
    return nsf_expression(spec)


def _power_expr(p: float) -> sp.Expr:
    import sympy as sp

    from .symbolic.symbols import SIGMA

    return SIGMA ** sp.nsimplify(p)


def power_nsf(p: float) -> NoiseScaleFunction:
    """φ = σ^p (h̃² = p − 1, admissible for p ≥ 1), with closed-form coefficients (eq. (15)); its φ, ℓ and
    h̃² are the generated closed forms of the power family."""
    q = float(p)
    return NoiseScaleFunction(
        name=f"power_{p:g}",
        phi=_broadcast(partial(_generated.power_phi, p=q)),
        ell=_broadcast(partial(_generated.power_ell, p=q)),
        h2=_broadcast(partial(_generated.power_h2, p=q)),
        power=q,
        description=f"phi = sigma^{p:g}",
        exact_h2=True,
        expr_source=partial(_power_expr, p),
    )


def __getattr__(name: str):
    """``SIGMA``, the sympy symbol every symbolic NSF is written in, imported on first use (PEP 562)."""
    if name == "SIGMA":
        from .symbolic.symbols import SIGMA

        return SIGMA
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
