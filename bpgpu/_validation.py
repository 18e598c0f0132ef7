"""Checks at the public boundary.

Every user mistake becomes a `ValueError` or `TypeError` whose message names what was expected and
what came. These functions only read: they return validated values and never touch a network.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence
from typing import Any

import array_api_compat

from ._messages import show
from .backends import Backend
from .backends.host import host_memory_bytes
from .labels import one_hot

DTYPES = ("float32", "float64")
DISTRIBUTION_TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


def choice(value: Any, name: str, options: Sequence[str]) -> str:
    known = ", ".join(repr(o) for o in options)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {known}; got {show(value)} ({type(value).__name__})")
    if value not in options:
        raise ValueError(f"{name} must be one of {known}; got {show(value)}")
    return value


def names(value: Any, name: str, options: Sequence[str]) -> tuple[str, ...]:
    """A sequence of distinct names from `options` (a single string is a mistake, not a sequence)."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a tuple of names from {tuple(options)}; got {show(value)}")
    chosen = tuple(choice(v, f"each of {name}", options) for v in value)
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"{name} names something twice: {chosen}")
    return chosen


MAX_INT = 2**63 - 1  # counts (rows, widths, epochs) are int64 on every device
MAX_SEED = 2**128  # numpy's SeedSequence draws 128 bits of entropy; larger seeds add nothing


def positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer; got {show(value)} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer; got {show(value)}")
    if value > MAX_INT:
        raise ValueError(f"{name} must be a positive integer at most 2**63 - 1; got {show(value)}")
    return int(value)


def _real(value: Any, name: str, expected: str) -> float:
    """`value` as a float, for a number that must be `expected`; too large for a float is a ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {expected}; got {show(value)} ({type(value).__name__})")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name} must be {expected}; got {show(value)}, too large for a float") from None


def positive_real(value: Any, name: str) -> float:
    number = _real(value, name, "a positive finite number")
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a positive finite number; got {show(value)}")
    return number


def non_negative_real(value: Any, name: str) -> float:
    number = _real(value, name, "a finite number ≥ 0")
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{name} must be a finite number ≥ 0; got {show(value)}")
    return number


def finite_real(value: Any, name: str) -> float:
    number = _real(value, name, "a finite number")
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number; got {show(value)}")
    return number


def index(value: Any, name: str, size: int) -> int:
    """An int in [0, size), such as a layer or a neuron."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer in [0, {size}); got {show(value)} ({type(value).__name__})"
        )
    if not 0 <= value < size:
        raise ValueError(f"{name} must be in [0, {size}); got {show(value)}")
    return int(value)


def fraction(value: Any, name: str) -> float:
    """A number in [0, 1), such as a momentum coefficient."""
    number = _real(value, name, "a number in [0, 1)")
    if not 0 <= number < 1:
        raise ValueError(f"{name} must be in [0, 1); got {show(value)}")
    return number


def layer_sizes(sizes: Any) -> list[int]:
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"sizes must be a list of layer widths such as [784, 30, 10]; got {show(sizes)}")
    if len(sizes) < 2:
        raise ValueError(f"sizes needs at least 2 layers (input and output); got {show(list(sizes))}")
    return [positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes)]


def parameters_fit(sizes: list[int], dtype: str, backend: Backend) -> None:
    """A `ValueError` when the parameters of `sizes` could not be drawn or held, so that an impossible
    network fails at once, not after drawing gigabytes of random numbers.

    The host draws every parameter, one layer at a time in float64, and keeps them in `dtype` until
    they move: that must fit in the host's memory; the parameters must then fit in the device's.
    """
    count = sum((n_in + 1) * n_out for n_in, n_out in itertools.pairwise(sizes))
    largest = max((n_in + 1) * n_out for n_in, n_out in itertools.pairwise(sizes))
    itemsize = 4 if dtype == "float32" else 8
    needs = [(count * itemsize + 8 * largest, host_memory_bytes(), "the host")]
    needs.append((count * itemsize, backend.memory_bytes(), f"{backend.name} on {backend.device}"))
    for needed, limit, where in needs:
        if limit is not None and needed > limit:
            raise ValueError(
                f"sizes {show(sizes)} make {count:.3g} parameters in {dtype}: drawing and holding them "
                f"needs {needed / 2**30:.3g} GiB, more than the {limit / 2**30:.3g} GiB of memory of {where}"
            )


