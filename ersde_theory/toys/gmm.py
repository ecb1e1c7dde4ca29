"""Gaussian mixtures with exact noised marginals, exact denoiser and exact score.

Under VE noising x_σ = x_0 + σ ε, a mixture Σ_k w_k N(μ_k, Σ_k) stays a mixture with components
N(μ_k, Σ_k + σ² I). With Σ_k = U_k diag(ℓ_k) U_kᵀ (eigendecomposition, done once):

    ∇ log p_σ(x) = −Σ_k γ_k(x) (Σ_k + σ² I)^{-1} (x − μ_k),   γ_k ∝ w_k N(x; μ_k, Σ_k + σ² I),
    E[x_0 | x_σ = x] = x + σ² ∇ log p_σ(x)                          (Tweedie)

Everything is batched over x (shape (B, D)) and over per-sample σ (scalar or shape (B,)).
"""

from __future__ import annotations

import math

import torch

__all__ = ["GaussianMixture"]


class GaussianMixture:
    """Σ_k w_k N(μ_k, Σ_k) in D dimensions; ``covariances`` of shape (K, D, D) (full) or (K, D) (diagonal)."""

    def __init__(self, weights, means, covariances, *, dtype=torch.float64, device=None):
        w = torch.as_tensor(weights, dtype=dtype, device=device)
        mu = torch.as_tensor(means, dtype=dtype, device=device)
        cov = torch.as_tensor(covariances, dtype=dtype, device=device)
        if mu.ndim != 2:
            raise ValueError(f"means must have shape (K, D), got {tuple(mu.shape)}")
        K, D = mu.shape
        if w.shape != (K,) or not bool((w > 0).all()):
            raise ValueError(f"weights must be {K} positive numbers, got shape {tuple(w.shape)}")
        if cov.shape == (K, D):
            if not bool((cov > 0).all()):
                raise ValueError("diagonal covariances must be positive")
            evals, evecs = cov, None
        elif cov.shape == (K, D, D):
            if not torch.allclose(cov, cov.transpose(-1, -2)):
                raise ValueError("covariances must be symmetric")
            evals, evecs = torch.linalg.eigh(cov)
            if not bool((evals > 0).all()):
                raise ValueError("covariances must be positive definite")
        else:
            raise ValueError(f"covariances must have shape ({K}, {D}) or ({K}, {D}, {D}), got {tuple(cov.shape)}")
        self.weights, self.means, self.evals, self.evecs = w / w.sum(), mu, evals, evecs
        # sample() draws with the Cholesky factor, which is unique: an eigenbasis is not (in a repeated eigenvalue
        # LAPACK returns any rotation of it, and MKL's AVX2 and AVX-512 paths return different ones), so samples
        # drawn through evecs would depend on the machine, not only on the seed.
        self.chol = None if evecs is None else torch.linalg.cholesky(cov)
        self.log_weights = torch.log(self.weights)
        self.K, self.D = K, D

    # ----- exact moments ------------------------------------------------------------------------
    @property
    def covariances(self) -> torch.Tensor:
        """Component covariances, (K, D, D)."""
        if self.evecs is None:
            return torch.diag_embed(self.evals)
        return self.evecs @ torch.diag_embed(self.evals) @ self.evecs.transpose(-1, -2)

    def mean(self) -> torch.Tensor:
        return self.weights @ self.means

    def cov(self, sigma: float = 0.0) -> torch.Tensor:
        """Covariance of the noised marginal: Σ_k w_k (Σ_k + μ_k μ_kᵀ) − m mᵀ + σ² I."""
        m = self.mean()
        second = torch.einsum("k,kij->ij", self.weights, self.covariances) + torch.einsum(
            "k,ki,kj->ij", self.weights, self.means, self.means
        )
        return second - torch.outer(m, m) + sigma**2 * torch.eye(self.D, dtype=m.dtype, device=m.device)

    # ----- noised marginal ----------------------------------------------------------------------
    def _parts(self, x: torch.Tensor, sigma, alpha=None):
        """Per-component whitened quantities of x = α x_0 + σ ε (VE: α = 1): y = U_kᵀ(x − α μ_k),
        var = α² ℓ_k + σ², log N(x; α μ_k, α² Σ_k + σ² I)."""
        if x.ndim != 2 or x.shape[1] != self.D:
            raise ValueError(f"x must have shape (B, {self.D}), got {tuple(x.shape)}")
        x = x.to(self.means.dtype)
        col = lambda v: v.reshape(-1, 1, 1) if v.ndim == 1 else v  # noqa: E731   (B,1,1) or scalar
        sig = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        diff = x[:, None, :] - self.means[None]  # (B, K, D)
        var = self.evals[None] + col(sig) ** 2
        if alpha is not None:
            a = col(torch.as_tensor(alpha, dtype=x.dtype, device=x.device))
            diff = x[:, None, :] - a * self.means[None]
            var = a**2 * self.evals[None] + col(sig) ** 2
        y = diff if self.evecs is None else torch.einsum("kdj,bkd->bkj", self.evecs, diff)
        logn = -0.5 * ((y * y / var).sum(-1) + torch.log(var).sum(-1) + self.D * math.log(2 * math.pi))
        return y, var, logn

    def log_prob(self, x: torch.Tensor, sigma=0.0) -> torch.Tensor:
        """log p_σ(x), shape (B,)."""
        _, _, logn = self._parts(x, sigma)
        return torch.logsumexp(self.log_weights + logn, dim=-1)

    def score(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """∇_x log p_σ(x) (module docstring), shape (B, D)."""
        y, var, logn = self._parts(x, sigma)
        gamma = torch.softmax(self.log_weights + logn, dim=-1)  # (B, K)
        g = y / var
        if self.evecs is not None:
            g = torch.einsum("kdj,bkj->bkd", self.evecs, g)
        return -(gamma[..., None] * g).sum(1)

    def denoise(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """E[x_0 | x_σ = x] = x + σ² ∇ log p_σ(x), shape (B, D)."""
        sig = torch.as_tensor(sigma, dtype=self.means.dtype, device=x.device)
        sig2 = sig.reshape(-1, 1) ** 2 if sig.ndim == 1 else sig**2
        return (x.to(self.means.dtype) + sig2 * self.score(x, sigma)).to(x.dtype)

    def posterior(self, x: torch.Tensor, alpha, sigma) -> tuple[torch.Tensor, torch.Tensor]:
        """(E[x_0 | x], E[ε | x]) for x = α x_0 + σ ε (docs/theory.md eq. (44)), per sample (B, D): with
        γ_k ∝ w_k N(x; α μ_k, α² Σ_k + σ² I) and y_k = x − α μ_k,

            E[x_0 | x] = Σ_k γ_k (μ_k + α Σ_k (α² Σ_k + σ² I)^{-1} y_k),
            E[ε | x]   = Σ_k γ_k σ (α² Σ_k + σ² I)^{-1} y_k.

        Valid wherever α² Σ_k + σ² I is positive definite, α = 0 (σ > 0: x_0's mean) and σ = 0 (α > 0)
        included. ``alpha``, ``sigma``: scalars or shape (B,)."""
        y, var, logn = self._parts(x, sigma, alpha)
        gamma = torch.softmax(self.log_weights + logn, dim=-1)[..., None]  # (B, K, 1)
        col = lambda v: v.reshape(-1, 1, 1) if v.ndim == 1 else v  # noqa: E731
        a = col(torch.as_tensor(alpha, dtype=y.dtype, device=y.device))
        s = col(torch.as_tensor(sigma, dtype=y.dtype, device=y.device))
        gx, ge = a * self.evals[None] * y / var, s * y / var  # in the eigenbasis
        if self.evecs is not None:
            gx, ge = (torch.einsum("kdj,bkj->bkd", self.evecs, g) for g in (gx, ge))
        x0 = (gamma * (self.means[None] + gx)).sum(1)
        return x0.to(x.dtype), (gamma * ge).sum(1).to(x.dtype)

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        """The k-diffusion denoiser convention ``model(x, sigma_batch)``."""
        return self.denoise(x, sigma)

    def sample(self, n: int, generator: torch.Generator | None = None, sigma: float = 0.0) -> torch.Tensor:
        """n exact samples of the (noised) mixture, shape (n, D)."""
        dev = self.means.device
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.D, dtype=self.means.dtype, generator=generator, device=dev)
        if self.chol is None:
            scaled = z * torch.sqrt(self.evals[comp])
        else:
            scaled = torch.einsum("bij,bj->bi", self.chol[comp], z)
        out = self.means[comp] + scaled
        if sigma:
            out = out + sigma * torch.randn(n, self.D, dtype=out.dtype, generator=generator, device=dev)
        return out

    def mode_of(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the most responsible component at σ = 0 (for mode-weight statistics)."""
        _, _, logn = self._parts(x, 0.0)
        return torch.argmax(self.log_weights + logn, dim=-1)
