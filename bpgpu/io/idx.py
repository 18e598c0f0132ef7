"""LeCun's IDX files of unsigned bytes, four to a directory, as `DataSets` (see `bpgpu.mnist`).

Every size in a header is checked before anything is read or allocated: the magic number, that every
image dimension is at least 1, the announced data size against the cap, and for a plain file against
its size on disk. The pixels are then read at most `CHUNK` bytes ahead of what is really there and
converted straight into one float32 array.
"""

from __future__ import annotations

import math
import os
import pathlib
import struct

import numpy as np

from ..dataset_types import DataSets, Split
from .files import open_regular
from .streams import GZIP_ERRORS, gunzipped, is_gzipped, read_up_to

VALIDATION_ROWS = 10_000
UNSIGNED_BYTES = b"\x00\x00\x08"  # the magic number's first three bytes; the fourth is the ndim
NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def is_idx(head: bytes) -> bool:
    """Whether `head`, a file's first 4 (gunzipped) bytes, is the magic number of an IDX file of bytes."""
    return len(head) == 4 and head.startswith(UNSIGNED_BYTES) and 1 <= head[3] <= 4


def read_idx_directory(directory: pathlib.Path, max_bytes: int) -> DataSets:
    """The four IDX files in `directory`, each of at most `max_bytes` bytes of data, as `DataSets`."""
    (train, train_path), (test, _) = (_split(directory, prefix, max_bytes) for prefix in ("train", "t10k"))
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


def _split(directory: pathlib.Path, prefix: str, max_bytes: int) -> tuple[Split, pathlib.Path]:
    images_path = _find(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find(directory, f"{prefix}-labels-idx1-ubyte")
    images = _read_idx(images_path, 3, max_bytes)
    labels = _read_idx(labels_path, 1, max_bytes)
    if len(images) == 0:
        raise ValueError(f"{images_path}: expected at least one image; got 0 images of {images.shape[1:]}")
    if len(labels) != len(images):
        raise ValueError(
            f"{labels_path}: expected one label for each of the {len(images)} images in "
            f"{images_path.name}; got {len(labels)} labels"
        )
    if labels.max() > 9:  # unsigned bytes: never below 0
        raise ValueError(
            f"{labels_path}: expected digits 0..9; got labels in [{labels.min()}, {labels.max()}]"
        )
    X = np.empty((len(images), math.prod(images.shape[1:])), np.float32)
    np.divide(images.reshape(X.shape), np.float32(255), out=X, dtype=np.float32)  # no float64 on the way
    return Split(X, labels.astype(np.int64)), images_path


def _find(directory: pathlib.Path, name: str) -> pathlib.Path:
    """`name` in `directory`, plain or gzipped, with `-idx` or `.idx` before the dimension count.

    Whatever exists under one of these names is taken, so that a FIFO or a device there is refused by
    name (when it is opened) rather than passed over.
    """
    spellings = (name, name.replace("-idx", ".idx"))
    candidates = [directory / f"{stem}{ext}" for stem in spellings for ext in ("", ".gz")]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    tried = ", ".join(c.name for c in candidates)
    raise FileNotFoundError(f"{directory / name}: MNIST IDX file not found (looked for {tried})")


def _read_idx(path: pathlib.Path, ndim: int, max_bytes: int) -> np.ndarray:
    """An IDX file of unsigned bytes: big-endian magic 0x0000080<ndim>, ndim sizes, then the data."""
    header = 4 + 4 * ndim
    with open_regular(path, "an MNIST IDX file") as file:
        try:
            on_disk = None if is_gzipped(file) else os.fstat(file.fileno()).st_size
            with gunzipped(file) as stream:
                dims = _dims(path, bytes(read_up_to(stream, header)), ndim)
                size = math.prod(dims)
                _check_size(path, dims, size, header, on_disk, max_bytes)
                data = read_up_to(stream, size + 1)  # one more, to notice extra data
        except GZIP_ERRORS as exc:  # EOFError: a gzip stream cut short
            raise ValueError(f"{path}: cannot read the IDX file: {type(exc).__name__}: {exc}") from exc
    if len(data) != size:
        _wrong_length(path, dims, header, header + len(data) if len(data) < size else None)
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _dims(path: pathlib.Path, head: bytes, ndim: int) -> tuple[int, ...]:
    """The sizes in an IDX header of unsigned bytes in `ndim` dimensions, every one after the first ≥ 1."""
    magic = int.from_bytes(UNSIGNED_BYTES + bytes([ndim]), "big")
    if len(head) < 4 + 4 * ndim or int.from_bytes(head[:4], "big") != magic:
        raise ValueError(
            f"{path}: expected an IDX file of unsigned bytes in {ndim}-d, starting with the magic "
            f"number 0x{magic:08x} and {ndim} sizes; got {len(head)} bytes starting {head!r}"
        )
    dims = struct.unpack(f">{ndim}I", head[4:])
    if 0 in dims[1:]:
        raise ValueError(
            f"{path}: expected images of at least 1×1 pixels; got {'×'.join(map(str, dims[1:]))}"
        )
    return dims


def _check_size(
    path: pathlib.Path, dims: tuple[int, ...], size: int, header: int, on_disk: int | None, max_bytes: int
) -> None:
    """Refuse, before reading, data over `max_bytes` or (plain files) not what the file holds."""
    if size > max_bytes:
        raise ValueError(f"{path}: announces {size} bytes of data (shape {dims}); the limit is {max_bytes}")
    if on_disk is not None and on_disk != header + size:
        _wrong_length(path, dims, header, on_disk)


def _wrong_length(path: pathlib.Path, dims: tuple[int, ...], header: int, got: int | None) -> None:
    """Raise that the file holds `got` bytes (None: more than announced) instead of header + data."""
    size = math.prod(dims)
    came = "more bytes" if got is None else f"{got} bytes" if got < header + size else f"more bytes ({got})"
    raise ValueError(f"{path}: expected {header} + {size} bytes for an array of shape {dims}; got {came}")
