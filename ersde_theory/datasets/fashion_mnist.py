"""Fashion-MNIST (Xiao, Rasul and Vollgraf 2017, MIT licence): 70,000 28×28 grayscale images of ten kinds of
clothing, 60,000 for training and 10,000 for testing, ten balanced classes. Read offline from the four IDX files
of Debian's package ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``, which puts them under
``/usr/share/datasets/fashion-mnist/``), from a folder given as ``data=`` (command line: ``--data DIR``), or from
the folder in the environment variable ``ERSDE_FASHION_MNIST``; gzip-compressed (``.gz``) or not.

Every file is checked before use: its IDX header (magic number, dimensions) against its length, and, for the full
files, the SHA-256 of its decompressed bytes. A missing or foreign file is a one-line error naming the file and the
apt command. Pixels map to the project's convention, [−1, 1] (``datasets.pixels``).
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from .pixels import from_uint8

__all__ = ["CLASSES", "DEFAULT_DIR", "ENV", "SHAPE", "data_dir", "load_fashion_mnist", "read_idx"]

SHAPE = (1, 28, 28)
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV = "ERSDE_FASHION_MNIST"
APT = "apt-get install dataset-fashion-mnist"
SPLITS = ("train", "test")
# split -> (images file, labels file, count); the SHA-256 of each file's decompressed bytes
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60_000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10_000),
}
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
_IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes


def data_dir(data=None) -> Path:
    """The folder the files are read from: ``data``, else ``$ERSDE_FASHION_MNIST``, else Debian's folder."""
    return Path(data) if data is not None else Path(os.environ.get(ENV) or DEFAULT_DIR)


def _file(folder: Path, name: str) -> Path:
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"Fashion-MNIST file {name}[.gz] not found in {folder}: install it with `{APT}`, or give its folder "
        f"(--data DIR or {ENV}=DIR)"
    )


def read_idx(path, *, sha256: str | None = None) -> np.ndarray:
    """The uint8 array of an IDX file (gzip-compressed or not): its header (magic 0x0000 08 nd, then nd big-endian
    dimensions) must match its length; with ``sha256``, the decompressed bytes must have that digest."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"{path} is not a readable gzip file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE or not 1 <= raw[3] <= 4:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (header {raw[:4].hex() or 'empty'})")
    nd = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(nd))
    body = raw[4 + 4 * nd :]
    if len(body) != int(np.prod(dims)):
        raise ValueError(f"{path}: the IDX header says {dims} ({int(np.prod(dims))} bytes), the file holds {len(body)}")
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise ValueError(f"{path} is not the Fashion-MNIST file it is named after (SHA-256 differs); reinstall `{APT}`")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def load_fashion_mnist(
    split: str = "train", data=None, *, verify: bool = True, dtype=torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 1, 28, 28) in [−1, 1], labels (N,) int64) of the ``split`` ("train": 60,000, "test": 10,000)
    from :func:`data_dir` (module docstring). ``verify``: check each file's SHA-256 (off for a subset of the files,
    whose counts then come from their headers)."""
    if split not in FILES:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = data_dir(data)
    img_name, lab_name, count = FILES[split]
    images = read_idx(_file(folder, img_name), sha256=SHA256[img_name] if verify else None)
    labels = read_idx(_file(folder, lab_name), sha256=SHA256[lab_name] if verify else None)
    if images.ndim != 3 or images.shape[1:] != SHAPE[1:] or labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{folder}: {img_name} holds {images.shape}, {lab_name} {labels.shape}; expected (N, 28, 28), (N,)"
        )
    if verify and images.shape[0] != count:
        raise ValueError(f"{folder}: {img_name} holds {images.shape[0]} images, expected {count}")
    if labels.max(initial=0) >= len(CLASSES):
        raise ValueError(f"{folder}: {lab_name} holds a label {int(labels.max())} outside 0…{len(CLASSES) - 1}")
    x = from_uint8(torch.from_numpy(images.copy()).unsqueeze(1), dtype=dtype)
    return x, torch.from_numpy(labels.astype(np.int64))
