"""The return types of every loader in `bpgpu.datasets`, in a module of their own so that the
loaders can live in separate modules without importing each other."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

DIGITS = tuple(str(digit) for digit in range(10))  # the class names of the digit data sets


class Split(NamedTuple):
    """Rows of features `X` float32 (n, d) in [0, 1] and integer labels `y` int64 (n,), both host
    `numpy.ndarray`s."""

    X: Any
    y: Any


class _Parts(NamedTuple):
    train: Split
    validation: Split
    test: Split


class DataSets(_Parts):
    """`(train, validation, test)`, each a `Split`, and `classes`: the name of each label (label i
    is `classes[i]`; "0" ... "9" unless the loader says otherwise). It unpacks as the three splits."""

    def __new__(
        cls, train: Split, validation: Split, test: Split, classes: Iterable[str] = DIGITS
    ) -> DataSets:
        self = super().__new__(cls, train, validation, test)
        self._classes = tuple(str(name) for name in classes)
        return self

    @property
    def classes(self) -> tuple[str, ...]:
        return self.__dict__.get("_classes", DIGITS)  # `_replace` builds without __new__

    def with_classes(self, classes: Iterable[str]) -> DataSets:
        """The same splits with other class names."""
        return DataSets(*self, classes=classes)
