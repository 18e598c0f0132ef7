"""MNIST from a file you already have: Nielsen's `mnist.pkl.gz`, or a directory of the four IDX files.

`load_mnist(path)` returns the same `DataSets(train, validation, test)` as `load_digits`, each a
`Split(X, y)` of host arrays: X float32 (n, 784) in [0, 1], one image per row, and y int64 (n,) in
0..9. Nothing is downloaded. The two sources:

- **Nielsen's `mnist.pkl.gz`** (github.com/mnielsen/neural-networks-and-deep-learning, `data/`): a
  gzipped pickle, written by Python 2, of `(training_data, validation_data, test_data)`, each a pair
  `(X float32 (n, 784) in [0, 1], y int64 (n,))` of 50 000 / 10 000 / 10 000 rows, kept as they are.
  A pickle can run code when it is loaded, so it is read by an unpickler that resolves only the
  NumPy globals an array needs (`_ALLOWED`); any other global raises `ValueError` and nothing runs.
- **LeCun's IDX files** (yann.lecun.com/exdb/mnist), in one directory: `train-images-idx3-ubyte`,
  `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each plain or
  gzipped (`name.gz`), also spelt `train-images.idx3-ubyte` etc. X is pixel / 255. As the book
  does, the last training rows become validation: min(10 000, n // 6) of them, which is 10 000 of
  MNIST's 60 000 (50 000 / 10 000 / 10 000) and a sixth of a smaller set.

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
from typing import Any, BinaryIO

import numpy as np

from ._splits import DataSets, Split

GZIP_MAGIC = b"\x1f\x8b"
VALIDATION_ROWS = 10_000
PICKLE_SPLITS = ("training_data", "validation_data", "test_data")
EXPECTED = "Nielsen's mnist.pkl.gz (a gzipped pickle) or a directory of the four MNIST IDX files"


def load_mnist(path: str | os.PathLike[str]) -> DataSets:
    """MNIST from Nielsen's `mnist.pkl.gz` or an IDX directory, as `DataSets(train, validation, test)`.

    Each split is `Split(X float32 (n, 784) in [0, 1], y int64 (n,) in 0..9)`. See the module
    docstring for the two formats and the validation split of the IDX files.
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


def _latin1_encode(text: str, encoding: str) -> bytes:
    """`_codecs.encode` as Python 3 pickles of protocol 2 use it, for bytes: latin-1 only."""
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} (only latin1 is allowed)")
    return text.encode("latin1")


_ARRAY = np.zeros(1)
_RECONSTRUCT = _ARRAY.__reduce__()[0]  # NumPy's own, without touching the deprecated `numpy.core`
_FROMBUFFER = _ARRAY.__reduce_ex__(5)[0]
_ALLOWED: dict[tuple[str, str], Any] = {
    # An array pickled with protocol 0-4 is `_reconstruct(ndarray, shape, dtype)` and then its state.
    # The book's file and NumPy 1.x name the function in numpy.core, NumPy 2.x in numpy._core.
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    # Protocol 5 pickles an array as `_frombuffer(buffer, dtype, shape, order)`.
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    # Python 3 writes bytes (an array's data) in protocol 2 as `_codecs.encode(text, "latin1")`.
    ("_codecs", "encode"): _latin1_encode,
}


class _ForbiddenGlobalError(ValueError):
    pass


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals in `_ALLOWED`, so loading can run no other code."""

    def __init__(self, file: BinaryIO, path: pathlib.Path) -> None:
        super().__init__(file, encoding="latin1")  # the book's file holds Python 2 str
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[module, name]
        except KeyError:
            raise _ForbiddenGlobalError(
                f"{self.path}: the pickle refers to {module}.{name}, which is not part of a NumPy array; "
                f"refusing to load it (expected {EXPECTED})"
            ) from None


def _from_pickle(path: pathlib.Path) -> DataSets:
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] != GZIP_MAGIC:
        raise ValueError(f"{path}: expected {EXPECTED}; the file is not gzip-compressed (it starts {head!r})")
    try:
        with gzip.open(path, "rb") as f:
            data = _ArraysOnlyUnpickler(f, path).load()
    except _ForbiddenGlobalError:
        raise
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
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f" and X.shape[1] > 0):
        raise ValueError(f"{path}: expected {name} X to be a 2-d float array (n, 784); got {_describe(X)}")
    if not (isinstance(y, np.ndarray) and y.ndim == 1 and y.dtype.kind in "iu" and len(y) == len(X)):
        raise ValueError(
            f"{path}: expected {name} y to be 1-d integer labels, one for each of the {len(X)} rows "
            f"of X; got {_describe(y)}"
        )
    if not np.isfinite(X).all():
        raise ValueError(f"{path}: expected {name} X to be finite; it holds NaN or inf")
    if X.size and (X.min() < 0 or X.max() > 1):
        raise ValueError(f"{path}: expected {name} X in [0, 1]; got values in [{X.min()}, {X.max()}]")
    _check_labels(path, name, y)
    return Split(X.astype(np.float32, copy=False), y.astype(np.int64, copy=False))


def _check_labels(path: pathlib.Path, name: str, y: np.ndarray) -> None:
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"{path}: expected {name} to be digits 0..9; got labels in [{y.min()}, {y.max()}]")


# ---- LeCun's IDX files -------------------------------------------------------------------------


def _from_idx_directory(directory: pathlib.Path) -> DataSets:
    train, test = _idx_split(directory, "train"), _idx_split(directory, "t10k")
    if train.X.shape[1] != test.X.shape[1]:
        raise ValueError(
            f"{directory}: expected training and test images of the same size; got "
            f"{train.X.shape[1]} and {test.X.shape[1]} pixels"
        )
    n_validation = min(VALIDATION_ROWS, len(train.y) // 6)
    cut = len(train.y) - n_validation
    validation = Split(train.X[cut:], train.y[cut:])
    return DataSets(Split(train.X[:cut], train.y[:cut]), validation, test)


def _idx_split(directory: pathlib.Path, prefix: str) -> Split:
    images_path = _find(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = _read_idx(images_path, ndim=3), _read_idx(labels_path, ndim=1)
    if len(labels) != len(images):
        raise ValueError(
            f"{labels_path}: expected one label for each of the {len(images)} images in "
            f"{images_path.name}; got {len(labels)} labels"
        )
    _check_labels(labels_path, "the labels", labels)
    X = images.reshape(len(images), math.prod(images.shape[1:])).astype(np.float32)
    X /= 255
    return Split(X, labels.astype(np.int64))


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
    """An IDX file of unsigned bytes: big-endian magic 0x0000080<ndim>, ndim sizes, then the data."""
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == GZIP_MAGIC
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:  # a truncated gzip stream ends in EOFError
        raise ValueError(f"{path}: cannot read the IDX file: {type(exc).__name__}: {exc}") from exc
    magic, header = 0x0800 | ndim, 4 + 4 * ndim
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise ValueError(
            f"{path}: expected an IDX file of unsigned bytes in {ndim}-d, starting with the magic number "
            f"0x{magic:08x} and {ndim} sizes; got {len(raw)} bytes starting {raw[:header]!r}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) != header + math.prod(dims):
        raise ValueError(
            f"{path}: expected {header} + {math.prod(dims)} bytes for an array of shape {dims}; "
            f"got {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
