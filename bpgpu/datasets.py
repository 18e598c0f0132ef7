"""Data sets as host NumPy arrays: the digits that ship inside bpgpu, and MNIST from a local file.

`load_digits` is the embedded default: the UCI "Optical Recognition of Handwritten Digits" test set
(E. Alpaydin and C. Kaynak, 1998; CC BY 4.0), 1797 images of 8×8 pixels counting 0–16, in the CSV
layout that scikit-learn ships (64 pixel columns, then the digit). No network access is needed.

`load_mnist(path)` (in `bpgpu.mnist`) reads MNIST from Nielsen's `mnist.pkl.gz` or from a directory
of the four IDX files; nothing is downloaded. Both return `DataSets(train, validation, test)`.
"""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

from ._splits import DataSets, Split
from .mnist import load_mnist

__all__ = ["DataSets", "Split", "load_digits", "load_mnist"]


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
