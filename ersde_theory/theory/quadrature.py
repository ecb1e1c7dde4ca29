"""Vectorised Gauss–Legendre quadrature in u = log σ, used once per schedule (never per step): the integrals
Δℓ = ∫ h̃² dσ/σ of docs/theory.md eq. (9) and the sign-definite C_1, C_2 of eq. (14)."""

from __future__ import annotations

import numpy as np

_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)
_GAP_X, _GAP_W = np.polynomial.legendre.leggauss(4)  # for the short gaps between nodes
PANEL = 0.25  # max panel width in log σ


def log_nodes(t: np.ndarray, s: np.ndarray):
    """Nodes σ (N, P, Q) and weights for ∫_{t_j}^{s_j} f(σ) du, u = log σ, on P panels of width ≤ PANEL
    (the same P for every interval, so everything is one array operation).

    The interval length is log(s/t), not log s − log t (no cancellation for small steps), and the nodes
    are t·exp(v) with v the offset in log σ from t."""
    L = np.log1p((s - t) / t)
    panels = max(1, int(np.ceil(np.max(L, initial=0.0) / PANEL)))
    edges = L[:, None] * np.linspace(0, 1, panels + 1)[None, :]
    half = 0.5 * (edges[:, 1:] - edges[:, :-1])
    v = 0.5 * (edges[:, 1:] + edges[:, :-1])[..., None] + half[..., None] * _GL_X
    return t[:, None, None] * np.exp(v), half[..., None] * _GL_W


def integrate_log(f, t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """∫_{t_j}^{s_j} f(σ) dσ/σ for each j (f maps an array of σ to an array of the same shape)."""
    sig, w = log_nodes(t, s)
    return np.sum(w * f(sig), axis=(1, 2))


def cumulative_integrate_log(f, t: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """∫_{t_j}^{nodes[j, k]} f(σ) dσ/σ for nodes increasing along the last axis (shape (N, K)): 4-point
    Gauss–Legendre on each gap between consecutive nodes, summed cumulatively (for a sign-definite f
    the sums never cancel). Meant for the dense nodes of :func:`log_nodes` (gaps ≲ 0.03 in log σ)."""
    lo = np.log(np.concatenate([t[:, None], nodes[:, :-1]], axis=1))
    half = 0.5 * (np.log(nodes) - lo)
    u = (lo + half)[..., None] + half[..., None] * _GAP_X
    gaps = np.sum(half[..., None] * _GAP_W * f(np.exp(u)), axis=-1)
    return np.cumsum(gaps, axis=-1)
