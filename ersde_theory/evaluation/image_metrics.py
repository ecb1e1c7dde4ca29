"""The quality of generated images: FD_digits and Inception-FID, and reading a folder of sampled PNGs.

**FD_digits and FD_fmnist — NOT Inception-FID** (:class:`FeatureFD`). The Fréchet distance (docs/theory.md eq. 31,
:func:`ersde_theory.evaluation.frechet_distance`, unbiased covariances) between Gaussian fits of the 64-d
penultimate-layer features of a small digit classifier trained and shipped by this project (``digits_features.pt``);
FD_fmnist the same with a Fashion-MNIST classifier (128-d features, ``fmnist_features.pt``) against the real test
set. Their values are not comparable with any published FID; they rank samplers on their data set only.

**Inception FID** through torch-fidelity's standard InceptionV3 feature extractor ("inception-v3-compat",
2048-d pool features, the weights of the original TensorFlow FID). Nothing is downloaded: the weights file
must exist locally (``weights=`` or the ``ERSDE_INCEPTION_WEIGHTS`` environment variable).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from ..datasets.digits import load_digits_tensor
from ..datasets.fashion_mnist import load_fashion_mnist
from ..datasets.pixels import from_uint8, to_uint8
from ..models.checkpoints import DATA_DIR, write_sidecar
from ..models.classifier import DigitFeatureNet, FashionFeatureNet
from .frechet import frechet_distance, frechet_infinity_blocks, gaussian_moments, infinity_valid
from .noise_floor import floor_values

FD_LABEL = "FD_digits (feature-space Fréchet distance, project digit classifier; NOT Inception-FID)"
INCEPTION_ENV = "ERSDE_INCEPTION_WEIGHTS"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = f"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}"
FEATURES_PATH = DATA_DIR / "digits_features.pt"  # the classifier's weights and the reference moments
FMNIST_FEATURES_PATH = DATA_DIR / "fmnist_features.pt"  # the same for Fashion-MNIST (reference: the test set)
FMNIST_FD_LABEL = "FD_fmnist (feature-space Fréchet distance, project Fashion-MNIST classifier; NOT Inception-FID)"
PNG_RE = re.compile(r"^(\d+)\.png$")  # the sample command's image names, {seed:0Wd}.png


def read_png_dir(folder) -> torch.Tensor:
    """All ``NNNNNN.png`` of a folder, in seed order, as uint8 (N, C, H, W)."""
    from PIL import Image

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    files = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := PNG_RE.match(p.name)))
    if not files:
        raise ValueError(f"no NNNNNN.png images in {folder}")
    arrs = [np.asarray(Image.open(p)) for _, p in files]
    x = torch.from_numpy(np.stack(arrs))
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)


def _as_images(images, shape: tuple) -> torch.Tensor:
    """Float (N, *shape) in [−1, 1] from a float tensor (clamped, quantised to the 256 PNG levels like written
    samples), a uint8 tensor, or a folder of PNGs."""
    if isinstance(images, (str, Path)):
        images = read_png_dir(images)
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a tensor or a folder of PNGs, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(shape):
        raise ValueError(
            f"the feature network takes (N, {', '.join(map(str, shape))}) images, got {tuple(images.shape)}"
        )
    return from_uint8(images.cpu())


@torch.no_grad()
def extract_features(net, images, batch: int = 2048, shape: tuple = (1, 8, 8)) -> np.ndarray:
    """The penultimate-layer features ``net.features`` of ``images`` (as :func:`_as_images` reads them), float64."""
    x = _as_images(images, shape)
    return torch.cat([net.features(x[i : i + batch]) for i in range(0, x.shape[0], batch)]).double().numpy()


def save_feature_net(net, path, summary: dict, command: str | None = None, *, reference=None) -> Path:
    """Weights plus the reference moments of the features of ``reference`` (images; default all 1797 digits), with
    a JSON sidecar (``summary`` and what the reference is)."""
    what = "features of all 1797 digits"
    if reference is None:
        reference, _ = load_digits_tensor()
    else:
        what = f"features of {reference.shape[0]} reference images"
    mu, cov = gaussian_moments(extract_features(net, reference, shape=tuple(reference.shape[1:])))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"state_dict": net.state_dict(), "ref_mean": torch.from_numpy(mu), "ref_cov": torch.from_numpy(cov),
         "ref_count": reference.shape[0]},
        path,
    )  # fmt: skip
    return write_sidecar(path, {"command": command, **summary, "reference": summary.get("reference", what)})


class FeatureFD:
    """A feature-space Fréchet distance (eq. 31; NOT Inception-FID): between the Gaussian fit of a classifier's
    penultimate-layer features of a set of images and the shipped reference moments of a real image set. A
    subclass names its network, shape, weights file, training command and the real images of its noise floor."""

    label = "feature-space Fréchet distance"
    shape: tuple = ()
    network: type = DigitFeatureNet
    default_path: Path = FEATURES_PATH
    train_command: str = ""

    def __init__(self, path=None):
        path = Path(path) if path is not None else self.default_path
        if not path.is_file():
            name = self.label.split(" ")[0]
            raise FileNotFoundError(
                f"no {name} feature network at {path}; train one with `{self.train_command} --out {path}`"
            )
        ck = torch.load(path, map_location="cpu", weights_only=True)
        self.net = self.network()
        self.net.load_state_dict(ck["state_dict"])
        self.net.eval().requires_grad_(False)
        self.ref_mean, self.ref_cov = ck["ref_mean"].numpy(), ck["ref_cov"].numpy()

    def features(self, images) -> np.ndarray:
        return extract_features(self.net, images, shape=self.shape)

    def __call__(self, images) -> float:
        """The distance of a set of images (tensor in [−1, 1], uint8 tensor, or PNG folder) to the reference."""
        f = self.features(images)
        if f.shape[0] < 2:
            raise ValueError("need at least 2 images for a covariance")
        return frechet_distance(*gaussian_moments(f), self.ref_mean, self.ref_cov)

    def blocks(self, images, n_blocks: int) -> np.ndarray:
        """The distance of ``n_blocks`` consecutive, equal, disjoint blocks (e.g. of seeds)."""
        x = _as_images(images, self.shape)
        m = x.shape[0] // n_blocks
        if m < 2:
            raise ValueError(f"{x.shape[0]} images cannot fill {n_blocks} blocks of at least 2")
        return np.array([self(x[k * m : (k + 1) * m]) for k in range(n_blocks)])

    @property
    def dim(self) -> int:
        """The feature dimension D."""
        return int(self.ref_mean.size)

    def blocks_infinity(self, images, n_blocks: int) -> np.ndarray | None:
        """FD_∞ (docs/theory.md eq. 52) of the same ``n_blocks`` blocks as :meth:`blocks`: each block's distance
        extrapolated to n = ∞ from the block and its two halves, an estimate of the distance between the sampled
        law's feature moments and the reference moments without the floor (eq. 32). Its 95 % interval is
        :func:`~ersde_theory.evaluation.intervals.t_interval` of these values (eq. 33), valid where
        :mod:`ersde_theory.evaluation.frechet` says (n/2 above the feature dimension at the very least; FD_digits: 95 %
        coverage measured at 4 blocks of 250 real digits). None where blocks of n images have n/2 ≤ D
        (:func:`~ersde_theory.evaluation.frechet.infinity_valid`): no interval is reported there."""
        x = _as_images(images, self.shape)
        m = x.shape[0] // n_blocks
        if m < 4:
            raise ValueError(f"{x.shape[0]} images cannot fill {n_blocks} blocks of at least 4")
        if not infinity_valid(m, self.dim):
            return None  # halves of m/2 <= D images: its interval would not cover the true distance
        return frechet_infinity_blocks(self.features(x), self.ref_mean, self.ref_cov, n_blocks)

    def real_images(self) -> torch.Tensor:
        raise NotImplementedError

    def real_floor(self, n: int, reps: int = 10, seed: int = 0) -> np.ndarray:
        """The noise floor (docs/theory.md eq. 32): the distance of ``n`` real images drawn with replacement from
        :meth:`real_images`, ``reps`` times (what a sampler that reproduces the data distribution exactly reaches at
        sample size n; summarise with :func:`ersde_theory.evaluation.intervals.t_interval`)."""
        x = self.real_images()
        g = torch.Generator().manual_seed(seed)
        return np.array(floor_values(lambda: x[torch.randint(x.shape[0], (n,), generator=g)], self, reps))


class DigitFD(FeatureFD):
    """FD_digits (module docstring) against the shipped reference moments of all 1797 digits; its floor draws from
    the same 1797."""

    label = FD_LABEL
    shape = (1, 8, 8)
    network = DigitFeatureNet
    default_path = FEATURES_PATH
    train_command = "python -m ersde_theory train-digit-features"

    def real_images(self) -> torch.Tensor:
        return load_digits_tensor()[0]


class FashionFD(FeatureFD):
    """FD_fmnist: the Fréchet distance in the 128-d penultimate features of the project's Fashion-MNIST classifier
    (:class:`~ersde_theory.models.classifier.FashionFeatureNet`, trained on the 60,000 training images), against the
    shipped moments of the 10,000 real test images; its floor draws real training images. NOT Inception-FID."""

    label = FMNIST_FD_LABEL
    shape = (1, 28, 28)
    network = FashionFeatureNet
    default_path = FMNIST_FEATURES_PATH
    train_command = "python -m ersde_theory train-fmnist-features"

    def __init__(self, path=None, data=None):
        super().__init__(path)
        self.data = data

    def real_images(self) -> torch.Tensor:
        return load_fashion_mnist("train", self.data)[0]


def inception_weights_path(weights=None) -> Path:
    """The local InceptionV3 FID weights file, or a clear error saying how to provide it."""
    weights = weights or os.environ.get(INCEPTION_ENV)
    how = (
        f"Inception-FID needs the InceptionV3 FID weights locally; nothing is downloaded at run time. On a "
        f"machine with internet, fetch {INCEPTION_URL} and pass its path with --inception-weights PATH "
        f"(Python: weights=PATH) or set {INCEPTION_ENV}=PATH."
    )
    if not weights:
        raise FileNotFoundError(f"no Inception weights given. {how}")
    p = Path(weights)
    if not p.is_file():
        raise FileNotFoundError(f"Inception weights file {p} does not exist. {how}")
    return p


@torch.no_grad()
def inception_fid(images_a, images_b, *, weights=None, device="cpu", batch: int = 100) -> float:
    """Standard FID between two image sets (uint8 tensors (N, C, H, W) with C ∈ {1, 3}, or PNG folders)
    with torch-fidelity's InceptionV3 (2048-d pool features, images resized to 299 inside)."""
    path = inception_weights_path(weights)
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as e:
        raise ImportError(
            "Inception-FID uses torch-fidelity: pip install 'ersde-theory[fid]' "
            "(torch-fidelity needs a torchvision matching torch==2.13.0)"
        ) from e
    net = (
        FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
        .to(device)
        .eval()
    )

    def feats(images):
        if isinstance(images, (str, Path)):
            images = read_png_dir(images)
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError("images must be uint8 (N, 1 or 3, H, W) or a PNG folder")
        images = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
        out = [net(images[i : i + batch].to(device))[0] for i in range(0, images.shape[0], batch)]
        return torch.cat(out).double().cpu().numpy()

    return frechet_distance(*gaussian_moments(feats(images_a)), *gaussian_moments(feats(images_b)))
