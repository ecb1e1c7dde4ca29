"""Vectorised Gauss–Legendre quadrature in u = log σ, used once per schedule (never per step)."""
from __future__ import annotations

import numpy as np

_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)
PANEL = 0.25  # max panel width in log σ


def log_nodes(t: np.ndarray, s: np.ndarray):
    """Nodes σ (N, P, Q) and weights for ∫_{t_j}^{s_j} f(σ) du, u = log σ, on P panels of width ≤ PANEL
    (the same P for every interval, so everything is one array operation)."""
    lt, ls = np.log(t), np.log(s)
    panels = max(1, int(np.ceil(np.max(ls - lt, initial=0.0) / PANEL)))
    edges = lt[:, None] + (ls - lt)[:, None] * np.linspace(0, 1, panels + 1)[None, :]
    half = 0.5 * (edges[:, 1:] - edges[:, :-1])
    u = 0.5 * (edges[:, 1:] + edges[:, :-1])[..., None] + half[..., None] * _GL_X
    return np.exp(u), half[..., None] * _GL_W


def integrate_log(f, t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """∫_{t_j}^{s_j} f(σ) dσ/σ for each j (f maps an array of σ to an array of the same shape)."""
    sig, w = log_nodes(t, s)
    return np.sum(w * f(sig), axis=(1, 2))
