"""Data sets as host NumPy arrays: the digits that ship inside bpgpu, and MNIST from a local file.

`load_digits` is the embedded default: the UCI "Optical Recognition of Handwritten Digits" test set
(E. Alpaydin and C. Kaynak, 1998; CC BY 4.0), 1797 images of 8×8 pixels counting 0–16, in the CSV
layout that scikit-learn ships (64 pixel columns, then the digit). No network access is needed.

`load_mnist(path)` (in `bpgpu.mnist`) reads MNIST from Nielsen's `mnist.pkl.gz` or from a directory
of the four IDX files; `load_fashion_mnist()` reads Zalando's Fashion-MNIST (the same IDX layout),
which Debian packages as `dataset-fashion-mnist`. Nothing is downloaded. All return
`DataSets(train, validation, test)` with the class names in `.classes`.
"""

from __future__ import annotations

import gzip
import os
import pathlib
from importlib import resources

import numpy as np

from .dataset_types import DIGITS, DataSets, Split
from .io.idx import NAMES as IDX_NAMES
from .io.idx import read_idx_directory
from .mnist import MAX_IDX_BYTES, load_mnist

__all__ = [
    "DIGITS",
    "FASHION_CLASSES",
    "DataSets",
    "Split",
    "fashion_mnist_directories",
    "fashion_mnist_directory",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
]

# Zalando's names for Fashion-MNIST's labels 0-9 (github.com/zalandoresearch/fashion-mnist).
FASHION_CLASSES = (
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
)
DATA_VARIABLE = "BPGPU_DATA"  # a folder of data sets: $BPGPU_DATA/fashion-mnist
DEBIAN_FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")  # dataset-fashion-mnist
FASHION_HINT = (
    "install it with apt-get install dataset-fashion-mnist, or pass any directory that holds "
    f"the four IDX files ({', '.join(IDX_NAMES)}, plain or .gz)"
)


def load_digits() -> DataSets:
    """The 1797 UCI digits as `DataSets(train, validation, test)`, X scaled to [0, 1] (d = 64).

    The split is fixed and needs no random numbers: of every six consecutive rows, the fifth goes to
    validation, the sixth to test and the rest to training (1199 / 299 / 299 rows).
    """
    raw = resources.files("bpgpu").joinpath("data", "digits.csv.gz").read_bytes()
    table = np.loadtxt(gzip.decompress(raw).decode("ascii").splitlines(), delimiter=",", dtype=np.int64)
    if table.shape != (1797, 65):
        raise ValueError(f"embedded digits data has shape {table.shape}, expected (1797, 65)")
    X = (table[:, :64] / 16.0).astype(np.float32)
    y = table[:, 64].astype(np.int64)
    slot = np.arange(len(y)) % 6
    parts = [slot < 4, slot == 4, slot == 5]
    return DataSets(*(Split(X[mask], y[mask]) for mask in parts))


def fashion_mnist_directories(path: str | os.PathLike[str] | None = None) -> list[pathlib.Path]:
    """Where `load_fashion_mnist(path)` looks, in order: `path` alone when given, else
    `$BPGPU_DATA/fashion-mnist` (when the variable is set) and then Debian's folder."""
    if path is not None:
        return [pathlib.Path(path)]
    found = [DEBIAN_FASHION_MNIST]
    if os.environ.get(DATA_VARIABLE):
        found.insert(0, pathlib.Path(os.environ[DATA_VARIABLE]) / "fashion-mnist")
    return found


def fashion_mnist_directory() -> pathlib.Path | None:
    """The folder `load_fashion_mnist()` reads: the first of `fashion_mnist_directories()` that is a
    directory, or None when Fashion-MNIST is not installed."""
    return next((place for place in fashion_mnist_directories() if place.is_dir()), None)


def load_fashion_mnist(path: str | os.PathLike[str] | None = None) -> DataSets:
    """Fashion-MNIST (Zalando, MIT licence): 28×28 grey images of 10 kinds of clothing, read from
    the four IDX files in `path`, else in the first of `fashion_mnist_directories()` that exists.

    As MNIST's IDX files in `load_mnist`, the last 10 000 of the 60 000 training images become
    validation (50 000 / 10 000 / 10 000 rows), X is float32 pixel / 255 and y int64 in 0..9;
    `classes` holds the names (`FASHION_CLASSES`, "T-shirt/top" ... "Ankle boot").

    Raises:
        FileNotFoundError: no such directory, saying where it looked and how to get the data;
            also a directory that lacks one of the four files.
        ValueError: a file that is damaged or not what its format says (naming it).
    """
    places = fashion_mnist_directories(path)
    for directory in places:
        if os.path.lexists(directory) and not directory.is_dir():  # say so, rather than look further
            raise FileNotFoundError(
                f"{directory} is not a directory (expected Fashion-MNIST's IDX files): {FASHION_HINT}"
            )
        if directory.is_dir():
            return read_idx_directory(directory, MAX_IDX_BYTES).with_classes(FASHION_CLASSES)
    looked = " or ".join(str(place) for place in places)
    raise FileNotFoundError(f"Fashion-MNIST not found in {looked}: {FASHION_HINT}")
