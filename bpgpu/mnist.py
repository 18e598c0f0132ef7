"""MNIST from a file you already have: Nielsen's `mnist.pkl.gz`, or a directory of the four IDX files.

`load_mnist(path)` returns the same `DataSets(train, validation, test)` as `load_digits`, each a
`Split(X, y)` of host arrays: X float32 (n, rows·cols) in [0, 1], one image per row (784 = 28×28 for
MNIST; any image size is accepted, the same in every split), and y int64 (n,) in 0..9, with n ≥ 1 in
every split. Nothing is downloaded. The two sources:

- **Nielsen's `mnist.pkl.gz`** (github.com/mnielsen/neural-networks-and-deep-learning, `data/`): a
  gzipped pickle, written by Python 2, of `(training_data, validation_data, test_data)`, each a pair
  `(X float32 (n, 784) in [0, 1], y int64 (n,))` of 50 000 / 10 000 / 10 000 rows, kept as they are.
  A pickle can run code when it is loaded, so it is read by an unpickler that resolves only the
  NumPy globals an array needs, to stand-ins (`_ALLOWED`) that accept only the calls NumPy's own
  pickles make and build each array no larger than its data in the file; anything else raises
  `ValueError` and nothing runs. At most `MAX_PICKLE_BYTES` (1 GiB) are gunzipped.
- **LeCun's IDX files** (yann.lecun.com/exdb/mnist), in one directory: `train-images-idx3-ubyte`,
  `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each plain or
  gzipped (`name.gz`), also spelt `train-images.idx3-ubyte` etc. X is pixel / 255. As the book
  does, the last training rows become validation: min(10 000, n // 6) of them, which is 10 000 of
  MNIST's 60 000 (50 000 / 10 000 / 10 000) and a sixth of a smaller set (of at least 6 images).

A file is gunzipped when it starts with the gzip magic bytes 1f 8b, whatever its name. A missing
path raises `FileNotFoundError`; a file that is truncated or not what its format says raises
`ValueError`. Both name the file, what was expected and what came.
"""

from __future__ import annotations

import gzip
import math
import os
import pathlib
import pickle
import struct
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

from ._splits import DataSets, Split

GZIP_MAGIC = b"\x1f\x8b"
VALIDATION_ROWS = 10_000
MAX_PICKLE_BYTES = 1 << 30  # Nielsen's file is ~220 MB gunzipped; more is a gzip bomb
PICKLE_SPLITS = ("training_data", "validation_data", "test_data")
EXPECTED = "Nielsen's mnist.pkl.gz (a gzipped pickle) or a directory of the four MNIST IDX files"


def load_mnist(path: str | os.PathLike[str]) -> DataSets:
    """MNIST from Nielsen's `mnist.pkl.gz` or an IDX directory, as `DataSets(train, validation, test)`.

    Each split is `Split(X float32 (n, rows·cols) in [0, 1], y int64 (n,) in 0..9)` with n ≥ 1; 784
    columns for MNIST, but any image size is read. See the module docstring for the two formats and
    the validation split of the IDX files.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        return _from_idx_directory(path)
    if path.is_file():
        return _from_pickle(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory; expected {EXPECTED}")
    raise ValueError(f"{path}: not a regular file or a directory; expected {EXPECTED}")


# ---- Nielsen's mnist.pkl.gz --------------------------------------------------------------------
# The pickle never gets a NumPy function, class or dtype, whose state BUILD could change for the whole
# process (a function's `__defaults__`) or make unsafe (a dtype's flags): only the stand-ins below,
# which take only NumPy's own calls and states and build arrays no larger than their data in the file.


class _RefusedError(pickle.UnpicklingError):
    """The pickle asks for something that NumPy's own array pickles never do."""


