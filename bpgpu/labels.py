"""Class labels as the network sees them: one-hot target rows, and counting the rows it gets right."""

from __future__ import annotations

from typing import Any

import array_api_compat

Array = Any


def one_hot(labels: Array, n_classes: int, dtype: Any, xp: Any) -> Array:
    """Integer labels (n,) as rows of the n_classes × n_classes identity: (n, n_classes)."""
    classes = xp.arange(n_classes, dtype=labels.dtype, device=array_api_compat.device(labels))
    return xp.astype(labels[:, None] == classes[None, :], dtype)


def count_correct(output: Array, labels: Array, xp: Any) -> Array:
    """How many rows of `output` (n, n_out) have their largest entry at `labels` (n,): 0-d int."""
    return xp.sum(xp.astype(xp.argmax(output, axis=1) == labels, xp.int64))
