"""The return types of every loader in `bpgpu.datasets`, in a module of their own so that the
loaders can live in separate modules without importing each other."""

from __future__ import annotations

from typing import Any, NamedTuple


class Split(NamedTuple):
    """Rows of features `X` float32 (n, d) in [0, 1] and integer labels `y` int64 (n,), both host
    `numpy.ndarray`s."""

    X: Any
    y: Any


class DataSets(NamedTuple):
    train: Split
    validation: Split
    test: Split
