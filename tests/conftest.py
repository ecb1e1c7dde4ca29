"""Shared fixtures and the ``cuda`` marker hook; plain helpers are in tests/helpers.py."""

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


@pytest.fixture(scope="module")
def one_thread():
    """Small models and tensors: one intra-op thread is as fast, and immune to OpenMP oversubscription when the
    two CPU cores are shared with other processes (2 threads were 10× slower there)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
