"""MNIST from a file you already have: Nielsen's `mnist.pkl.gz`, or a directory of the four IDX files.

`load_mnist(path)` returns the same `DataSets(train, validation, test)` as `load_digits`, each a
`Split(X, y)` of host arrays: X float32 (n, rows·cols) in [0, 1], one image per row (784 = 28×28 for
MNIST; any image size of at least 1×1 is accepted, the same in every split), and y int64 (n,) in
0..9, with n ≥ 1 in every split. Nothing is downloaded. The two sources:

- **Nielsen's `mnist.pkl.gz`** (github.com/mnielsen/neural-networks-and-deep-learning, `data/`): a
  gzipped pickle, written by Python 2, of `(training_data, validation_data, test_data)`, each a pair
  `(X float32 (n, 784) in [0, 1], y int64 (n,))` of 50 000 / 10 000 / 10 000 rows, kept as they are.
  A pickle can run code when it is loaded, so it is read by an unpickler that resolves only the
  NumPy globals an array needs, to stand-ins that accept only the calls NumPy's own pickles make;
  anything else raises `ValueError` and nothing runs. At most `MAX_PICKLE_BYTES` (1 GiB; the book's
  file is ~220 MB) are gunzipped, the opcodes are checked before anything is built (at most
  `MAX_PICKLE_OPCODES`), and the arrays together may take no more bytes than the pickle holds, so a
  pickle that reuses one memoised piece of data for many arrays is refused.
- **LeCun's IDX files** (yann.lecun.com/exdb/mnist), in one directory: `train-images-idx3-ubyte`,
  `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each plain or
  gzipped (`name.gz`), also spelt `train-images.idx3-ubyte` etc. X is pixel / 255, computed in
  float32. As the book does, the last training rows become validation: min(10 000, n // 6) of them,
  which is 10 000 of MNIST's 60 000 (50 000 / 10 000 / 10 000) and a sixth of a smaller set (of at
  least 6 images). A file may announce at most `MAX_IDX_BYTES` (256 MiB) of data: every set with
  the digit labels this loader requires fits (MNIST, Fashion-MNIST and KMNIST train on 47 MB of
  images, EMNIST-digits on 188 MB), and the float32 images of one file then take at most 1 GiB.
  A larger size is refused from the header, before anything is read; so is a plain file whose
  size on disk is not what its header announces.

A file is gunzipped when it starts with the gzip magic bytes 1f 8b, whatever its name. Only regular
files are opened: a FIFO, a device or a directory where a file should be raises `ValueError`
without being read. A missing path raises `FileNotFoundError`; a file that is truncated, forged or
not what its format says raises `ValueError`. Both name the file, what was expected and what came.
Time and memory stay within a small multiple of the file's real (gunzipped) size.
"""

from __future__ import annotations

import os
import pathlib

from .dataset_types import DataSets
from .io.book_pickle import MAX_OPCODES as MAX_PICKLE_OPCODES
from .io.book_pickle import read_book_pickle
from .io.files import open_regular
from .io.idx import NAMES as IDX_NAMES
from .io.idx import VALIDATION_ROWS, is_idx, read_idx_directory
from .io.streams import GZIP_MAGIC, head

__all__ = ["MAX_IDX_BYTES", "MAX_PICKLE_BYTES", "MAX_PICKLE_OPCODES", "VALIDATION_ROWS", "load_mnist"]

MAX_PICKLE_BYTES = 1 << 30  # gunzipped; more is a gzip bomb
MAX_IDX_BYTES = 1 << 28  # 256 MiB of pixels (or labels) in one IDX file
EXPECTED = "Nielsen's mnist.pkl.gz (a gzipped pickle) or a directory of the four MNIST IDX files"


def load_mnist(path: str | os.PathLike[str]) -> DataSets:
    """MNIST from Nielsen's `mnist.pkl.gz` or an IDX directory, as `DataSets(train, validation, test)`.

    Each split is `Split(X float32 (n, rows·cols) in [0, 1], y int64 (n,) in 0..9)` with n ≥ 1; 784
    columns for MNIST, but any image size is read. See the module docstring for the two formats, the
    validation split of the IDX files and the limits on what a file may announce.
    """
    path = pathlib.Path(path)
    if os.path.isdir(path):  # False for a name the OS refuses; open_regular then says why
        return read_idx_directory(path, MAX_IDX_BYTES)
    try:
        file = open_regular(path, EXPECTED)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file or directory; expected {EXPECTED}") from None
    with file:
        if is_idx(start := head(file, 4)):
            raise ValueError(
                f"{path}: this is one of the four MNIST IDX files (it starts with the magic number "
                f"0x{start.hex()}); pass the directory that holds all four: {', '.join(IDX_NAMES)}"
            )
        if (magic := file.read(4))[:2] != GZIP_MAGIC:
            raise ValueError(
                f"{path}: expected {EXPECTED}; the file is not gzip-compressed (it starts {magic!r})"
            )
        return read_book_pickle(path, file, MAX_PICKLE_BYTES)
