"""One Brownian path, two views: Brownian increments for the reference integrator and exact ER-SDE step noise.

Time. The ER SDE (docs/theory.md eq. (3)) written in τ = log(σ_0/σ) (increasing while σ decreases) is eq. (11),

    dx = (1 + h̃²(σ)) (x_θ(x, σ) − x) dτ + g(σ) dW(τ),      g(σ) = σ sqrt(2 h̃²(σ)),          (ER-τ)

with W a standard Brownian motion in τ. (From σ-time: the drift (1 + h̃²)/σ (x − x_θ) dσ with dσ = −σ dτ; the
noise h̃ g_VE dw̄ has variance h̃² · 2σ |dσ| = 2σ²h̃² dτ.) Its linear part −(1 + h̃²) x dτ integrates to φ(σ),
so over a step σ_s → σ_t the exact noise term is the Wiener integral

    ξ[s, t] = ∫_{τ_s}^{τ_t} (φ_t/φ(σ(τ))) g(σ(τ)) dW(τ),    Var = σ_t² − σ_s² r²,  r = r(s, t) = φ_t/φ_s,   (XI)

(Itô isometry with d(σ²/φ²)/dσ = −2σh̃²/φ², eq. (8)) and, since r(s, t) = r(s, m) r(m, t), eq. (10):

    ξ[s, t] = r(m, t) ξ[s, m] + ξ[m, t].                                                         (COMPOSE)

Fine grid. On every interval j of a fine σ grid (τ_j → τ_{j+1}, length h_j) the path is described by
three independent N(0, 1) numbers: the coefficients Z0, Z1 of the white noise dW on the orthonormal
Legendre polynomials P̂0 = 1/sqrt(h), P̂1 = sqrt(3/h) (2(τ − τ_j)/h − 1), and R, the coefficient of the
part of the kernel of (XI) orthogonal to both. Then exactly

    ΔW_j = sqrt(h) Z0,   I10_j = ∫ (τ_{j+1} − τ) dW = h^{3/2} (Z0/2 − Z1/(2√3)),                   (INC)
    ξ_j = c0_j Z0 + c1_j Z1 + ρ_j R,   c_k = ∫ f P̂_k dτ,  ρ_j² = ∫ (f − c0 P̂0 − c1 P̂1)² dτ,       (FINE)

f the kernel of (XI) on interval j (16-point Gauss–Legendre; f is analytic on the interval). For one NSF this
is the exact joint law of (ΔW, I10, ξ) of a single Brownian path: the reference integrator reads (INC), the
solver's noise is assembled from (FINE) with (COMPOSE), exactly, on any sub-grid. (R is shared by all NSFs;
the paths of two different NSFs agree in ΔW, I10 and the Legendre part, and their ξ differ from a common
path only through ρ, which is O(h^{5/2}) relative.) Coarse Brownian increments compose as
ΔW[a, c] = ΔW[a, b] + ΔW[b, c], I10[a, c] = I10[a, b] + (τ_c − τ_b) ΔW[a, b] + I10[b, c].

Random numbers come in blocks of fine intervals, each block from its own generator keyed by (seed, block):
any view of any part of the path is reproducible, in any order (the paths depend on the batch shape).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..coefficients.ersde import ersde_coefficients, validate_sigmas
from ..theory.nsf import NSFLike, resolve_nsf

__all__ = ["BrownianPath", "CoupledNoise"]

_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)


class BrownianPath:
    """A Brownian path W(τ), τ = log(σ_0/σ), on the fine σ grid ``sigmas`` (strictly decreasing, > 0),
    for a batch of independent paths of shape ``shape`` (e.g. (M, D)), float64."""

    def __init__(self, sigmas, shape, seed: int = 0, *, block: int = 64, device=None):
        sig = validate_sigmas(sigmas)
        if sig[-1] <= 0:
            raise ValueError("the fine grid must end at sigma > 0 (a Brownian path has no step to sigma = 0)")
        if block < 1:
            raise ValueError(f"block must be >= 1, got {block}")
        self.sigmas = sig
        self.h = np.log(sig[:-1] / sig[1:])  # τ-lengths, without the cancellation of diff(τ)
        self.tau = np.concatenate([[0.0], np.cumsum(self.h)])
        self.shape = tuple(int(s) for s in shape)
        self.seed, self.block, self.device = int(seed), int(block), device
        self._cache: dict[int, torch.Tensor] = {}

    @property
    def n(self) -> int:
        """Number of fine intervals."""
        return self.h.size

    def _block(self, b: int) -> torch.Tensor:
        if b not in self._cache:
            key = np.random.SeedSequence([self.seed, b]).generate_state(1, dtype=np.uint64)[0]
            g = torch.Generator().manual_seed(int(key) & (2**63 - 1))
            size = min(self.block, self.n - b * self.block)
            z = torch.randn((size, *self.shape, 3), generator=g, dtype=torch.float64)
            self._cache = {b: z.to(self.device)}  # keep one block: sequential access
        return self._cache[b]

    def normals(self, j: int) -> torch.Tensor:
        """(Z0, Z1, R) of fine interval j, shape (*shape, 3)."""
        if not 0 <= j < self.n:
            raise IndexError(f"fine interval {j} out of range [0, {self.n})")
        return self._block(j // self.block)[j % self.block]

    def increments(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(ΔW_j, I10_j) of fine interval j (eq. INC)."""
        z = self.normals(j)
        h = self.h[j]
        return math.sqrt(h) * z[..., 0], h**1.5 * (0.5 * z[..., 0] - z[..., 1] / (2 * math.sqrt(3.0)))

    def coarse_increments(self, i0: int, i1: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(ΔW, I10) over the fine intervals i0…i1−1 (the coarse interval τ_{i0} → τ_{i1})."""
        dw, i10 = self.increments(i0)
        for j in range(i0 + 1, i1):
            dwj, i10j = self.increments(j)
            i10 = i10 + self.h[j] * dw + i10j
            dw = dw + dwj
        return dw, i10


class CoupledNoise:
    """Exact ER-SDE step noise (XI) of NSF ``nsf`` on a :class:`BrownianPath`, for any sub-grid of its σ grid.

    ``xi(i0, i1)`` is ξ[σ_{i0}, σ_{i1}] built by (COMPOSE) from the fine ξ_j (FINE); ``variance(i0, i1)`` its
    variance by the same recursion; ``sampler()`` the k-diffusion ``noise_sampler(sigma, sigma_next)``
    returning ξ / sqrt(Var), which the ER-SDE solvers multiply by their step std. The fine gains r_j and
    variances come from :func:`ersde_theory.coefficients.ersde_coefficients` (exact quadrature).
    """

    def __init__(self, path: BrownianPath, nsf: NSFLike):
        self.path, self.nsf = path, resolve_nsf(nsf)
        fine = ersde_coefficients(path.sigmas, self.nsf, "exact")
        self.gain, self.var_fine = fine.r, fine.noise_std**2
        self.c0, self.c1, self.rho = self._kernel_coefficients()
        self._index = {float(s): i for i, s in enumerate(path.sigmas)}
        self._cache: dict[tuple[int, int], tuple[torch.Tensor, float]] = {}

    def kernel(self, sigma_end, sigma) -> np.ndarray:
        """f = (φ(σ_end)/φ(σ)) g(σ), the integrand of (XI) for a step ending at σ_end (broadcasting)."""
        sig = np.asarray(sigma, dtype=np.float64)
        t = np.broadcast_to(np.asarray(sigma_end, dtype=np.float64), sig.shape)
        gain = (t / sig) * np.exp(-self.nsf.delta_ell(t, sig))
        return gain * sig * np.sqrt(2.0 * np.maximum(self.nsf.h_tilde_sq(sig), 0.0))

    def _kernel_coefficients(self):
        p = self.path
        x = _GL_X[None, :]
        sig = p.sigmas[:-1, None] * np.exp(-0.5 * p.h[:, None] * (x + 1.0))  # nodes σ(τ), (n, 16)
        w = 0.5 * p.h[:, None] * _GL_W[None, :]
        f = self.kernel(p.sigmas[1:, None], sig)
        p0 = 1.0 / np.sqrt(p.h[:, None])
        p1 = np.sqrt(3.0 / p.h[:, None]) * x
        c0 = np.sum(w * f * p0, axis=1)
        c1 = np.sum(w * f * p1, axis=1)
        rho = np.sqrt(np.sum(w * (f - c0[:, None] * p0 - c1[:, None] * p1) ** 2, axis=1))
        return c0, c1, rho

    def kernel_variance(self) -> np.ndarray:
        """c0² + c1² + ρ² per fine interval: the variance of (FINE), by quadrature of the kernel."""
        return self.c0**2 + self.c1**2 + self.rho**2

    def fine_xi(self, j: int) -> torch.Tensor:
        """ξ_j of fine interval j (eq. FINE)."""
        z = self.path.normals(j)
        return self.c0[j] * z[..., 0] + self.c1[j] * z[..., 1] + self.rho[j] * z[..., 2]

    def xi(self, i0: int, i1: int) -> torch.Tensor:
        """ξ[σ_{i0}, σ_{i1}] by (COMPOSE) over the fine intervals i0…i1−1."""
        acc = self.fine_xi(i0)
        for j in range(i0 + 1, i1):
            acc = self.gain[j] * acc + self.fine_xi(j)
        return acc

    def variance(self, i0: int, i1: int) -> float:
        """Var ξ[σ_{i0}, σ_{i1}] by the recursion of (COMPOSE): V ← r_j² V + V_j."""
        v = 0.0
        for j in range(i0, i1):
            v = self.gain[j] ** 2 * v + self.var_fine[j]
        return v

    def precompute(self, strides) -> None:
        """Cache ξ and its variance for every step of the sub-grids ``path.sigmas[::stride]`` (nested strides,
        each dividing the next, each dividing ``path.n``): one pass over the fine intervals for the smallest
        stride, then (COMPOSE) level by level with the gains of :func:`ersde_coefficients` on the finer level."""
        strides = sorted(set(int(k) for k in strides))
        if any(self.path.n % k for k in strides) or any(b % a for a, b in zip(strides, strides[1:])):
            raise ValueError(f"strides {strides} must be nested (each divides the next) and divide {self.path.n}")
        k0 = strides[0]
        level = [(self.xi(i, i + k0), self.variance(i, i + k0)) for i in range(0, self.path.n, k0)]
        prev = k0
        self._store(level, k0)
        for k in strides[1:]:
            gain = ersde_coefficients(self.path.sigmas[::prev], self.nsf, "exact").r
            q = k // prev
            new = []
            for c in range(len(level) // q):
                acc, v = level[c * q]
                for l in range(c * q + 1, (c + 1) * q):
                    acc, v = gain[l] * acc + level[l][0], gain[l] ** 2 * v + level[l][1]
                new.append((acc, v))
            level, prev = new, k
            self._store(level, k)

    def _store(self, level, k) -> None:
        for c, item in enumerate(level):
            self._cache[(c * k, (c + 1) * k)] = item

    def clear(self) -> None:
        """Drop the cached step noise."""
        self._cache.clear()

    def index(self, sigma) -> int:
        """Position of ``sigma`` in the fine grid (it must be a grid value)."""
        s = float(sigma)
        if s not in self._index:
            raise ValueError(
                f"sigma={s!r} is not a point of the coupled noise's fine grid; "
                "build solver schedules as sub-grids, e.g. fine_sigmas[::stride]"
            )
        return self._index[s]

    def sampler(self):
        """``noise_sampler(sigma, sigma_next) -> ξ/sqrt(Var)`` for the ER-SDE solvers (k-diffusion convention).

        A step whose exact variance is 0 (the ODE) returns zeros."""

        def noise_sampler(sigma, sigma_next):
            i0, i1 = self.index(sigma), self.index(sigma_next)
            if i1 <= i0:
                raise ValueError(f"noise_sampler needs sigma > sigma_next, got {float(sigma)!r}, {float(sigma_next)!r}")
            xi, v = self._cache.get((i0, i1)) or (self.xi(i0, i1), self.variance(i0, i1))
            return xi / math.sqrt(v) if v > 0 else torch.zeros_like(xi)

        return noise_sampler
