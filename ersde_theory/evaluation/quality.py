"""Sample-quality metrics against a Gaussian mixture with known truth, each with a Monte-Carlo standard error.

Every metric is a functional T(P̂_n) of the empirical law of n samples. Its standard error comes from the
delta method: T(P̂_n) − T(P) ≈ (1/n) Σ_i IF(x_i) with the influence function IF (the first variation of T,
centred), so SE = sd(IF)/√n, and for two samplers run on the same seeds the paired difference has
SE = sd(IF_A − IF_B)/√n. Influence functions used:

* Fréchet distance (docs/theory.md eq. 31) to the exact moments (μ, Σ), with the unbiased sample covariance
  Σ̂ = Σ_i q_i q_iᵀ/(n − 1), q_i = x_i − μ̂:  FD = |μ̂ − μ|² + tr(Σ̂ + Σ − 2 (A Σ̂ A)^{1/2}), A = Σ^{1/2};
  IF(x_i) = 2 (μ̂ − μ)·q_i + n/(n − 1) q_iᵀ G q_i − tr(G Σ̂),  G = ∂FD/∂Σ̂ = I − A (A Σ̂ A)^{−1/2} A
  (the factor n/(n − 1) makes the influence values of the unbiased Σ̂ average exactly to 0).
* Sliced W2² over fixed unit directions θ_l against the exact law P (the limit of an infinitely large
  reference sample: each projection θ·P is a 1-D Gaussian mixture whose quantiles and partial moments are
  known): SW2² = mean_l W2²(θ_l·P̂_n, θ_l·P), W2² = ∫_0^1 (F_n^{-1}(u) − G^{-1}(u))² du, computed exactly
  from the sorted projections. IF is the Kantorovich potential f, f' = 2 (y − T(y)) with T the monotone
  map (del Barrio, Giné & Utzet 2005; del Barrio & Loubes 2019), averaged over directions.
* Mode-weight total variation  TV = ½ Σ_k |p̂_k − w_k|, samples assigned to their most responsible component;
  IF(x) = ½ (s_{k(x)} − Σ_k s_k p̂_k), s = sign(p̂ − w).
* For 2-D mixtures with diagonal covariances: KL(q̂ ‖ p) of the histogram q̂ on a square grid (plus one bin
  for everything outside) against the exact bin probabilities p_b (products of normal CDF differences,
  in log space); IF(x) = log(q̂_{b(x)}/p_{b(x)}) − KL.

The delta method breaks down where a metric sits at its noise floor (eq. 32: the value n exact samples give,
which is not 0), so the floor (mean and sd over independent exact sample sets of the same n) is reported
beside every value and its sd is added in quadrature to every standard error; 95 % intervals are the normal
intervals of eq. (33) (:meth:`QualityReference.evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.special
import torch

from .frechet import frechet_distance
from .intervals import normal_interval
from .noise_floor import floor_summary, floor_values

__all__ = [
    "Metric",
    "fd_metric",
    "sliced_w2_metric",
    "mode_tv_metric",
    "hist_kl_metric",
    "QualityReference",
    "paired_difference",
    "to_numpy",
    "gaussian_interval_logprob",
    "unit_directions",
    "projected_quantile_blocks",
]


@dataclass
class Metric:
    """A metric value with its (centred) influence function on the n samples."""

    value: float
    influence: np.ndarray

    @property
    def se(self) -> float:
        """Delta-method standard error sd(IF)/√n (for the normal interval of eq. 33)."""
        return float(np.sqrt(np.var(self.influence) / self.influence.size))


def paired_difference(a: Metric, b: Metric) -> tuple[float, float]:
    """(T_A − T_B, its delta-method SE sd(IF_A − IF_B)/√n) for two samplers run on the same seeds (sample i
    of A and of B share seed i); the 95 % interval is eq. (33)'s normal interval."""
    if a.influence.shape != b.influence.shape:
        raise ValueError("paired differences need the same number of samples from both samplers")
    d = a.influence - b.influence
    return a.value - b.value, float(np.sqrt(np.var(d) / d.size))


def to_numpy(x) -> np.ndarray:
    x = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    return x.reshape(x.shape[0], -1)


