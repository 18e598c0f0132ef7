"""Stand-ins for the few NumPy globals that NumPy's own array pickles refer to (see `_book_pickle`).

The pickle never gets a NumPy function, class or dtype, whose state BUILD could change for the whole
process (a function's `__defaults__`) or make unsafe (a dtype's flags): only these stand-ins, which
take only NumPy's own calls and states. Each unpickler gets its own set, `stand_ins(budget)`, and
every array they build is first charged its size against the `Budget`: the bytes of pickle read so
far, less what earlier arrays took. A real pickle holds each array's data once, so it stays within
it; one that hands the same memoised data (BINGET) to many arrays does not, and is refused before
the array that would pass the budget is made. Nothing else here allocates more than a few bytes.
"""

from __future__ import annotations

import functools
import math
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

from .._messages import show

MAX_NDIM = 64  # NumPy's limit; each size is an int64
# numpy.dtype's first argument as NumPy pickles it: kind and size, of bool, integer and float types.
DTYPE_SPECS = frozenset(["b1", "f2", "f4", "f8"] + [f"{kind}{n}" for kind in "iu" for n in (1, 2, 4, 8)])
ALLOWED = [  # the book's file and NumPy 1.x say numpy.core, NumPy 2.x numpy._core
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("__builtin__", "bytes"),  # `bytes()`: an empty array's data in protocol 2
    ("builtins", "bytes"),
]


class RefusedError(pickle.UnpicklingError):
    """The pickle asks for something that NumPy's own array pickles never do."""


class Budget:
    """Bytes that arrays may still take: `read()` (the pickle's bytes read so far) less those spent."""

    __slots__ = ("read", "spent")

    def __init__(self, read: Callable[[], int]) -> None:
        self.read, self.spent = read, 0

    def spend(self, size: int) -> None:
        if self.spent + size > (available := self.read()):
            raise RefusedError(
                f"its arrays would take {self.spent + size} bytes, more than the {available} bytes of "
                "pickle read so far (the same data used for several arrays?)"
            )
        self.spent += size


class Global:
    """The allowed global `name`: calling it calls `call` (which the pickle never gets), if any."""

    __slots__ = ("call", "name")

    def __init__(self, name: str, call: Callable[..., Any] | None = None) -> None:
        self.name, self.call = name, call

    def __call__(self, *args: Any) -> Any:
        if self.call is None:
            raise RefusedError(f"the pickle calls {self.name}, which it may only pass to _reconstruct")
        return self.call(*args)

    def __setstate__(self, state: Any) -> None:
        raise RefusedError(f"the pickle sets the state of {self.name}")


class Dtype:
    """`numpy.dtype(spec, align, copy)` as NumPy pickles it, of a bool, integer or float type."""

    __slots__ = ("dtype",)

    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        if not (isinstance(spec, str) and spec in DTYPE_SPECS):
            raise RefusedError(f"numpy.dtype({show(spec)}): only bool, integer and float types are allowed")
        self.dtype = np.dtype(spec)

    def __setstate__(self, state: Any) -> None:  # NumPy's is (3, byte order, None, None, None, -1, -1, 0)
        ok = isinstance(state, tuple) and len(state) == 8 and state[1] in ("<", ">", "|")
        if not (ok and state[:1] + state[2:5] + state[7:] == (3, None, None, None, 0)):
            raise RefusedError(f"a numpy.dtype's state, {describe(state)}, sets more than the byte order")
        self.dtype = self.dtype.newbyteorder(state[1])


