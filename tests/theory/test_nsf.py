"""Theory layer, the numeric NSF registry (theory/nsf.py): the seven official noise scale functions and
power_nsf, h̃² = σφ'/φ − 1 (docs/theory.md eq. (4)), admissibility h̃² ≥ 0 (eq. (5)) and bad specs."""

import numpy as np
import pytest
import sympy as sp

from ersde_theory import NSF_NAMES, SIGMA, power_nsf, resolve_nsf


def test_registry_has_the_seven_official_nsfs_and_default():
    assert NSF_NAMES == ("ode", "sde", "er_sde_1", "er_sde_2", "er_sde_3", "er_sde_4", "er_sde_5")
    f = resolve_nsf("er_sde_5")
    s = np.array([0.002, 1.0, 80.0])
    np.testing.assert_allclose(f(s), s * (np.exp(s**0.3) + 10), rtol=1e-15)


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 2.5, 3.7])
def test_power_law_h_tilde_sq_is_p_minus_one(p):
    s = np.geomspace(1e-3, 1e2, 50)
    f = power_nsf(p)
    assert f.power == pytest.approx(p)
    np.testing.assert_allclose(f.h_tilde_sq(s), p - 1, atol=1e-13)


@pytest.mark.parametrize("name", NSF_NAMES)
def test_h_tilde_sq_matches_independent_finite_difference(name):
    f = resolve_nsf(name)
    s = np.geomspace(0.002, 80, 37)
    # d log φ / d log σ − 1 by a central difference of log φ itself (not of the code's ell)
    h = 1e-5
    fd = (np.log(f(s * np.exp(h))) - np.log(f(s * np.exp(-h)))) / (2 * h) - 1
    np.testing.assert_allclose(f.h_tilde_sq(s), fd, atol=1e-8)


def test_sympy_expression_and_callable_inputs_agree_with_registry():
    s = np.geomspace(0.002, 80, 20)
    ref = resolve_nsf("er_sde_5")
    other_sigma = sp.Symbol("sigma")  # a symbol merely *named* sigma is accepted
    e = resolve_nsf(other_sigma * (sp.exp(other_sigma ** sp.Rational(3, 10)) + 10))
    c = resolve_nsf(lambda x: x * (np.exp(x**0.3) + 10))
    np.testing.assert_allclose(e.h_tilde_sq(s), ref.h_tilde_sq(s), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(c.h_tilde_sq(s), ref.h_tilde_sq(s), atol=1e-9)
    np.testing.assert_allclose(c.delta_ell(s[:-1], s[1:]), ref.delta_ell(s[:-1], s[1:]), rtol=1e-10)


def test_admissibility_error_names_sigma():
    # er_sde_4 stops being admissible near σ ≈ 1.03e3 (σφ'/φ = 0.9 + 1.5x/((1+x)ln(1+x)), x = 100σ^1.5)
    f = resolve_nsf("er_sde_4")
    f.check_admissible(0.002, 80)
    with pytest.raises(ValueError, match=r"not admissible.*sigma=10[23]\d"):
        f.check_admissible(0.002, 5000)
    with pytest.raises(ValueError, match="not admissible"):
        resolve_nsf(SIGMA ** sp.Rational(1, 2)).check_admissible(0.1, 1)


def test_non_positive_nsf_is_rejected():
    with pytest.raises(ValueError, match="not positive"):
        resolve_nsf(lambda x: x - 1.0).check_admissible(0.002, 80)


def test_bad_nsf_specs():
    with pytest.raises(ValueError, match="unknown noise scale function"):
        resolve_nsf("er_sde_9")
    with pytest.raises(ValueError, match="only depend on sigma"):
        resolve_nsf(SIGMA * sp.Symbol("a"))
    with pytest.raises(TypeError):
        resolve_nsf(3.0)


def test_admissibility_is_checked_up_to_and_at_sigma_max():
    """φ = σ up to 79.99, then decaying: h̃² < 0 only within 0.01 of σ_max = 80, where the log grid's last interior
    point (79.79) does not reach; only the end point σ_max itself catches it."""
    import numpy as np

    from ersde_theory.theory.nsf import resolve_nsf

    def phi(s):
        s = np.asarray(s, dtype=np.float64)
        return s * np.exp(-50.0 * np.maximum(s - 79.99, 0.0))

    nsf = resolve_nsf(phi)
    nsf.check_admissible(0.002, 79.8)
    with pytest.raises(ValueError, match="not admissible"):
        nsf.check_admissible(0.002, 80.0)
