"""Theory layer, multistep derivative estimates (theory.symbolic.multistep): the divided differences D1, D2
(docs/theory.md eq. (23)) and their leading errors (eq. (24)), the corrected estimates (eqs. (25)–(26)), the
implied local and global orders of ER-SDE-Solver-2/3 (eq. (17)), and the series of C_n (eq. (12)) against the
coefficient module."""

import numpy as np
import pytest
import sympy as sp

from ersde_theory import ersde_coefficients, get_sigmas_karras
from ersde_theory.theory import symbolic as S
from ersde_theory.theory.symbolic import multistep as M
from ersde_theory.theory.symbolic.symbols import SIGMA
from tests.helpers import fit_slope


def test_divided_differences_orders_and_karras_errors():
    d = S.divided_difference_derivation()
    assert d.failures() == []
    assert d.results["orders"] == dict(D1=1, D2=1, D1_corrected=2)
    sd = 0.5
    xf = sd**2 / (SIGMA**2 + sd**2)
    f, df, d2f, d3f = (sp.lambdify(SIGMA, sp.diff(xf, SIGMA, j), "numpy") for j in range(4))
    maxerr = {}
    for n in (40, 80, 160, 320):
        e = S.grid_errors(get_sigmas_karras(n, 0.002, 80.0).numpy(), f, df, d2f, d3f)
        maxerr[n] = {k: np.abs(e[k]).max() for k in ("D1", "D2", "D1_corrected")}
        if n == 320:  # the predicted leading terms explain the actual errors
            for k, lead in (("D1", "D1_lead"), ("D2", "D2_lead"), ("D1_corrected", "D1_corrected_lead")):
                big = np.abs(e[lead]) > 1e-3 * np.abs(e[lead]).max()
                assert np.median(e[k][big] / e[lead][big]) == pytest.approx(1.0, abs=0.1)
    ns = np.array(list(maxerr))
    assert -fit_slope(ns, [maxerr[n]["D1"] for n in ns]) == pytest.approx(1.0, abs=0.15)
    assert -fit_slope(ns, [maxerr[n]["D2"] for n in ns]) == pytest.approx(1.0, abs=0.15)
    assert -fit_slope(ns, [maxerr[n]["D1_corrected"] for n in ns]) == pytest.approx(2.0, abs=0.2)


def test_symbolic_derivation():
    assert all(v == 0 for v in M.corrected_identity().values())
    assert M.implied_orders("published", 3)["global_order"] == 2
    assert M.implied_orders("corrected", 3)["global_order"] == 3
    assert M.implied_orders("published", 2)["global_order"] == 2
    assert M.leading_term(M.start_local_error(False))[0] == 2 and M.leading_term(M.start_local_error(True))[0] == 3
    assert M.leading_term(M.truncation_error("published", 1))[0] == 1
    assert M.leading_term(M.truncation_error("corrected", 1))[0] == 2
    # every stored output enters a step with an O(h) weight
    assert all(M.leading_term(w)[0] == 1 for w in M.stored_output_weights("corrected", 3))
    # generic φ: C_1 ≈ −φ'/(2φ) h², and the corrected local error keeps h^4 with 1/σ → φ'/φ
    phi_s = sp.Function("phi", positive=True)(M.s)
    q, c = M.leading_term(M.step_coefficient_series(1, 3, None))
    assert q == 2 and sp.simplify(c + sp.diff(phi_s, M.s) / (2 * phi_s)) == 0
    assert M.leading_term(M.local_error("corrected", 3, phi=None))[0] == 4
    assert M.multistep_derivation().verify()


@pytest.mark.parametrize("nsf", ["ode", "er_sde_5"])
def test_coefficient_series_match_the_coefficient_module(nsf):
    """C_n series (symbolic layer) against the coefficient module (closed form / Gauss–Legendre)."""
    sv, hv = 1.3, 0.02
    c = ersde_coefficients([sv, sv - hv], nsf)
    for n, arr in ((1, c.c1), (2, c.c2)):
        series = float(M.step_coefficient_series(n, 5, nsf).subs({M.s: sv, M.h: hv}))
        assert series == pytest.approx(float(arr[0]), rel=(hv / sv) ** (5 - n))
