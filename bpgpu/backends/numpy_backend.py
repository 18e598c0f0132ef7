"""NumPy on the CPU: always available, and the fallback of `"auto"`.

Its namespace is `array_api_compat.numpy` with two functions swapped for faster equivalents: the
compat layer's `sum` and `take` are Python wrappers that cost a few microseconds per call, which is
a tenth of a training step at mini-batch 10. The replacements call NumPy's ufunc reduction and the
array method directly for the cases bpgpu's equations use, and hand everything else to the compat
functions; `tests/test_backends.py` checks that they return exactly what the compat functions do.
The swap is optional: `BPGPU_NUMPY_COMPAT=1` turns it off.
"""

from __future__ import annotations

import os
from typing import Any

import array_api_compat
import array_api_compat.numpy as compat
import numpy as np

from ._base import Backend, namespace_with
from .host import quiet_floating_point


def _sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    if dtype is None and axis is not None and x.dtype.kind == "f":
        return np.add.reduce(x, axis=axis, keepdims=keepdims)
    return compat.sum(x, axis=axis, dtype=dtype, keepdims=keepdims)


def _take(x: Any, indices: Any, /, *, axis: int | None = None) -> Any:
    if axis is None:
        return compat.take(x, indices)
    return x.take(indices, axis=axis)


XP = namespace_with(compat, sum=_sum, take=_take)


class NumpyBackend(Backend):
    name = "numpy"

    def activate(self) -> Any:
        return quiet_floating_point()

    def owns(self, array: Any) -> bool:
        return array_api_compat.is_numpy_array(array)


def load() -> NumpyBackend:
    """The NumPy backend; `BPGPU_NUMPY_COMPAT=1` in the environment keeps the plain compat namespace."""
    return NumpyBackend(compat if os.environ.get("BPGPU_NUMPY_COMPAT") == "1" else XP, "cpu")
