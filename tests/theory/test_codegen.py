"""Theory layer, generated code: the committed closed forms (theory/_generated.py) are what the symbolic
derivation generates and equal it in 40-digit mpmath (φ, ℓ of docs/theory.md eq. (9), h̃² of eq. (4)); the
numeric NSF registry agrees with the symbolic h̃²; the numeric path stays sympy-free and the symbolic layer
does not import the numeric registry."""

import numpy as np
import pytest
import sympy as sp

from ersde_theory import NSF_NAMES, power_nsf, resolve_nsf
from ersde_theory.theory import symbolic as S
from ersde_theory.theory.symbolic.symbols import SIGMA


def test_generated_module_is_up_to_date():
    """The committed ``theory/_generated.py`` is exactly what the symbolic derivation generates
    (regenerate with ``python -m ersde_theory.theory.symbolic.codegen``)."""
    from ersde_theory.theory.symbolic import codegen

    assert codegen.GENERATED_PATH.read_text(encoding="utf-8") == codegen.generate()


def _assert_close_to_mpmath(fn, expr, sig, rel=1e-13):
    import mpmath as mp

    from ersde_theory.theory.symbolic.symbols import SIGMA as S_

    ref_fn = sp.lambdify(S_, expr, modules="mpmath")
    with np.errstate(over="ignore"):  # exp(1/σ) → inf is the right limit
        got = np.broadcast_to(np.asarray(fn(sig), dtype=np.float64), sig.shape)
    with mp.workdps(40):
        ref = np.array([float(ref_fn(mp.mpf(float(s)))) for s in sig])
    np.testing.assert_allclose(got, ref, rtol=rel, atol=1e-300)


@pytest.mark.parametrize("name", NSF_NAMES)
def test_generated_closed_forms_equal_the_derivation_in_mpmath(name):
    """φ, ℓ = log(φ/σ) (eq. (9)) and h̃² (eq. (4)) of the generated module against the sympy expressions of
    the symbolic layer evaluated with 40-digit mpmath."""
    from ersde_theory.theory import _generated
    from ersde_theory.theory.symbolic.sde import ell, h_tilde_sq
    from ersde_theory.theory.symbolic.symbols import registry_expr

    sig = np.geomspace(1e-3, 1e2, 301)
    phi, ell_fn, h2, _, _ = _generated.REGISTRY[name]
    expr = registry_expr(name)
    for fn, e in ((phi, expr), (ell_fn, ell(expr)), (h2, h_tilde_sq(expr))):
        _assert_close_to_mpmath(fn, e, sig)
    f = resolve_nsf(name)  # the registry wraps the generated functions
    _assert_close_to_mpmath(f.h_tilde_sq, h_tilde_sq(expr), sig)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 2.3, 3.7])
def test_generated_power_family_equals_the_derivation_in_mpmath(p):
    from ersde_theory.theory.symbolic.sde import ell, h_tilde_sq
    from ersde_theory.theory.symbolic.symbols import SIGMA as S_

    sig = np.geomspace(1e-3, 1e2, 101)
    f = power_nsf(p)
    expr = S_ ** sp.nsimplify(p)
    assert f.expr == expr
    for fn, e in ((f.phi, expr), (f.ell, ell(expr)), (f.h_tilde_sq, h_tilde_sq(expr))):
        _assert_close_to_mpmath(fn, e, sig, rel=2e-13)


def test_numeric_path_does_not_import_sympy():
    """``import ersde_theory``, sampling and the coefficients of every registry NSF and of power_nsf stay
    sympy- and mpmath-free; SIGMA (and .expr) import sympy on first use."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, torch, ersde_theory as et\n"
        "sig = et.get_sigmas_karras(5, 0.002, 80.0)\n"
        "for n in et.NSF_NAMES:\n"
        "    et.ersde_coefficients(sig, n)\n"
        "    et.sample_er_sde(lambda x, s: x * 0, torch.ones(2, 2, dtype=torch.float64), sig, nsf=n, disable=True)\n"
        "et.ersde_coefficients(sig, et.power_nsf(1.7))\n"
        "assert 'sympy' not in sys.modules and 'mpmath' not in sys.modules, 'sympy imported'\n"
        "assert str(et.SIGMA) == 'sigma' and 'sympy' in sys.modules\n"
        "assert str(et.resolve_nsf('er_sde_5').expr) == 'sigma*(exp(sigma**(3/10)) + 10)'\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**__import__("os").environ, "PYTHONPATH": str(root)}
    res = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_symbolic_layer_does_not_import_the_numeric_registry():
    """No module of ``theory/symbolic`` imports ``theory.nsf`` (module level or inside functions)."""
    import ast
    from pathlib import Path

    import ersde_theory.theory.symbolic as S

    for path in Path(S.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                target = "." * node.level + (node.module or "")
                names = [a.name for a in node.names]
                assert not (node.level >= 2 or target.startswith("ersde_theory")), (path.name, target, names)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("ersde_theory") for a in node.names), path.name


def test_nsf_h_tilde_sq_is_the_symbolic_one():
    sig = np.geomspace(0.002, 80, 50)
    for name in NSF_NAMES:
        h2 = sp.lambdify(SIGMA, S.h_tilde_sq(name), "numpy")(sig)
        np.testing.assert_allclose(
            resolve_nsf(name).h_tilde_sq(sig), np.broadcast_to(h2, sig.shape), rtol=0, atol=1e-14
        )
    assert power_nsf(1.5).power == 1.5
