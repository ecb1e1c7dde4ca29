"""Studies layer, the verification report's FD table (studies/verification.py): FD of n samples beside FD_∞
(docs/theory.md eq. (52)) with its t-interval over blocks (eq. (33)), in the data and in the Markdown."""

import numpy as np
import pytest

from ersde_theory.studies.verification import fd_table, verification_markdown

pytestmark = pytest.mark.usefixtures("one_thread")


def test_fd_table_reports_fd_infinity_beside_fd():
    fd = fd_table(n=5000, nfes=(10,))
    assert fd["blocks"] == 5 and [r["order"] for r in fd["rows"]] == [1, 2, 3]
    for r in fd["rows"]:
        assert np.isfinite([r["fd_inf"], r["fd_inf_ci95"]]).all() and r["fd_inf_ci95"] > 0
        assert r["fd_inf"] - r["fd_inf_ci95"] < r["fd"]  # the interval for the true FD reaches below FD_n
    data = dict(coefficient_errors=[], vp_ve_max_abs_diff={}, fd_ring_2d=fd)
    md = verification_markdown(data)
    assert "| solver | NFE | FD | (FD − floor)/sd | FD_∞ ± 95 % CI |" in md and "over 5 blocks" in md