def seed(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"seed must be None or a non-negative integer; got {show(value)}")
    if value < 0:
        raise ValueError(f"seed must be None or a non-negative integer; got {show(value)}")
    if value >= MAX_SEED:
        raise ValueError(f"seed must be below 2**128 (numpy's SeedSequence uses 128 bits); got {show(value)}")
    return int(value)


def dtype_name(value: Any) -> str:
    """Accepts "float32"/"float64" or a dtype object of that name (numpy.float32, torch.float64)."""
    name = value if isinstance(value, str) else getattr(value, "__name__", None) or _dtype_str(value)
    return choice(name, "dtype", DTYPES)


def optional_callable(value: Any, name: str) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be None or a function of one EpochRecord; got {type(value).__name__}")


def pair(data: Any, name: str, parts: str) -> tuple[Any, Any]:
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name} must be a pair {parts}; got {type(data).__name__}")
    return data[0], data[1]


def _array(backend: Backend, data: Any, name: str) -> tuple[Any, Any]:
    """`(array, xp)`: `data` where it will be checked, and that place's namespace. Host data is
    checked on the host, before it moves (once, by `_moved`); the backend's own arrays on its device."""
    try:
        array = backend.prepare(data)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from exc
    xp = array_api_compat.array_namespace(array)
    if not xp.isdtype(array.dtype, ("bool", "integral", "real floating")):
        raise TypeError(f"{name}: expected real numbers, got dtype {_dtype_str(array.dtype)}")
    return array, xp


def _moved(backend: Backend, array: Any) -> Any:
    """A checked array on the backend's device (a no-op for the backend's own arrays)."""
    return backend.asarray(array)


def _finite_as(xp: Any, array: Any, dtype: str, name: str) -> Any:
    """`array` cast to `dtype` after checking that every value is finite, before and after the cast.

    Values are compared in their own dtype (so nothing overflows or warns while checking); a wider
    source is also compared with the target's largest value, so nothing becomes infinite in the cast.
    Integers and booleans always fit.
    """
    target = getattr(xp, dtype)
    if xp.isdtype(array.dtype, "real floating"):
        ok = xp.isfinite(array)
        limit = float(xp.finfo(target).max)
        if float(xp.finfo(array.dtype).max) > limit:
            ok = ok & (xp.abs(array) <= limit)
        if not bool(xp.all(ok)):
            raise ValueError(f"{name} contains NaN, infinity or values beyond the {dtype} range")
    return xp.astype(array, target, copy=False)


def features(backend: Backend, data: Any, n_in: int, dtype: str, name: str = "X") -> Any:
    """`data` as a finite (n, n_in) array of `dtype` on the backend's device, n ≥ 1."""
    x, xp = _array(backend, data, name)
    if x.ndim != 2:
        raise ValueError(
            f"{name} must be 2-d, one example per row, shape (n, {n_in}); "
            f"got {x.ndim}-d shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty: got shape {tuple(x.shape)}, expected at least one row")
    if x.shape[1] != n_in:
        raise ValueError(
            f"{name} has {x.shape[1]} features per row but the input layer has {n_in} (sizes[0]); "
            f"expected shape (n, {n_in}), got {tuple(x.shape)}"
        )
    return _moved(backend, _finite_as(xp, x, dtype, name))


def labels(
    backend: Backend, data: Any, n_rows: int, n_classes: int, name: str = "labels", rows_of: str = "X"
) -> Any:
    """`data` as int64 class labels (n_rows,) in [0, n_classes) on the backend's device."""
    return _moved(backend, _labels(*_array(backend, data, name), n_rows, n_classes, name, rows_of))


