"""The data sets gmvae knows: where their files come from and how to read a split."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from gmvae.data.arrays import ImageArrays
from gmvae.data.idx import read_idx_pair
from gmvae.data.locate import RemoteFile, locate_files
from gmvae.data.svhn import read_svhn_mat
from gmvae.errors import ConfigError

SPLITS = ("train", "test")
_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
_FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
_SVHN_MIRRORS = ("http://ufldl.stanford.edu/housenumbers/",)


def _remote(name: str, digest: str, mirrors: tuple[str, ...]) -> RemoteFile:
    return RemoteFile(name, digest, tuple(m + name for m in mirrors))


@dataclass(frozen=True)
class DatasetSpec:
    """What a model needs to know before any file is read, plus how to read each split."""

    name: str
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    files: dict[str, tuple[RemoteFile, ...]]
    read: Callable[[list, int], tuple[np.ndarray, np.ndarray]] | None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _read_idx(paths: list, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    return read_idx_pair(paths[0], paths[1], num_classes)


def _read_svhn(paths: list, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    return read_svhn_mat(paths[0])


def _idx_files(
    mirrors: tuple[str, ...], digests: dict[str, str]
) -> dict[str, tuple[RemoteFile, ...]]:
    files = {
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    }
    return {
        split: tuple(_remote(n, "sha256:" + digests[n], mirrors) for n in names)
        for split, names in files.items()
    }


DIGITS = tuple(str(d) for d in range(10))
DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist",
        (1, 28, 28),
        DIGITS,
        _idx_files(
            _MNIST_MIRRORS,
            {
                "train-images-idx3-ubyte.gz": "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971",
                "train-labels-idx1-ubyte.gz": "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203",
                "t10k-images-idx3-ubyte.gz": "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be",
                "t10k-labels-idx1-ubyte.gz": "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b",
            },
        ),
        _read_idx,
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        (1, 28, 28),
        (
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        _idx_files(
            _FASHION_MIRRORS,
            {
                "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
                "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
                "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
                "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
            },
        ),
        _read_idx,
    ),
    # The SVHN publisher lists MD5 checksums only.
    "svhn": DatasetSpec(
        "svhn",
        (3, 32, 32),
        DIGITS,
        {
            "train": (
                _remote("train_32x32.mat", "md5:e26dedcc434d2e4c54c9b2d4a06d8373", _SVHN_MIRRORS),
            ),
            "test": (
                _remote("test_32x32.mat", "md5:eb5a983be6a315427106f1b164d9cef3", _SVHN_MIRRORS),
            ),
        },
        _read_svhn,
    ),
    # scikit-learn's bundled 8x8 digits: an offline demo with no files to fetch.
    "digits": DatasetSpec("digits", (1, 8, 8), DIGITS, {}, None),
}


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def load_split(
    name: str, split: str, *, data_dir: str | os.PathLike | None = None, download: bool = True
) -> ImageArrays:
    """The official ``train`` or ``test`` split of a known data set, as uint8 arrays."""
    spec = get_spec(name)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if spec.read is None:
        images, labels = _digits_split(split)
        source = f"sklearn digits ({split})"
    else:
        paths = locate_files(spec.name, spec.files[split], data_dir=data_dir, download=download)
        ordered = [paths[f.name] for f in spec.files[split]]
        images, labels = spec.read(ordered, spec.num_classes)
        source = str(ordered[0])
    return ImageArrays(torch.from_numpy(images), torch.from_numpy(labels), source)


def _digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """A fixed (seed-independent) stratified 2/3 train, 1/3 test split of the 1,797 digits."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0 * 255.0).round().astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    train, test = train_test_split(
        np.arange(len(labels)), test_size=1 / 3, stratify=labels, random_state=0
    )
    idx = np.sort(train if split == "train" else test)
    return images[idx], labels[idx]
