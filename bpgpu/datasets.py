"""Data sets that ship inside bpgpu, returned as host NumPy arrays.

`load_digits` is the embedded default: the UCI "Optical Recognition of Handwritten Digits" test set
(E. Alpaydin and C. Kaynak, 1998; CC BY 4.0), 1797 images of 8×8 pixels counting 0–16, in the CSV
layout that scikit-learn ships (64 pixel columns, then the digit). No network access is needed.
"""

from __future__ import annotations

import gzip
from importlib import resources
from typing import NamedTuple

import numpy as np


class Split(NamedTuple):
    """Rows of features `X` float32 (n, d) in [0, 1] and integer labels `y` int64 (n,)."""

    X: np.ndarray
    y: np.ndarray


class DataSets(NamedTuple):
    train: Split
    validation: Split
    test: Split


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