def _labels(y: Any, xp: Any, n_rows: int, n_classes: int, name: str, rows_of: str) -> Any:
    """`labels`, checked where `y` is (namespace `xp`), not moved."""
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-d class labels, shape ({n_rows},); got shape {tuple(y.shape)}")
    _rows_match(y, n_rows, name, rows_of)
    if not xp.isdtype(y.dtype, "integral"):
        raise TypeError(
            f"{name} must be integer class labels in [0, {n_classes}); got dtype {_dtype_str(y.dtype)} "
            f"(for real-valued targets pass a 2-d array of shape ({n_rows}, {n_classes}))"
        )
    if xp.isdtype(y.dtype, "unsigned integer"):
        y = xp.astype(y, xp.int64)  # not every library reduces unsigned types; values are checked next
    low, high = int(xp.min(y)), int(xp.max(y))
    if low < 0 or high >= n_classes:
        one_output = (
            f"; a network with one output takes float targets of shape ({n_rows}, 1) instead, "
            "e.g. Y.reshape(-1, 1).astype('float32')"
            if n_classes == 1
            else ""
        )
        raise ValueError(
            f"{name} must lie in [0, {n_classes}) for {n_classes} output neurons; "
            f"got values from {low} to {high}{one_output}"
        )
    return xp.astype(y, xp.int64, copy=False)


def targets(
    backend: Backend,
    data: Any,
    n_rows: int,
    n_out: int,
    dtype: str,
    rule: str | None,
    name: str = "Y",
    rows_of: str = "X",
) -> Any:
    """`data` as (n_rows, n_out) targets of `dtype`; integer labels (n_rows,) become one-hot rows.

    `rule` is the cost's demand on real-valued targets: "unit_interval" (every value in [0, 1]) or
    "distribution" (rows of non-negative values summing to 1), or None.
    """
    y, xp = _array(backend, data, name)
    if y.ndim == 1:
        classes = _labels(y, xp, n_rows, n_out, name, rows_of)
        return _moved(backend, one_hot(classes, n_out, getattr(xp, dtype), xp))
    if y.ndim != 2:
        raise ValueError(
            f"{name} must be labels ({n_rows},) or targets ({n_rows}, {n_out}); got shape {tuple(y.shape)}"
        )
    _rows_match(y, n_rows, name, rows_of)
    if y.shape[1] != n_out:
        raise ValueError(
            f"{name} has {y.shape[1]} columns but the output layer has {n_out} (sizes[-1]); "
            f"expected shape ({n_rows}, {n_out}), got {tuple(y.shape)}"
        )
    y = _finite_as(xp, y, dtype, name)
    if rule == "unit_interval" and not bool(xp.all((y >= 0) & (y <= 1))):
        raise ValueError(f"{name} must lie in [0, 1] for the cross-entropy cost; got values outside")
    if rule == "distribution":
        tolerance = DISTRIBUTION_TOLERANCE[dtype]
        sums_to_one = xp.abs(xp.sum(y, axis=1) - 1.0) <= tolerance
        if not bool(xp.all(y >= 0) & xp.all(sums_to_one)):
            raise ValueError(
                f"{name} rows must be probabilities (values ≥ 0 summing to 1 within {tolerance:g}) "
                "for the log-likelihood cost; got rows that are not"
            )
    return _moved(backend, y)


def _dtype_str(dtype: Any) -> str:
    """A dtype's plain name: "float64" for numpy's float64, torch.float64 and the others alike."""
    return str(dtype).rsplit(".", 1)[-1]


def _rows_match(array: Any, n_rows: int, name: str, rows_of: str) -> None:
    if array.shape[0] != n_rows:
        raise ValueError(
            f"{rows_of} has {n_rows} rows but {name} has {array.shape[0]}; expected one per row of {rows_of}"
        )