class _Global:
    """The allowed global `name`: calling it calls `call` (which the pickle never gets), if any."""

    __slots__ = ("call", "name")

    def __init__(self, name: str, call: Callable[..., Any] | None = None) -> None:
        self.name, self.call = name, call

    def __call__(self, *args: Any) -> Any:
        if self.call is None:
            raise _RefusedError(f"the pickle calls {self.name}, which it may only pass to _reconstruct")
        return self.call(*args)

    def __setstate__(self, state: Any) -> None:
        raise _RefusedError(f"the pickle sets the state of {self.name}")


class _Dtype:
    """`numpy.dtype(spec, align, copy)` as NumPy pickles it, of a bool, integer or float type."""

    __slots__ = ("dtype",)

    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        self.dtype = np.dtype(spec) if isinstance(spec, str) else np.dtype(object)
        if self.dtype.kind not in "biuf":
            raise _RefusedError(f"numpy.dtype({spec!r:.40}): only bool, integer and float types are allowed")

    def __setstate__(self, state: Any) -> None:  # NumPy's is (3, byte order, None, None, None, -1, -1, 0)
        ok = isinstance(state, tuple) and len(state) == 8 and state[1] in ("<", ">", "|")
        if not (ok and state[:1] + state[2:5] + state[7:] == (3, None, None, None, 0)):
            raise _RefusedError(f"a numpy.dtype's state, {_describe(state)}, sets more than the byte order")
        self.dtype = self.dtype.newbyteorder(state[1])


class _Array:
    """`_frombuffer(data, dtype, shape, order)` (protocol 5), or the empty array of `_reconstruct`
    (protocols 0-4) that one BUILD with NumPy's state `(1, shape, dtype, fortran, data)` fills."""

    __slots__ = ("array",)

    def __init__(self, *args: Any) -> None:
        self.array = _array(*args) if args else None

    def __setstate__(self, state: Any) -> None:
        if self.array is not None or not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise _RefusedError(f"an array's state is {_describe(state)}; expected NumPy's 5-tuple, once")
        _, shape, dtype, fortran, data = state
        self.array = _array(data, dtype, shape, "F" if fortran else "C")


