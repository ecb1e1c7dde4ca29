"""Derivations that verify and render themselves.

A :class:`Derivation` is a titled list of :class:`Identity` steps ``lhs = rhs`` (or ``lhs ≥ rhs``,
``lhs > rhs``). ``verify()`` discharges the proof obligations: sympy simplifies every ``lhs − rhs`` of an
equation to zero, and its assumption system decides the sign of ``lhs − rhs`` of an inequality (from the
declared assumptions of the symbols, e.g. positive σ, non-negative h̃²). ``latex()`` renders the steps as
an ``aligned`` block for notebooks and figure captions (``_repr_latex_`` displays them in Jupyter).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

_SIMPLIFIERS = (
    lambda e: sp.expand(e),
    lambda e: sp.cancel(sp.together(sp.expand(e))),
    lambda e: sp.simplify(e),
    lambda e: sp.simplify(sp.expand_log(sp.powsimp(sp.expand(e), force=True), force=True)),
)


def simplifies_to_zero(expr) -> bool:
    """True when sympy reduces ``expr`` to exactly 0 (a cascade: expand, cancel, simplify, log/power
    expansion). False means "not shown", not "non-zero"."""
    expr = sp.sympify(expr).doit(integrals=False).as_dummy()  # canonical bound variables; no integration
    for f in _SIMPLIFIERS:
        if f(expr) == 0:
            return True
    return False


_REL_LATEX = {"=": "=", ">=": r"\geq", ">": ">"}
_TEXT_ESCAPES = {"_": r"\_", "^": r"\^{}", "&": r"\&", "%": r"\%", "#": r"\#", "|": r"\vert{}"}


def latex_text(s: str) -> str:
    """Plain text made safe for ``\\text{…}`` (underscores etc. escaped)."""
    return "".join(_TEXT_ESCAPES.get(ch, ch) for ch in s)


@dataclass(frozen=True)
class Identity:
    """One step ``lhs rel rhs`` with rel in {"=", ">=", ">"}; ``check=False``: a definition (rendered only)."""

    label: str
    lhs: sp.Expr
    rhs: sp.Expr
    note: str = ""
    check: bool = True
    rel: str = "="

    @property
    def residual(self) -> sp.Expr:
        return sp.sympify(self.lhs) - sp.sympify(self.rhs)

    def holds(self) -> bool:
        if not self.check:
            return True
        if self.rel == "=":
            return simplifies_to_zero(self.residual)
        res = sp.simplify(self.residual.doit(integrals=False))
        return (res.is_nonnegative if self.rel == ">=" else res.is_positive) is True

    def latex(self) -> str:
        note = rf" && \text{{{latex_text(self.note)}}}" if self.note else ""
        return rf"{sp.latex(self.lhs)} &{_REL_LATEX[self.rel]} {sp.latex(self.rhs)}{note}"


@dataclass(repr=False)
class Derivation:
    """A titled chain of identities; ``verify()`` proves every checked step, ``latex()`` renders it."""

    title: str
    steps: list[Identity] = field(default_factory=list)
    results: dict = field(default_factory=dict)  # named outputs (expressions) for further use

    def add(self, label, lhs, rhs, note: str = "", check: bool = True, rel: str = "=") -> Derivation:
        if rel not in _REL_LATEX:
            raise ValueError(f"rel must be one of {tuple(_REL_LATEX)}, got {rel!r}")
        self.steps.append(Identity(label, lhs, rhs, note, check, rel))
        return self

    def failures(self) -> list[str]:
        """Labels of the checked steps sympy could not reduce to zero."""
        return [s.label for s in self.steps if not s.holds()]

    def verify(self) -> bool:
        return not self.failures()

    def latex(self) -> str:
        body = r" \\ ".join(s.latex() for s in self.steps)
        return r"\begin{aligned}" + body + r"\end{aligned}"

    def _repr_latex_(self) -> str:
        return rf"$\textbf{{{latex_text(self.title)}}}$" + "\n$$" + self.latex() + "$$"

    def __repr__(self) -> str:
        return f"Derivation({self.title!r}, {len(self.steps)} steps)"

    def __getitem__(self, label: str) -> Identity:
        for s in self.steps:
            if s.label == label:
                return s
        raise KeyError(label)


def latex_list(name: str, exprs) -> str:
    """``name_0 = e_0 \\ name_1 = e_1 …`` as an aligned block (e.g. the Taylor coefficients)."""
    rows = [rf"{name}_{{{n}}} &= {sp.latex(e)}" for n, e in enumerate(exprs)]
    return r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"
