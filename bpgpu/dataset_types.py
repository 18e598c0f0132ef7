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
        if isinstance(classes, str) or not all(isinstance(name, str) for name in classes):
            raise TypeError(f"classes must be a sequence of names (str); got {classes!r:.60}")
        self = super().__new__(cls, train, validation, test)
        self._classes = tuple(classes)
        return self

    @classmethod
    def _make(cls, iterable: Iterable[Split], classes: Iterable[str] = DIGITS) -> DataSets:
        return cls(*iterable, classes=classes)

    def _replace(self, **changes: Any) -> DataSets:
        classes = changes.pop("classes", self.classes)
        return DataSets(*super()._replace(**changes), classes=classes)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.__dict__.get("_classes", DIGITS)  # `_replace` builds without __new__

    def with_classes(self, classes: Iterable[str]) -> DataSets:
        """The same splits with other class names."""
        return DataSets(*self, classes=classes)