# ------------------------------------------------------------------------------------------ FD
def fd_metric(samples, mean, cov) -> Metric:
    """Eq. (31) between the Gaussian fit of ``samples`` (unbiased covariance) and N(mean, cov), with its
    influence function (module docstring)."""
    x = to_numpy(samples)
    n = x.shape[0]
    mu, sig = np.asarray(mean, dtype=np.float64).ravel(), np.atleast_2d(np.asarray(cov, dtype=np.float64))
    m = x.mean(0)
    q = x - m
    s_hat = np.atleast_2d(np.cov(x, rowvar=False))
    value = frechet_distance(m, s_hat, mu, sig)
    a = np.real(scipy.linalg.sqrtm(sig))
    w, v = np.linalg.eigh(a @ s_hat @ a)
    inv_sqrt = (v / np.sqrt(np.maximum(w, 1e-300))) @ v.T
    g = np.eye(len(mu)) - a @ inv_sqrt @ a
    infl = 2 * q @ (m - mu) + n / (n - 1) * np.einsum("ij,jk,ik->i", q, g, q) - np.trace(g @ s_hat)
    return Metric(value, infl)


# ------------------------------------------------------------------------------------------ SW2
def unit_directions(dim: int, n_dir: int, seed: int = 0) -> np.ndarray:
    """(dim, n_dir) unit vectors: evenly spaced angles in [0, π) for dim = 2, Gaussian draws otherwise."""
    if dim == 2:
        ang = np.pi * np.arange(n_dir) / n_dir
        return np.stack([np.cos(ang), np.sin(ang)])
    d = np.random.default_rng(seed).normal(size=(dim, n_dir))
    return d / np.linalg.norm(d, axis=0, keepdims=True)


def _mixture_cdf(q: np.ndarray, w: np.ndarray, m: np.ndarray, sd: np.ndarray, moments: bool = False):
    """For Y ~ Σ_k w_k N(m_k, sd_k²): (P(Y ≤ q), density at q), or with ``moments`` the partial moments
    (E[Y 1{Y ≤ q}], E[Y² 1{Y ≤ q}]) = (mΦ(z) − sφ(z), (m² + s²)Φ(z) − s(m + q)φ(z)) mixed, z = (q − m)/s."""
    z = (q[:, None] - m) / sd
    cdf, pdf = scipy.special.ndtr(z), np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    if moments:
        return (m * cdf - sd * pdf) @ w, ((m * m + sd * sd) * cdf - sd * (m + q[:, None]) * pdf) @ w
    return cdf @ w, (pdf / sd) @ w


def projected_quantile_blocks(w, m, sd, n: int):
    """The exact law G = Σ_k w_k N(m_k, sd_k²) cut into n blocks of probability 1/n: the quantiles
    q_k = G^{-1}(k/n) (k = 1…n−1), the block means c_k = n ∫_{(k−1)/n}^{k/n} G^{-1}(u) du, and
    V = Σ_k ∫_block (G^{-1}(u) − c_k)² du, so that for n sorted points y_(k)
    W2²(P̂_n, G) = mean_k (y_(k) − c_k)² + V  exactly."""
    w, m, sd = (np.asarray(a, dtype=np.float64) for a in (w, m, sd))
    u = np.arange(1, n) / n
    grid = np.linspace(np.min(m - 12 * sd), np.max(m + 12 * sd), min(1 << 15, max(2048, 4 * n)))
    q = np.interp(u, _mixture_cdf(grid, w, m, sd)[0], grid)
    step = grid[1] - grid[0]
    for _ in range(4):  # Newton, kept inside the grid cell
        p0, dens = _mixture_cdf(q, w, m, sd)
        q = np.clip(q - (p0 - u) / np.maximum(dens, 1e-300), q - step, q + step)
    p1, _ = _mixture_cdf(q, w, m, sd, moments=True)
    ey, ey2 = float(w @ m), float(w @ (m * m + sd * sd))
    c = n * np.diff(np.concatenate([[0.0], p1, [ey]]))
    return q, c, max(ey2 - float(np.sum(c * c)) / n, 0.0)