def _array(data: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """A writable array of `data`, whose `dtype` and `shape` must take exactly as many bytes."""
    if isinstance(data, (str, bytes)):  # str: Python 2's, read as latin-1 text
        data = _latin1(data) if isinstance(data, str) else bytearray(data)
    sizes = isinstance(shape, tuple) and all(type(n) is int and n >= 0 for n in shape)
    if not (isinstance(data, bytearray) and isinstance(dtype, _Dtype) and sizes and order in ("C", "F")):
        raise _RefusedError(f"an array of {_describe(data)}, {_describe(dtype)}, {shape!r:.60}, {order!r:.9}")
    if (size := math.prod(shape) * dtype.dtype.itemsize) != len(data):
        raise _RefusedError(f"an array of shape {shape} of {dtype.dtype} takes {size} bytes; got {len(data)}")
    return np.frombuffer(data, dtype.dtype).reshape(shape, order=order)


def _reconstruct(cls: Any, shape: Any, dtype: Any) -> _Array:
    if not (cls is _NDARRAY and shape == (0,) and dtype in (b"b", "b")):
        raise _RefusedError("numpy's _reconstruct is allowed only as _reconstruct(ndarray, (0,), b'b')")
    return _Array()


def _latin1_encode(text: Any, encoding: Any) -> bytearray:
    """`_codecs.encode` as Python 3 pickles of protocol 2 use it, for bytes: latin-1 only."""
    if not (isinstance(text, str) and encoding in ("latin1", "latin-1")):
        raise _RefusedError(f"_codecs.encode of {_describe(text)} to {encoding!r:.20} (only latin1)")
    return _latin1(text)


def _latin1(text: str) -> bytearray:
    """`text.encode("latin1")` a piece at a time into a bytearray, which an array can then use as is."""
    data = bytearray(len(text))
    for i in range(0, len(text), 1 << 24):
        data[i : i + (1 << 24)] = text[i : i + (1 << 24)].encode("latin1")
    return data


_NDARRAY = _Global("numpy.ndarray")
_ALLOWED = {  # the book's file and NumPy 1.x say numpy.core, NumPy 2.x numpy._core
    (module, name): _Global(f"{module}.{name}", call) if call else _NDARRAY
    for module, name, call in [
        ("numpy.core.multiarray", "_reconstruct", _reconstruct),
        ("numpy._core.multiarray", "_reconstruct", _reconstruct),
        ("numpy.core.numeric", "_frombuffer", _Array),
        ("numpy._core.numeric", "_frombuffer", _Array),
        ("numpy", "ndarray", None),
        ("numpy", "dtype", _Dtype),
        ("_codecs", "encode", _latin1_encode),
        ("__builtin__", "bytes", lambda: b""),  # `bytes()`: an empty array's data in protocol 2
        ("builtins", "bytes", lambda: b""),
    ]
}


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in `_ALLOWED`, so loading can run no other code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise _RefusedError(f"the pickle refers to {module}.{name}, which is not part of a NumPy array")
        return _ALLOWED[module, name]


class _Capped:
    """A file's `read` and `readline`, refusing to go past `MAX_PICKLE_BYTES` (a gzip bomb)."""

    def __init__(self, file: BinaryIO) -> None:
        self.file, self.left = file, MAX_PICKLE_BYTES

    def read(self, size: int = -1, line: bool = False) -> bytes:
        size = self.left + 1 if size < 0 else min(size, self.left + 1)
        data = self.file.readline(size) if line else self.file.read(size)
        self.left -= len(data)
        if self.left < 0:
            raise _RefusedError(f"it gunzips to more than {MAX_PICKLE_BYTES} bytes")
        return data

    def readline(self, size: int = -1) -> bytes:
        return self.read(size, line=True)


def _from_pickle(path: pathlib.Path) -> DataSets:
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] != GZIP_MAGIC:
        raise ValueError(f"{path}: expected {EXPECTED}; the file is not gzip-compressed (it starts {head!r})")
    try:
        with gzip.open(path, "rb") as f:  # the book's file holds Python 2 str: latin-1
            data = _ArraysOnlyUnpickler(_Capped(f), encoding="latin1").load()
    except _RefusedError as exc:
        raise ValueError(f"{path}: refusing to load it: {exc} (expected {EXPECTED})") from None
    except Exception as exc:  # a damaged pickle can fail in many ways; each means "not this format"
        raise ValueError(f"{path}: not a readable gzipped pickle: {type(exc).__name__}: {exc}") from exc
    if not (isinstance(data, (tuple, list)) and len(data) == 3):
        raise ValueError(f"{path}: expected a pickled tuple {PICKLE_SPLITS}; got {_describe(data)}")
    splits = []
    for name, pair in zip(PICKLE_SPLITS, data, strict=True):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"{path}: expected {name} to be a pair (X, y); got {_describe(pair)}")
        splits.append(_checked_split(path, name, *pair))
    widths = [s.X.shape[1] for s in splits]
    if len(set(widths)) != 1:
        raise ValueError(f"{path}: expected X of every split to have the same columns; got {widths}")
    return DataSets(*splits)


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__}"


def _checked_split(path: pathlib.Path, name: str, X: Any, y: Any) -> Split:
    X, y = (v.array if isinstance(v, _Array) else v for v in (X, y))
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f" and X.shape[1] > 0):
        raise ValueError(f"{path}: expected {name} X to be a 2-d float array (n, pixels); got {_describe(X)}")
    if len(X) == 0:
        raise ValueError(f"{path}: expected {name} to hold at least one image; got X of shape {X.shape}")
    if not (isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "iu" and len(y) == len(X)):
        raise ValueError(
            f"{path}: expected {name} y to be 1-d integer labels, one for each of the {len(X)} rows "
            f"of X; got {_describe(y)}"
        )
    if not np.isfinite(X).all():
        raise ValueError(f"{path}: expected {name} X to be finite; it holds NaN or inf")
    if X.min() < 0 or X.max() > 1:
        raise ValueError(f"{path}: expected {name} X in [0, 1]; got values in [{X.min()}, {X.max()}]")
    _check_labels(path, name, y)
    return Split(X.astype(np.float32, copy=False), y.astype(np.int64, copy=False))


