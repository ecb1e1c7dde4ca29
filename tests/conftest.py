import pytest
import torch

torch.set_num_threads(2)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` (every GPU check; run them all with ``pytest -m cuda``) skip without a GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def ring():
    from ersde_theory import ring_2d

    return ring_2d()


def gaussian_denoiser(m: float = 0.3, s0: float = 0.7):
    """Exact denoiser of N(m, s0²) data (any tensor shape): x_θ = m + s0²/(s0² + σ²) (x − m)."""

    def model(x, sigma):
        sig = sigma.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        return m + s0**2 / (s0**2 + sig**2) * (x - m)

    return model


@pytest.fixture(scope="module")
def one_thread():
    """Small image models: one intra-op thread is as fast, and immune to OpenMP oversubscription when the
    two CPU cores are shared with other processes (2 threads were 10× slower there)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