def _w2_1d(y: np.ndarray, q: np.ndarray, c: np.ndarray, v: float):
    """W2² between n points y and the exact law given by :func:`projected_quantile_blocks`, and the
    sample's Kantorovich potential f (f' = 2 (y − T(y)), T(y) = q_k between y_(k) and y_(k+1)), centred."""
    order = np.argsort(y)
    ys = y[order]
    w2 = float(np.mean((ys - c) ** 2)) + v
    df = (ys[1:] - ys[:-1]) * (ys[1:] + ys[:-1] - 2.0 * q)
    f = np.empty(y.size)
    f[order] = np.concatenate([[0.0], np.cumsum(df)])
    return w2, f - f.mean()


def sliced_w2_metric(samples, blocks: list, directions: np.ndarray) -> Metric:
    """SW2² = mean over the unit ``directions`` (D, L) of W2²(θ·P̂_n, θ·P), P the exact law; ``blocks[l]``
    = :func:`projected_quantile_blocks` of θ_l·P for this n."""
    x = to_numpy(samples)
    proj = x @ directions
    vals, infl = [], np.zeros(x.shape[0])
    for j, (q, c, v) in enumerate(blocks):
        if c.size != x.shape[0]:
            raise ValueError(f"blocks were made for n = {c.size}, got {x.shape[0]} samples")
        w2, f = _w2_1d(proj[:, j], q, c, v)
        vals.append(w2)
        infl += f
    return Metric(float(np.mean(vals)), infl / len(blocks))


# ------------------------------------------------------------------------------------------ modes
def mode_tv_metric(modes: np.ndarray, weights: np.ndarray) -> Metric:
    """½ Σ_k |p̂_k − w_k| for integer mode labels ``modes`` (n,) and the true weights."""
    modes = np.asarray(modes)
    w = np.asarray(weights, dtype=np.float64)
    p = np.bincount(modes, minlength=w.size) / modes.size
    s = np.sign(p - w)
    return Metric(0.5 * float(np.abs(p - w).sum()), 0.5 * (s[modes] - s @ p))