def _check_labels(path: pathlib.Path, name: str, y: np.ndarray) -> None:
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{path}: expected {name} to be digits 0..9; got labels in [{y.min()}, {y.max()}]")


# ---- LeCun's IDX files -------------------------------------------------------------------------


def _from_idx_directory(directory: pathlib.Path) -> DataSets:
    (train, train_path), (test, _) = _idx_split(directory, "train"), _idx_split(directory, "t10k")
    if train.X.shape[1] != test.X.shape[1]:
        raise ValueError(
            f"{directory}: expected training and test images of the same size; got "
            f"{train.X.shape[1]} and {test.X.shape[1]} pixels"
        )
    if (n := len(train.y)) < 6:
        raise ValueError(f"{train_path}: expected at least 6 images, a sixth for validation; got {n}")
    cut = n - min(VALIDATION_ROWS, n // 6)
    validation = Split(train.X[cut:], train.y[cut:])
    return DataSets(Split(train.X[:cut], train.y[:cut]), validation, test)


def _idx_split(directory: pathlib.Path, prefix: str) -> tuple[Split, pathlib.Path]:
    images_path = _find(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = _read_idx(images_path, ndim=3), _read_idx(labels_path, ndim=1)
    if len(images) == 0:
        raise ValueError(f"{images_path}: expected at least one image; got 0 images of {images.shape[1:]}")
    if len(labels) != len(images):
        raise ValueError(
            f"{labels_path}: expected one label for each of the {len(images)} images in "
            f"{images_path.name}; got {len(labels)} labels"
        )
    _check_labels(labels_path, "the labels", labels)
    X = images.reshape(len(images), math.prod(images.shape[1:])).astype(np.float32)
    X /= 255
    return Split(X, labels.astype(np.int64)), images_path


def _find(directory: pathlib.Path, name: str) -> pathlib.Path:
    """`name` in `directory`, plain or gzipped, with `-idx` or `.idx` before the dimension count."""
    spellings = (name, name.replace("-idx", ".idx"))
    candidates = [directory / f"{stem}{ext}" for stem in spellings for ext in ("", ".gz")]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(c.name for c in candidates)
    raise FileNotFoundError(f"{directory / name}: MNIST IDX file not found (looked for {tried})")


def _read_idx(path: pathlib.Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes: big-endian magic 0x0000080<ndim>, ndim sizes, then the data.

    Only as many bytes as the header announces (plus one, to notice extra data) are ever read, and
    the announced size is capped, so a gzip bomb cannot exhaust memory.
    """
    magic, header = 0x0800 | ndim, 4 + 4 * ndim
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == GZIP_MAGIC
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
            head = f.read(header)
            if len(head) < header or int.from_bytes(head[:4], "big") != magic:
                raise ValueError(
                    f"{path}: expected an IDX file of unsigned bytes in {ndim}-d, starting with the magic "
                    f"number 0x{magic:08x} and {ndim} sizes; got {len(head)} bytes starting {head!r}"
                )
            dims = struct.unpack(f">{ndim}I", head[4:])
            size = math.prod(dims)
            if size > MAX_PICKLE_BYTES:
                raise ValueError(
                    f"{path}: announces {size} bytes of data (shape {dims}); the limit is {MAX_PICKLE_BYTES}"
                )
            data = f.read(size + 1)
    except (OSError, EOFError, zlib.error) as exc:  # a truncated gzip stream ends in EOFError
        raise ValueError(f"{path}: cannot read the IDX file: {type(exc).__name__}: {exc}") from exc
    if len(data) != size:
        got = f"{header + len(data)}" if len(data) <= size else "more"
        raise ValueError(
            f"{path}: expected {header} + {size} bytes for an array of shape {dims}; got {got} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)
