"""nbval runs every notebook here; notebook 08 reads Debian's Fashion-MNIST package (its real-data floor and the
metric's reference), so without the package it is skipped with the reason, as the Fashion-MNIST tests are."""

import pytest

from ersde_theory.datasets.fashion_mnist import data_dir


def pytest_collection_modifyitems(config, items):
    if (data_dir() / "train-images-idx3-ubyte.gz").is_file() or (data_dir() / "train-images-idx3-ubyte").is_file():
        return
    skip = pytest.mark.skip(reason="notebook 08 needs Debian's dataset-fashion-mnist (README)")
    for item in items:
        if item.path.name == "08_fashion_mnist.ipynb":
            item.add_marker(skip)