# ------------------------------------------------------------------------------------------ KL
def gaussian_interval_logprob(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """log(Φ(hi) − Φ(lo)) for lo < hi, accurate in both tails (log_ndtr, mirrored for lo > 0)."""
    lo, hi = np.broadcast_arrays(np.asarray(lo, float), np.asarray(hi, float))
    flip = lo > 0
    a = np.where(flip, -hi, lo)
    b = np.where(flip, -lo, hi)
    lb, la = scipy.special.log_ndtr(b), scipy.special.log_ndtr(a)
    return lb + np.log1p(-np.exp(la - lb))


def _axis_aligned_std(gm) -> np.ndarray | None:
    """Per-component, per-axis stds (K, D) if every covariance is diagonal, else None."""
    cov = gm.covariances.cpu().numpy()
    diag = np.diagonal(cov, axis1=1, axis2=2)
    off = cov - np.einsum("ki,ij->kij", diag, np.eye(gm.D))
    return np.sqrt(diag) if np.all(np.abs(off) <= 1e-12 * diag.max()) else None


def _hist_logp(gm, edges: np.ndarray) -> tuple[np.ndarray, float]:
    """log p_b of the exact mixture for the square grid ``edges`` (per axis), and log p(outside)."""
    sd = _axis_aligned_std(gm) if gm.D == 2 else None
    if sd is None:
        raise ValueError("the histogram KL needs a 2-D mixture with diagonal covariances")
    mu, logw = gm.means.cpu().numpy(), gm.log_weights.cpu().numpy()
    per_axis = []
    for d in range(2):
        z = (edges[None, :] - mu[:, d : d + 1]) / sd[:, d : d + 1]  # (K, nb+1)
        per_axis.append(gaussian_interval_logprob(z[:, :-1], z[:, 1:]))  # (K, nb)
    logp = scipy.special.logsumexp(logw[:, None, None] + per_axis[0][:, :, None] + per_axis[1][:, None, :], axis=0)
    inside = [
        np.exp(gaussian_interval_logprob((edges[0] - mu[:, d]) / sd[:, d], (edges[-1] - mu[:, d]) / sd[:, d]))
        for d in range(2)
    ]
    tails = [
        scipy.special.ndtr((edges[0] - mu[:, d]) / sd[:, d]) + scipy.special.ndtr(-(edges[-1] - mu[:, d]) / sd[:, d])
        for d in range(2)
    ]
    p_out = np.sum(np.exp(logw) * (tails[0] + inside[0] * tails[1]))
    return logp, float(np.log(max(p_out, 1e-300)))


def hist_kl_metric(samples, logp: np.ndarray, log_p_out: float, edges: np.ndarray) -> Metric:
    """KL(q̂ ‖ p) of the 2-D histogram of ``samples`` on ``edges`` (plus an outside bin)."""
    x = to_numpy(samples)
    nb = edges.size - 1
    idx = [np.searchsorted(edges, x[:, d], side="right") - 1 for d in range(2)]
    inside = (idx[0] >= 0) & (idx[0] < nb) & (idx[1] >= 0) & (idx[1] < nb)
    flat = np.where(inside, idx[0].clip(0, nb - 1) * nb + idx[1].clip(0, nb - 1), nb * nb)
    q = np.bincount(flat, minlength=nb * nb + 1) / x.shape[0]
    lp = np.append(logp.ravel(), log_p_out)
    occ = q > 0
    kl = float(np.sum(q[occ] * (np.log(q[occ]) - lp[occ])))
    return Metric(kl, np.log(q[flat]) - lp[flat] - kl)


# ------------------------------------------------------------------------------------------ reference
class QualityReference:
    """Everything needed to score n samples of ``gm``: exact moments, the exact projected laws on ``n_dir``
    directions cut into n quantile blocks, histogram bin probabilities (2-D) and the noise floor (eq. 32) of
    each metric at n."""

    def __init__(
        self,
        gm,
        n: int,
        *,
        n_dir: int | None = None,
        hist_lim: float = 2.6,
        hist_bins: int = 104,
        floor_reps: int = 5,
        seed: int = 1234,
    ):
        self.gm, self.n = gm, int(n)
        self.mean, self.cov = gm.mean().cpu().numpy(), gm.cov().cpu().numpy()
        self.weights = gm.weights.cpu().numpy()
        g = torch.Generator(device=gm.means.device).manual_seed(seed)
        self.directions = unit_directions(gm.D, n_dir or (32 if gm.D == 2 else 128), seed)
        means, covs = gm.means.cpu().numpy(), gm.covariances.cpu().numpy()
        self.blocks = [
            projected_quantile_blocks(self.weights, means @ th, np.sqrt(np.einsum("i,kij,j->k", th, covs, th)), self.n)
            for th in self.directions.T
        ]
        self.hist = None
        if gm.D == 2 and _axis_aligned_std(gm) is not None:
            edges = np.linspace(-hist_lim, hist_lim, hist_bins + 1)
            self.hist = (*_hist_logp(gm, edges), edges)
        floors = floor_values(lambda: gm.sample(self.n, generator=g), self.raw, floor_reps)
        self.floor = {k: floor_summary([f[k].value for f in floors]) for k in floors[0]}

    @property
    def names(self) -> list[str]:
        return ["fd", "sw2", "mode_tv"] + (["hist_kl"] if self.hist is not None else [])

    def raw(self, samples) -> dict[str, Metric]:
        """All metrics of ``samples`` (n of them) with their influence functions."""
        x = samples if isinstance(samples, torch.Tensor) else torch.as_tensor(samples)
        if x.shape[0] != self.n:
            raise ValueError(f"expected {self.n} samples, got {x.shape[0]}")
        xn = to_numpy(x)
        out = {
            "fd": fd_metric(xn, self.mean, self.cov),
            "sw2": sliced_w2_metric(xn, self.blocks, self.directions),
            "mode_tv": mode_tv_metric(self.gm.mode_of(x.to(self.gm.means)).cpu().numpy(), self.weights),
        }
        if self.hist is not None:
            out["hist_kl"] = hist_kl_metric(xn, *self.hist)
        return out

    def evaluate(self, samples) -> tuple[dict[str, dict], dict[str, Metric]]:
        """(summary, raw): summary[name] = value, se (delta method ⊕ floor sd), 95 % CI (eq. 33), floor
        mean/sd (eq. 32)."""
        raw = self.raw(samples)
        summary = {}
        for k, m in raw.items():
            se = float(np.hypot(m.se, self.floor[k][1]))
            summary[k] = dict(
                value=m.value, se=se, ci=normal_interval(m.value, se), floor=self.floor[k][0], floor_sd=self.floor[k][1]
            )
        return summary, raw
