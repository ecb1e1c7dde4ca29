"""Datasets layer, Fashion-MNIST (datasets/fashion_mnist.py): the IDX reader on real bytes (a committed slice of the
test set, tests/data/fashion-mnist-subset: its first 64 images and labels), its checks (header against length,
SHA-256 of full files, missing files name the apt command), and, where Debian's package is installed, the whole
data set: 60,000 + 10,000 images, ten balanced classes, the published checksums."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from ersde_theory.datasets.fashion_mnist import DEFAULT_DIR, ENV, SHA256, load_fashion_mnist, read_idx

SUBSET = Path(__file__).resolve().parents[1] / "data" / "fashion-mnist-subset"
FULL = (DEFAULT_DIR / "train-images-idx3-ubyte.gz").is_file()
FIRST_TEST_LABELS = [9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0]  # of the published test set


def test_reads_real_idx_bytes():
    x, y = load_fashion_mnist("test", SUBSET, verify=False)
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert y[:20].tolist() == FIRST_TEST_LABELS
    raw = read_idx(SUBSET / "t10k-images-idx3-ubyte.gz")
    assert raw.shape == (64, 28, 28) and raw.dtype == np.uint8
    torch.testing.assert_close(x[:, 0], torch.from_numpy(raw.astype(np.float32)) / 127.5 - 1.0, rtol=0, atol=0)
    assert raw.max() == 255 and raw.min() == 0 and 0.2 < (raw > 0).mean() < 0.8  # clothing on a black background


def test_a_subset_fails_the_checksum_and_the_count(tmp_path):
    with pytest.raises(ValueError, match="SHA-256 differs"):
        load_fashion_mnist("test", SUBSET)
    raw = gzip.decompress((SUBSET / "t10k-images-idx3-ubyte.gz").read_bytes())
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(raw[:-5])  # truncated: the header no longer fits
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes((SUBSET / "t10k-labels-idx1-ubyte.gz").read_bytes())
    with pytest.raises(ValueError, match=r"the IDX header says \(64, 28, 28\)"):
        load_fashion_mnist("test", tmp_path, verify=False)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x0d\x03" + raw[4:])  # float type code
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes"):
        load_fashion_mnist("test", tmp_path, verify=False)


def test_missing_files_name_the_apt_command(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as e:
        load_fashion_mnist("train", tmp_path)
    assert "\n" not in str(e.value) and "train-images-idx3-ubyte" in str(e.value)
    monkeypatch.setenv(ENV, str(SUBSET))  # the environment variable names the folder
    assert load_fashion_mnist("test", verify=False)[0].shape[0] == 64
    with pytest.raises(ValueError, match="split must be one of"):
        load_fashion_mnist("validation", SUBSET)


@pytest.mark.skipif(not FULL, reason="Debian's dataset-fashion-mnist is not installed")
def test_the_installed_data_set():
    x, y = load_fashion_mnist("train")
    xt, yt = load_fashion_mnist("test")
    assert x.shape == (60_000, 1, 28, 28) and xt.shape == (10_000, 1, 28, 28)
    assert y.bincount().tolist() == [6000] * 10 and yt.bincount().tolist() == [1000] * 10
    assert yt[:20].tolist() == FIRST_TEST_LABELS
    torch.testing.assert_close(xt[:64], load_fashion_mnist("test", SUBSET, verify=False)[0], rtol=0, atol=0)
    assert len(SHA256) == 4