class Latin1:
    """`_codecs.encode(text, "latin1")`, as Python 3 pickles bytes in protocol 2: the bytes are made
    only when an array takes them, and charged to its budget then."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __setstate__(self, state: Any) -> None:
        raise RefusedError("the pickle sets the state of the bytes of _codecs.encode")


class Array:
    """`_frombuffer(data, dtype, shape, order)` (protocol 5), or the empty array of `_reconstruct`
    (protocols 0-4) that one BUILD with NumPy's state `(1, shape, dtype, fortran, data)` fills."""

    __slots__ = ("array", "budget")

    def __init__(self, budget: Budget, *args: Any) -> None:
        self.budget = budget
        self.array = make_array(budget, *args) if args else None

    def __setstate__(self, state: Any) -> None:
        if self.array is not None or not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise RefusedError(f"an array's state is {describe(state)}; expected NumPy's 5-tuple, once")
        _, shape, dtype, fortran, data = state
        self.array = make_array(self.budget, data, dtype, shape, "F" if fortran else "C")


def make_array(budget: Budget, data: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """A writable array of `data`, whose `dtype` and `shape` must take exactly as many bytes."""
    data = data.text if isinstance(data, Latin1) else data  # str: also Python 2's, read as latin-1
    kinds = isinstance(data, (str, bytes, bytearray)) and isinstance(dtype, Dtype)
    if not (kinds and _is_shape(shape) and order in ("C", "F")):
        raise RefusedError(f"an array of {describe(data)}, {describe(dtype)}, {show(shape)}, {show(order)}")
    if (size := math.prod(shape) * dtype.dtype.itemsize) != len(data):
        raise RefusedError(f"an array of shape {shape} of {dtype.dtype} takes {size} bytes; got {len(data)}")
    budget.spend(size)
    buffer = latin1(data) if isinstance(data, str) else bytearray(data) if isinstance(data, bytes) else data
    return np.frombuffer(buffer, dtype.dtype).reshape(shape, order=order)


def reconstruct(budget: Budget, ndarray: Global, cls: Any, shape: Any, dtype: Any) -> Array:
    """`_reconstruct(ndarray, (0,), b"b")`, the empty array that BUILD then fills."""
    b = dtype.text if isinstance(dtype, Latin1) else dtype
    if not (cls is ndarray and shape == (0,) and isinstance(b, (str, bytes)) and b in (b"b", "b")):
        raise RefusedError("numpy's _reconstruct is allowed only as _reconstruct(ndarray, (0,), b'b')")
    return Array(budget)


def latin1_encode(text: Any, encoding: Any) -> Latin1:
    """`_codecs.encode` as Python 3 pickles of protocol 2 use it, for bytes: latin-1 only."""
    if not (isinstance(text, str) and encoding in ("latin1", "latin-1")):
        raise RefusedError(f"_codecs.encode of {describe(text)} to {show(encoding)} (only latin1)")
    return Latin1(text)


def latin1(text: str) -> bytearray:
    """`text.encode("latin1")` a piece at a time into a bytearray, which an array can then use as is."""
    data = bytearray(len(text))
    try:
        for i in range(0, len(text), 1 << 24):
            data[i : i + (1 << 24)] = text[i : i + (1 << 24)].encode("latin1")
    except UnicodeEncodeError:
        raise RefusedError("an array's data holds characters beyond latin-1, which are not bytes") from None
    return data


def empty_bytes() -> bytes:
    return b""


def stand_ins(budget: Budget) -> dict[tuple[str, str], Global]:
    """The stand-in for each allowed `(module, name)`, its arrays charged to `budget`."""
    ndarray = Global("numpy.ndarray")
    calls: dict[str, Callable[..., Any]] = {
        "_reconstruct": functools.partial(reconstruct, budget, ndarray),
        "_frombuffer": functools.partial(Array, budget),
        "dtype": Dtype,
        "encode": latin1_encode,
        "bytes": empty_bytes,
    }
    return {
        (module, name): ndarray if name == "ndarray" else Global(f"{module}.{name}", calls[name])
        for module, name in ALLOWED
    }


def _is_shape(value: Any, ndim: int = MAX_NDIM) -> bool:
    """Whether `value` is a tuple of at most `ndim` sizes that NumPy takes (int64, not negative)."""
    return (
        type(value) is tuple and len(value) <= ndim and all(type(n) is int and 0 <= n < 2**63 for n in value)
    )


def describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"
