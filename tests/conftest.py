import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def ring():
    from ersde_theory import ring_2d
    return ring_2d()


def gaussian_denoiser(m: float = 0.3, s0: float = 0.7):
    """Exact denoiser of N(m, s0²) data (any tensor shape): x_θ = m + s0²/(s0² + σ²) (x − m)."""
    def model(x, sigma):
        sig = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        return m + s0 ** 2 / (s0 ** 2 + sig ** 2) * (x - m)
    return model
