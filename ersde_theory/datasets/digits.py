"""scikit-learn's bundled 8×8 handwritten digits (1797 images, UCI optdigits test set), offline.

Used at their native 8×8 resolution (no padding or resizing): pixel values 0…16 are mapped to [−1, 1] by
x = v/8 − 1, one channel (PNG export: :mod:`.pixels`).
"""

from __future__ import annotations

import numpy as np
import torch

SHAPE = (1, 8, 8)


def _sklearn_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            "the digits data come from scikit-learn (bundled, no download): "
            "pip install scikit-learn  (or pip install 'ersde-theory[images]')"
        ) from e
    return load_digits()


def load_digits_tensor(dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as (images (N, 1, 8, 8) in [−1, 1], labels (N,) int64)."""
    d = _sklearn_digits()
    x = torch.from_numpy(np.asarray(d.images, dtype=np.float64) / 8.0 - 1.0).to(dtype).unsqueeze(1)
    return x, torch.from_numpy(np.asarray(d.target, dtype=np.int64))


def split_indices(n: int, test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random train/test split of range(n)."""
    perm = np.random.default_rng(seed).permutation(n)
    k = int(round(n * test_fraction))
    return np.sort(perm[k:]), np.sort(perm[:k])
