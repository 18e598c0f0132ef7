"""Nielsen's `mnist.pkl.gz`: a gzipped pickle of NumPy arrays, read without running code (see `bpgpu.mnist`).

The file is read twice. First `pickletools.genops` walks its opcodes without building anything: the
stream must end in STOP within `max_bytes`, hold at most `MAX_OPCODES` opcodes, number its memo
entries in order (an index sizes the unpickler's memo table), keep each opcode inside its protocol-4
frame (CPython's unpickler fails with MemoryError on one that crosses it), and really hold every
counted string and bytearray it announces (the unpickler allocates a bytearray before reading it).
Then an unpickler that resolves only the stand-ins of `_pickled_arrays` loads it, reading no more
bytes than the first pass saw. Memory therefore stays within a small multiple of the gunzipped
stream; time within two gunzips of it.
"""

from __future__ import annotations

import pathlib
import pickle
import pickletools
import struct
from typing import IO, Any

import numpy as np

from .._messages import warnings_as_errors
from ..dataset_types import DataSets, Split
from .pickled_arrays import Array, Budget, RefusedError, describe, stand_ins
from .streams import GZIP_ERRORS, gunzipped, read_up_to

MAX_OPCODES = 100_000  # NumPy writes about 20 for each array; the book's file holds 6 arrays
SPLITS = ("training_data", "validation_data", "test_data")
MEMO_PUTS = frozenset(["PUT", "BINPUT", "LONG_BINPUT"])
# What a damaged stream makes genops or the unpickler raise (warnings too: an invalid escape in a
# protocol-0 string). Not MemoryError: with the checks above, only a machine short of memory does that.
DAMAGED = (
    pickle.UnpicklingError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    EOFError,
    OverflowError,
    BufferError,
    struct.error,
    Warning,
    *GZIP_ERRORS,
)


class _Stream:
    """`read` and `readline` of `file`, never more than `limit` bytes in all; `consumed` counts them.

    Reads go `CHUNK` by `CHUNK` unless `limit` is the stream's `known` length (the second pass): then
    each asks for what it needs at once, which is no more than is there, and gets `bytes` as the
    unpickler requires (a protocol-5 bytearray is read with `read`).
    """

    def __init__(self, file: IO[bytes], limit: int, known: bool = False) -> None:
        self.file, self.limit, self.known, self.consumed = file, limit, known, 0

    def tell(self) -> int:  # for pickletools.genops, which then gives each opcode's position
        return self.consumed

    def read(self, size: int | None = -1) -> bytes | bytearray:
        size = self._allowed(size)
        return self._count(self.file.read(size) if self.known else read_up_to(self.file, size))

    def readline(self, size: int | None = -1) -> bytes:
        return self._count(self.file.readline(self._allowed(size)))

    def _allowed(self, size: int | None) -> int:
        left = self.limit - self.consumed + 1  # one more, to notice a stream that goes on
        return left if size is None or size < 0 else min(size, left)

    def _count(self, data: Any) -> Any:
        self.consumed += len(data)
        if self.consumed > self.limit:
            raise RefusedError(f"it gunzips to more than {self.limit} bytes")
        return data


def read_book_pickle(path: pathlib.Path, file: IO[bytes], max_bytes: int) -> DataSets:
    """The `DataSets` in `file` (open, gzipped, at `path`), whose pickle may gunzip to `max_bytes`."""
    try:
        with warnings_as_errors():
            length = _scan(file, max_bytes)
            data = _unpickle(file, length)
    except RefusedError as exc:
        raise ValueError(f"{path}: refusing to load it: {exc} (expected Nielsen's mnist.pkl.gz)") from None
    except DAMAGED as exc:  # each means "not this format"
        raise ValueError(f"{path}: not a readable gzipped pickle: {type(exc).__name__}: {exc}") from None
    if not (isinstance(data, (tuple, list)) and len(data) == 3):
        raise ValueError(f"{path}: expected a pickled tuple {SPLITS}; got {describe(data)}")
    splits = []
    for name, pair in zip(SPLITS, data, strict=True):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"{path}: expected {name} to be a pair (X, y); got {describe(pair)}")
        splits.append(_checked_split(path, name, *pair))
    widths = [s.X.shape[1] for s in splits]
    if len(set(widths)) != 1:
        raise ValueError(f"{path}: expected X of every split to have the same columns; got {widths}")
    return DataSets(*splits)


def _scan(file: IO[bytes], max_bytes: int) -> int:
    """The first pass: the opcodes, checked as the module docstring says; the stream's length."""
    with gunzipped(file) as raw:
        stream = _Stream(raw, max_bytes)
        frame_end = None
        for count, (opcode, arg, pos) in enumerate(pickletools.genops(stream)):
            if count >= MAX_OPCODES:
                raise RefusedError(f"it holds more than {MAX_OPCODES} opcodes; NumPy writes ~20 an array")
            if opcode.name in MEMO_PUTS and arg > count:
                raise RefusedError(f"opcode {count} stores memo entry {arg}; Python numbers them in order")
            frame_end = None if frame_end is not None and pos >= frame_end else frame_end
            if frame_end is not None and (opcode.name == "FRAME" or stream.consumed > frame_end):
                raise RefusedError(f"the {opcode.name} at byte {pos} crosses the end of its frame")
            if opcode.name == "FRAME":
                frame_end = stream.consumed + arg
    return stream.consumed


def _unpickle(file: IO[bytes], length: int) -> Any:
    """The second pass: the pickle's object, from stand-ins only, reading at most `length` bytes."""
    with gunzipped(file) as raw:
        stream = _Stream(raw, length, known=True)
        return _ArraysOnlyUnpickler(stream, Budget(lambda: stream.consumed)).load()


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that resolves only its own stand-ins, so loading can run no other code."""

    def __init__(self, stream: _Stream, budget: Budget) -> None:
        super().__init__(stream, encoding="latin1")  # the book's file holds Python 2 str: latin-1
        self.allowed = stand_ins(budget)

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise RefusedError(f"the pickle refers to {module}.{name}, which is not part of a NumPy array")
        return self.allowed[module, name]


def _checked_split(path: pathlib.Path, name: str, X: Any, y: Any) -> Split:
    X, y = (v.array if isinstance(v, Array) else v for v in (X, y))
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f" and X.shape[1] > 0):
        raise ValueError(f"{path}: expected {name} X to be a 2-d float array (n, pixels); got {describe(X)}")
    if len(X) == 0:
        raise ValueError(f"{path}: expected {name} to hold at least one image; got X of shape {X.shape}")
    if not (isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "iu" and len(y) == len(X)):
        raise ValueError(
            f"{path}: expected {name} y to be 1-d integer labels, one for each of the {len(X)} rows "
            f"of X; got {describe(y)}"
        )
    if not np.isfinite(X).all():
        raise ValueError(f"{path}: expected {name} X to be finite; it holds NaN or inf")
    if X.min() < 0 or X.max() > 1:
        raise ValueError(f"{path}: expected {name} X in [0, 1]; got values in [{X.min()}, {X.max()}]")
    if y.min() < 0 or y.max() > 9:
        raise ValueError(f"{path}: expected {name} to be digits 0..9; got labels in [{y.min()}, {y.max()}]")
    return Split(X.astype(np.float32, copy=False), y.astype(np.int64, copy=False))
