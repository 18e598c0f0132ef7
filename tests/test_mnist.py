"""`load_mnist` on small files written here in the real formats, and `examples/mnist_chapter1.py`.

Nielsen's `mnist.pkl.gz` is made with `pickle` and `gzip` (and once byte by byte, as Python 2 and old
NumPy wrote the book's file); the IDX files byte by byte with `struct`, as LeCun's page specifies.
"""

from __future__ import annotations

import gzip
import math
import os
import pathlib
import pickle
import shlex
import struct
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import pytest
from fuzzing import MiB, bounded

from bpgpu import mnist
from bpgpu.datasets import DataSets, Split, load_digits, load_mnist
from bpgpu.io import book_pickle as _book_pickle
from bpgpu.io import pickled_arrays as _pickled_arrays

EXAMPLE = pathlib.Path(__file__).resolve().parent.parent / "examples" / "mnist_chapter1.py"
IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


# ---- writers of the two formats ----------------------------------------------------------------


def book_data(rows: tuple[int, int, int] = (60, 20, 20), seed: int = 0) -> tuple:
    """`(training_data, validation_data, test_data)` shaped as in the book's file, pixels / 256."""
    rng = np.random.default_rng(seed)
    return tuple(
        ((rng.integers(0, 256, (n, 784)) / 256).astype(np.float32), rng.integers(0, 10, n).astype(np.int64))
        for n in rows
    )


def write_pkl_gz(path: pathlib.Path, obj: object, protocol: int = 2) -> pathlib.Path:
    with gzip.open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path


def python2_pickle(obj: tuple) -> bytes:
    """A protocol-2 pickle of nested tuples of arrays with the opcodes Python 2 and NumPy 1.x wrote:
    GLOBAL numpy.core.multiarray._reconstruct, numpy.ndarray, numpy.dtype, and SHORT_BINSTRING /
    BINSTRING (Python 2 str) for the data, which Python 3 reads only with encoding="latin1"."""

    def save(o: object) -> bytes:
        if isinstance(o, tuple):
            return b"(" + b"".join(save(x) for x in o) + b"t"
        a = np.ascontiguousarray(o)
        order, code = a.dtype.str[0].encode(), a.dtype.str[1:].encode()
        shape = b"(" + b"".join(b"J" + struct.pack("<i", s) for s in a.shape) + b"t"
        dtype = b"cnumpy\ndtype\nU" + bytes([len(code)]) + code + b"K\x00K\x01\x87R"
        dtype += b"(K\x03U\x01" + order + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
        data = a.tobytes()
        return (
            b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R(K\x01"
            + shape
            + dtype
            + b"\x89T"
            + struct.pack("<I", len(data))
            + data
            + b"tb"
        )

    return b"\x80\x02" + save(obj) + b"."


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000080<ndim>, the sizes, the data, all big-endian."""
    magic = 0x0800 | array.ndim if magic is None else magic
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def idx_arrays(n_train: int = 120, n_test: int = 30, side: int = 28, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_idx_dir(directory: pathlib.Path, arrays: dict[str, np.ndarray], gz: bool = False) -> pathlib.Path:
    directory.mkdir(exist_ok=True)
    for key, array in arrays.items():
        raw = idx_bytes(array)
        name = IDX_NAMES[key] + (".gz" if gz else "")
        (directory / name).write_bytes(gzip.compress(raw) if gz else raw)
    return directory


def assert_split(split: Split, X: np.ndarray, y: np.ndarray) -> None:
    assert isinstance(split, Split)
    assert split.X.dtype == np.float32 and split.y.dtype == np.int64
    assert split.X.shape == X.shape and split.y.shape == y.shape
    np.testing.assert_array_equal(split.X, X)
    np.testing.assert_array_equal(split.y, y)


# ---- Nielsen's mnist.pkl.gz --------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_book_pickle_loads_unchanged(tmp_path, protocol):
    data = book_data()
    got = load_mnist(write_pkl_gz(tmp_path / "mnist.pkl.gz", data, protocol))
    assert isinstance(got, DataSets) and type(got) is type(load_digits())
    for split, (X, y) in zip(got, data, strict=True):
        assert_split(split, X, y)
        assert split.X.flags.writeable and split.y.flags.writeable


def test_pickle_written_as_python2_wrote_the_books_file_loads(tmp_path):
    data = book_data((30, 10, 10), seed=2)
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(python2_pickle(data)))
    for split, (X, y) in zip(load_mnist(str(path)), data, strict=True):
        assert_split(split, X, y)


def test_pickle_with_float64_pixels_and_uint8_labels_is_converted(tmp_path):
    data = tuple((X.astype(np.float64), y.astype(np.uint8)) for X, y in book_data())
    got = load_mnist(write_pkl_gz(tmp_path / "mnist.pkl.gz", data))
    for split, (X, y) in zip(got, data, strict=True):
        assert_split(split, X.astype(np.float32), y.astype(np.int64))


class RunsCommand:
    """Unpickling this runs a shell command: what a malicious mnist.pkl.gz would do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class EvaluatesCode:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        return (eval, (self.code,))


@pytest.mark.parametrize("protocol", [2, 4])
@pytest.mark.parametrize("where", ["whole", "inside"])
@pytest.mark.parametrize("attack", [RunsCommand, EvaluatesCode])
def test_pickle_calling_anything_but_numpy_is_refused_before_it_runs(tmp_path, attack, where, protocol):
    def payload(marker: pathlib.Path) -> object:
        if attack is RunsCommand:
            return RunsCommand(f"touch {shlex.quote(str(marker))}")
        return EvaluatesCode(f"open({str(marker)!r}, 'w').close()")

    def evil(marker: pathlib.Path) -> object:
        train, validation, _ = book_data()
        return payload(marker) if where == "whole" else (train, validation, (train[0], payload(marker)))

    # The payload is real: the ordinary unpickler runs it.
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(evil(control), protocol=protocol))
    assert control.exists()

    marker = tmp_path / "marker"
    path = write_pkl_gz(tmp_path / "mnist.pkl.gz", evil(marker), protocol)
    with pytest.raises(ValueError, match="refusing") as info:
        load_mnist(path)
    assert str(path) in str(info.value)
    assert (".system" if attack is RunsCommand else "eval") in str(info.value)
    assert not marker.exists()


def _pickle_case(make: Callable[[tuple], object]) -> Callable[[pathlib.Path], None]:
    return lambda path: write_pkl_gz(path, make(book_data()))


def _set_dtype_flags(raw: bytes) -> bytes:
    state_end = b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"
    assert raw.count(state_end) == 2  # float32 and int64, each pickled once and then referred to
    return raw.replace(state_end, state_end[:-2] + b"\x01t")


def _nan(data: tuple) -> tuple:
    X = data[1][0].copy()
    X[3, 5] = np.nan
    return (data[0], (X, data[1][1]), data[2])


BAD_PICKLES = {
    "not gzip": (lambda p: p.write_bytes(b"this is not MNIST\n" * 4), "not gzip-compressed"),
    "truncated gzip": (
        lambda p: p.write_bytes(gzip.compress(pickle.dumps(book_data(), protocol=2))[:3000]),
        "not a readable gzipped pickle",
    ),
    "gzip of garbage": (lambda p: p.write_bytes(gzip.compress(b"\x00garbage")), "not a readable"),
    "two splits": (_pickle_case(lambda d: d[:2]), r"got a tuple of length 2"),
    "a dict": (_pickle_case(lambda d: {"train": d[0]}), r"got a dict"),
    "triple, not pair": (
        _pickle_case(lambda d: (d[0], (*d[1], d[1][1]), d[2])),
        "validation_data to be a pair",
    ),
    "X a list": (_pickle_case(lambda d: ((d[0][0].tolist(), d[0][1]), d[1], d[2])), "training_data X"),
    "X 1-d": (_pickle_case(lambda d: (d[0], d[1], (d[2][0].ravel(), d[2][1]))), r"test_data X .*\(15680,\)"),
    "X integers": (_pickle_case(lambda d: ((d[0][0] > 0.5, d[0][1]), d[1], d[2])), "2-d float array"),
    "X with NaN": (_pickle_case(_nan), "validation_data X to be finite"),
    "X above 1": (_pickle_case(lambda d: ((d[0][0] * 2, d[0][1]), d[1], d[2])), r"X in \[0, 1\]"),
    "columns differ": (_pickle_case(lambda d: (d[0], d[1], (d[2][0][:, :783], d[2][1]))), "same columns"),
    "y float": (_pickle_case(lambda d: (d[0], (d[1][0], d[1][1] * 1.0), d[2])), "integer labels"),
    "y too short": (_pickle_case(lambda d: ((d[0][0], d[0][1][:-1]), d[1], d[2])), "each of the 60 rows"),
    "label 10": (_pickle_case(lambda d: ((d[0][0], d[0][1] + 1), d[1], d[2])), r"digits 0..9.*10\]"),
    "no validation rows": (
        _pickle_case(lambda d: (d[0], (d[1][0][:0], d[1][1][:0]), d[2])),
        r"validation_data to hold at least one image; got X of shape \(0, 784\)",
    ),
    "no training rows": (
        _pickle_case(lambda d: ((d[0][0][:0], d[0][1][:0]), d[1], d[2])),
        "training_data to hold at least one image",
    ),
    "dtype flags": (  # NumPy writes (3, "<", None, None, None, -1, -1, 0); flag 1 says "holds objects"
        lambda p: p.write_bytes(gzip.compress(_set_dtype_flags(pickle.dumps(book_data(), protocol=2)))),
        "refusing to load it: a numpy.dtype's state, a tuple of length 8, sets more than the byte order",
    ),
}


@pytest.mark.parametrize("case", BAD_PICKLES)
def test_damaged_pickle_raises_value_error_naming_the_file(tmp_path, case):
    write, expected = BAD_PICKLES[case]
    path = tmp_path / "mnist.pkl.gz"
    write(path)
    with pytest.raises(ValueError, match=expected) as info:
        load_mnist(path)
    assert str(path) in str(info.value)


def ops(value: object) -> bytes:
    """The opcodes that push a plain value (tuple, int, str, bytes, None), without PROTO and STOP."""
    return pickle.dumps(value, protocol=3)[2:-1]


def global_(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()  # GLOBAL


NDARRAY, DTYPE = global_("numpy", "ndarray"), global_("numpy", "dtype")
RECONSTRUCT = global_("numpy._core.multiarray", "_reconstruct")
FROMBUFFER = global_("numpy._core.numeric", "_frombuffer")
# numpy.dtype("f8", False, True) (REDUCE) given NumPy's state (BUILD); an empty array from _reconstruct
F8 = DTYPE + ops(("f8", False, True)) + b"R" + ops((3, "<", None, None, None, -1, -1, 0)) + b"b"
EMPTY_ARRAY = RECONSTRUCT + NDARRAY + ops((0,)) + ops(b"b") + b"\x87R"  # TUPLE3, REDUCE
ALLOWED_GLOBALS = [
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    ("__builtin__", "bytes"),
    ("builtins", "bytes"),
]


def write_pickle_bytes(path: pathlib.Path, body: bytes) -> pathlib.Path:
    path.write_bytes(gzip.compress(b"\x80\x03" + body + b"."))  # PROTO 3, ..., STOP
    return path


def real_functions() -> dict[str, object]:
    return {
        "numpy _reconstruct": np.zeros(1).__reduce__()[0],
        "numpy _frombuffer": np.zeros(1).__reduce_ex__(5)[0],
        "numpy.ndarray": np.ndarray,
        "numpy.dtype": np.dtype,
        **{
            f"stand-in {name}": getattr(_pickled_arrays, name)
            for name in ("reconstruct", "latin1_encode", "make_array", "Dtype", "Array", "Latin1")
        },
    }


def attributes(functions: dict[str, object]) -> dict[str, tuple]:
    """Each one's name, defaults and attributes (a class's methods), to see that no pickle changed them."""
    return {
        key: (f.__name__, getattr(f, "__defaults__", None), dict(getattr(f, "__dict__", {})))
        for key, f in functions.items()
    }


@pytest.mark.parametrize("module, name", ALLOWED_GLOBALS)
@pytest.mark.parametrize(
    "state",
    [(None, {"__defaults__": (1, 2, 3)}), (None, {"__name__": "pwned"}), {"__name__": "pwned", "x": 1}],
    ids=["slots __defaults__", "slots __name__", "dict"],
)
def test_pickle_setting_state_on_an_allowed_global_is_refused_and_changes_nothing(
    tmp_path, module, name, state
):
    before = attributes(real_functions())
    path = write_pickle_bytes(tmp_path / "mnist.pkl.gz", global_(module, name) + ops(state) + b"b")  # BUILD
    with pytest.raises(
        ValueError, match=f"refusing to load it: the pickle sets the state of {module}.{name}"
    ) as info:
        load_mnist(path)
    assert str(path) in str(info.value)
    assert attributes(real_functions()) == before
    for global_stand_in in _pickled_arrays.stand_ins(_pickled_arrays.Budget(lambda: 0)).values():
        assert not hasattr(global_stand_in, "__dict__")
    data = book_data((6, 2, 2))
    for split, (X, y) in zip(load_mnist(write_pkl_gz(tmp_path / "ok.pkl.gz", data, 2)), data, strict=True):
        assert_split(split, X, y)


HUGE = (2**40,)
MEMORY_BOMBS = {
    "ndarray(shape, dtype)": (NDARRAY + ops((HUGE, "f8")) + b"R", "calls numpy.ndarray"),
    "_reconstruct of a huge shape": (
        RECONSTRUCT + NDARRAY + ops(HUGE) + ops(b"b") + b"\x87R",
        "_reconstruct",
    ),
    "_frombuffer of a huge shape": (
        FROMBUFFER + b"(" + ops(b"") + F8 + ops(HUGE) + ops("C") + b"tR",
        r"shape \(1099511627776,\) of float64 takes 8796093022208 bytes; got 0",
    ),
    "array state of a huge shape": (  # MARK, ..., TUPLE, BUILD
        EMPTY_ARRAY + b"(" + ops(1) + ops(HUGE) + F8 + ops(False) + ops(b"\x00" * 16) + b"tb",
        "takes 8796093022208 bytes; got 16",
    ),
    "dtype of objects": (DTYPE + ops(("O8", False, True)) + b"R", "only bool, integer and float types"),
}


@pytest.mark.parametrize("case", MEMORY_BOMBS)
def test_tiny_pickle_asking_for_a_huge_array_is_refused_before_allocating(tmp_path, case):
    body, expected = MEMORY_BOMBS[case]
    path = write_pickle_bytes(tmp_path / "mnist.pkl.gz", body)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"refusing to load it: .*{expected}") as info:
        load_mnist(path)
    assert time.perf_counter() - start < 5
    assert str(path) in str(info.value)


def test_pickle_gunzipping_to_more_than_the_cap_is_refused(tmp_path, monkeypatch):
    path = write_pkl_gz(tmp_path / "mnist.pkl.gz", book_data())
    load_mnist(path)
    monkeypatch.setattr(mnist, "MAX_PICKLE_BYTES", 10_000)
    with pytest.raises(ValueError, match="refusing to load it: it gunzips to more than 10000 bytes") as info:
        load_mnist(path)
    assert str(path) in str(info.value)
    bomb = tmp_path / "bomb.pkl.gz"
    bomb.write_bytes(gzip.compress(b"\x80\x02(" + b"K\x00" * 100_000 + b"t."))  # 200 kB from ~1 kB
    with pytest.raises(ValueError, match="more than 10000 bytes"):
        load_mnist(bomb)


# ---- IDX files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory_gives_pixels_over_255_and_the_last_sixth_as_validation(tmp_path, gz):
    arrays = idx_arrays(n_train=120, n_test=30)
    got = load_mnist(write_idx_dir(tmp_path / "mnist", arrays, gz=gz))
    X = (arrays["train_images"].reshape(120, 784) / 255).astype(np.float32)
    y = arrays["train_labels"].astype(np.int64)
    assert_split(got.train, X[:100], y[:100])
    assert_split(got.validation, X[100:], y[100:])
    X_test = (arrays["test_images"].reshape(30, 784) / 255).astype(np.float32)
    assert_split(got.test, X_test, arrays["test_labels"].astype(np.int64))
    assert got.train.X.min() >= 0 and got.train.X.max() <= 1


def test_idx_validation_is_the_last_10000_of_60000_training_rows(tmp_path):
    arrays = idx_arrays(n_train=60_006, n_test=7, side=1)  # 1×1 images keep the files tiny
    got = load_mnist(write_idx_dir(tmp_path, arrays))
    assert [len(s.y) for s in got] == [50_006, 10_000, 7]
    np.testing.assert_array_equal(got.validation.y, arrays["train_labels"][-10_000:])


def test_idx_files_are_found_under_dotted_names_and_gunzipped_by_content(tmp_path):
    arrays = idx_arrays(n_train=12, n_test=5)
    for key, array in arrays.items():  # gzipped without .gz, and a plain file with .gz
        name = IDX_NAMES[key].replace("-idx", ".idx")
        raw = idx_bytes(array)
        if key.endswith("images"):
            (tmp_path / name).write_bytes(gzip.compress(raw))
        else:
            (tmp_path / f"{name}.gz").write_bytes(raw)
    got = load_mnist(tmp_path)
    np.testing.assert_array_equal(got.test.y, arrays["test_labels"])
    np.testing.assert_array_equal(got.train.X[0], arrays["train_images"][0].ravel() / np.float32(255))


def _rewrite(key: str, change: Callable[[bytes], bytes]) -> Callable[[pathlib.Path], str]:
    def damage(directory: pathlib.Path) -> str:
        path = directory / IDX_NAMES[key]
        path.write_bytes(change(path.read_bytes()))
        return path.name

    return damage


def _replace(key: str, array: np.ndarray) -> Callable[[pathlib.Path], str]:
    return _rewrite(key, lambda _: idx_bytes(array))


BAD_IDX = {
    "bad magic": (_rewrite("train_images", lambda b: b"\x00\x00\x08\x01" + b[4:]), "magic number 0x00000803"),
    "truncated payload": (_rewrite("test_images", lambda b: b[:-1]), "expected 16 \\+ 23520 bytes"),
    "trailing byte": (
        _rewrite("train_labels", lambda b: b + b"\x00"),
        "expected 8 \\+ 120 bytes for an array of shape \\(120,\\); got more bytes",
    ),
    "short header": (_rewrite("test_labels", lambda b: b[:6]), "got 6 bytes"),
    "count mismatch": (_replace("train_labels", np.zeros(119, np.uint8)), "got 119 labels"),
    "label 12": (
        _replace("test_labels", np.full(30, 12, np.uint8)),
        r"digits 0..9; got labels in \[12, 12\]",
    ),
    "garbage": (_rewrite("train_images", lambda b: b"<html>not found</html>"), "expected an IDX file"),
    "truncated gzip": (_rewrite("train_labels", lambda b: gzip.compress(b)[:-12]), "cannot read"),
    "sizes differ": (_replace("test_images", np.zeros((30, 14, 14), np.uint8)), "same size"),
}


@pytest.mark.parametrize("case", BAD_IDX)
def test_damaged_idx_file_raises_value_error_naming_it(tmp_path, case):
    damage, expected = BAD_IDX[case]
    write_idx_dir(tmp_path, idx_arrays(n_train=120, n_test=30))
    name = damage(tmp_path)
    with pytest.raises(ValueError, match=expected) as info:
        load_mnist(tmp_path)
    assert (name if case != "sizes differ" else str(tmp_path)) in str(info.value)


@pytest.mark.parametrize(
    "n_train, n_test, name, expected",
    [
        (120, 0, "t10k-images-idx3-ubyte", r"at least one image; got 0 images of \(28, 28\)"),
        (0, 30, "train-images-idx3-ubyte", "at least one image; got 0"),
        (5, 30, "train-images-idx3-ubyte", "at least 6 images, a sixth for validation; got 5"),
    ],
)
def test_idx_too_few_images_for_every_split_raises_value_error(tmp_path, n_train, n_test, name, expected):
    write_idx_dir(tmp_path, idx_arrays(n_train=n_train, n_test=n_test))
    with pytest.raises(ValueError, match=expected) as info:
        load_mnist(tmp_path)
    assert str(tmp_path / name) in str(info.value)


def test_idx_six_training_images_give_five_for_training_and_one_for_validation(tmp_path):
    got = load_mnist(write_idx_dir(tmp_path, idx_arrays(n_train=6, n_test=1)))
    assert [len(s.y) for s in got] == [5, 1, 1]


def test_missing_idx_file_and_missing_path_are_named(tmp_path):
    write_idx_dir(tmp_path, idx_arrays(n_train=12, n_test=5))
    (tmp_path / IDX_NAMES["test_labels"]).unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"nowhere\.pkl\.gz"):
        load_mnist(tmp_path / "nowhere.pkl.gz")


def test_importing_the_mnist_module_first_works():
    code = "import bpgpu.mnist, bpgpu.datasets as d; print(d.load_mnist is bpgpu.mnist.load_mnist)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "True", result.stderr


# ---- the example -------------------------------------------------------------------------------


def run_example(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(EXAMPLE), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_example_trains_on_a_tiny_pickle_and_prints_each_epoch_and_the_accuracy(tmp_path):
    path = write_pkl_gz(tmp_path / "mnist.pkl.gz", book_data((200, 20, 50)))
    result = run_example(str(path), "--epochs", "2", "--backend", "numpy")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Network([784, 30, 10]")
    assert "backend numpy on cpu" in lines and "training on 200 images, testing on 50" in lines
    epochs = [line for line in lines if line.startswith("Epoch")]
    assert [line.split(":")[0] for line in epochs] == ["Epoch 0", "Epoch 1"]
    assert all(" / 50 (" in line for line in epochs)
    assert lines[-1].startswith("test accuracy after 2 epochs: ")


@pytest.mark.parametrize("bad", ["missing", "garbage"])
def test_example_reports_a_bad_path_in_one_line_without_a_traceback(tmp_path, bad):
    path = tmp_path / "mnist.pkl.gz"
    if bad == "garbage":
        path.write_bytes(b"\x1f\x8bnot really gzip")
    result = run_example(str(path), "--epochs", "1", "--backend", "numpy")
    assert result.returncode == 1
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1 and str(path) in result.stderr


def test_an_idx_header_announcing_too_much_data_is_refused_before_reading(tmp_path):
    files = {
        "train-images-idx3-ubyte": struct.pack(">4I", 0x803, 100_000, 1000, 1000) + b"\0" * 64,
        "train-labels-idx1-ubyte": struct.pack(">2I", 0x801, 100_000) + b"\0" * 100_000,
        "t10k-images-idx3-ubyte": struct.pack(">4I", 0x803, 2, 2, 2) + b"\0" * 8,
        "t10k-labels-idx1-ubyte": struct.pack(">2I", 0x801, 2) + b"\0" * 2,
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=r"announces 100000000000 bytes of data .* the limit is"):
        load_mnist(tmp_path)


# ---- bounded by what the file holds: regressions found by fuzzing ------------------------------


def memo_bomb(arrays: int, data_bytes: int = 1 << 20) -> bytes:
    """A pickle of `arrays` arrays that all take one memoised bytes object of `data_bytes` as data:
    BINPUT once, then BINGET for each `_frombuffer(data, dtype, shape, order)` (protocol 5's call)."""
    put = [b"q" + bytes([i]) for i in range(5)]  # BINPUT i
    get = [b"h" + bytes([i]) for i in range(5)]  # BINGET i
    text = [b"X" + struct.pack("<I", len(t)) + t for t in (b"u1", b"C")]  # BINUNICODE
    dtype = DTYPE + text[0] + b"\x89\x88\x87R"  # NEWFALSE, NEWTRUE, TUPLE3, REDUCE
    shape = b"J" + struct.pack("<i", data_bytes) + b"\x85"  # BININT, TUPLE1
    data = b"B" + struct.pack("<I", data_bytes) + bytes(data_bytes)  # BINBYTES
    head = FROMBUFFER + put[0] + dtype + put[1] + shape + put[2] + text[1] + put[3] + data + put[4]
    one = get[0] + b"(" + get[4] + get[1] + get[2] + get[3] + b"tR"  # MARK, TUPLE, REDUCE
    return b"\x80\x03" + head + b"](" + one * arrays + b"e."  # EMPTY_LIST, MARK, ..., APPENDS, STOP


@pytest.mark.parametrize("arrays", [3000, 2])
def test_pickle_reusing_one_memoised_data_object_for_many_arrays_is_refused_in_bounded_memory(
    tmp_path, arrays
):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(memo_bomb(arrays), 9))
    assert path.stat().st_size < 2000  # 1.2 kB that would make 3000 MiB of arrays
    with bounded(seconds=10, memory=64 * MiB), pytest.raises(ValueError) as info:
        load_mnist(path)
    assert str(path) in str(info.value)
    assert "refusing to load it: its arrays would take 2097152 bytes, more than the" in str(info.value)


@pytest.mark.parametrize("kind", ["protocol 2", "protocol 4", "protocol 5", "python 2"])
def test_pickle_with_each_array_s_data_once_still_loads_within_the_budget(tmp_path, kind):
    data = book_data((700, 10, 10))  # 2.2 MB of training pixels: read in more than one piece
    raw = python2_pickle(data) if kind == "python 2" else pickle.dumps(data, protocol=int(kind[-1]))
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(raw, 1))
    with bounded(seconds=10, memory=4 * len(raw)):  # the stream, its data in the memo, the arrays
        got = load_mnist(path)
    for split, (X, y) in zip(got, data, strict=True):
        assert_split(split, X, y)


def header_only_idx(directory: pathlib.Path, dims: tuple[int, ...], gz: bool) -> pathlib.Path:
    """A valid IDX directory whose training images announce `dims` but hold only 1 kB of data."""
    write_idx_dir(directory, idx_arrays(n_train=12, n_test=5))
    raw = struct.pack(">4I", 0x803, *dims) + bytes(1000)
    path = directory / IDX_NAMES["train_images"]
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dims", [(600, 1000, 1000), (2, 1 << 14, 1 << 14), (1 << 20, 32, 32)])
def test_idx_announcing_more_than_the_cap_is_refused_before_reading_or_converting(tmp_path, gz, dims):
    path = header_only_idx(tmp_path, dims, gz)
    with bounded(seconds=10, memory=8 * MiB), pytest.raises(ValueError) as info:
        load_mnist(tmp_path)
    assert str(path) in str(info.value)
    assert f"announces {math.prod(dims)} bytes of data (shape {dims}); the limit is 268435456" in str(
        info.value
    )
    assert 256 * MiB == mnist.MAX_IDX_BYTES


def test_plain_idx_announcing_more_than_the_file_holds_is_refused_before_reading(tmp_path):
    path = header_only_idx(tmp_path, (200, 1000, 1000), gz=False)  # 200 MB, under the cap
    with bounded(seconds=10, memory=8 * MiB), pytest.raises(ValueError) as info:
        load_mnist(tmp_path)
    assert (
        f"{path}: expected 16 + 200000000 bytes for an array of shape (200, 1000, 1000); got 1016 bytes"
        in str(info.value)
    )


def test_gzipped_idx_short_of_what_it_announces_takes_memory_for_what_it_holds_only(tmp_path):
    path = header_only_idx(tmp_path, (200, 1000, 1000), gz=True)
    with bounded(seconds=10, memory=8 * MiB), pytest.raises(ValueError, match="got 1016 bytes") as info:
        load_mnist(tmp_path)
    assert str(path) in str(info.value)


def test_idx_images_are_converted_into_one_float32_array_without_temporaries(tmp_path):
    arrays = idx_arrays(n_train=6000, n_test=6, side=28)  # 4.5 MiB of pixels, 18 MiB of float32
    write_idx_dir(tmp_path, arrays, gz=True)
    with bounded(seconds=10, memory=27 * MiB):  # pixels + float32 + labels; float64 would be 36 more
        got = load_mnist(tmp_path)
    X = (arrays["train_images"].reshape(6000, 784) / 255).astype(np.float32)
    np.testing.assert_array_equal(np.concatenate([got.train.X, got.validation.X]), X)


@pytest.mark.parametrize("key", ["train_images", "test_images"])
@pytest.mark.parametrize("side", [(0, 0), (28, 0), (0, 28)])
def test_idx_images_of_no_pixels_are_refused_naming_the_file(tmp_path, key, side):
    arrays = idx_arrays(n_train=12, n_test=5)
    arrays[key] = np.zeros((len(arrays[key]), *side), np.uint8)
    write_idx_dir(tmp_path, arrays)
    with pytest.raises(ValueError, match=f"at least 1×1 pixels; got {side[0]}×{side[1]}") as info:
        load_mnist(tmp_path)
    assert str(tmp_path / IDX_NAMES[key]) in str(info.value)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("key", ["train_images", "test_labels"])
def test_a_single_idx_file_given_as_the_path_asks_for_its_directory(tmp_path, key, gz):
    write_idx_dir(tmp_path, idx_arrays(n_train=12, n_test=5), gz=gz)
    path = tmp_path / (IDX_NAMES[key] + (".gz" if gz else ""))
    renamed = path.rename(tmp_path / "mnist.pkl.gz")  # known by its magic number, not by its name
    for given in (path.with_name("t10k-images-idx3-ubyte.bin"), renamed):
        if given != renamed:
            renamed.rename(given)
            renamed = given
        with pytest.raises(ValueError) as info:
            load_mnist(given)
        message = str(info.value)
        assert message.startswith(f"{given}: this is one of the four MNIST IDX files"), message
        assert "pass the directory that holds all four" in message


def fifo(path: pathlib.Path) -> pathlib.Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("os.mkfifo is not available on this platform")
    os.mkfifo(path)
    return path


SPECIAL = {
    "fifo as the path": lambda d: fifo(d / "mnist.pkl.gz"),
    "/dev/zero as the path": lambda d: pathlib.Path("/dev/zero"),
    "fifo in the directory": lambda d: fifo(d / IDX_NAMES["train_images"]),
    "/dev/zero linked in the directory": lambda d: _link(d / IDX_NAMES["test_labels"], "/dev/zero"),
    "a directory in the directory": lambda d: _mkdir(d / IDX_NAMES["test_images"]),
}


def _link(path: pathlib.Path, target: str) -> pathlib.Path:
    if not os.path.exists(target):
        pytest.skip(f"{target} does not exist on this platform")
    path.symlink_to(target)
    return path


def _mkdir(path: pathlib.Path) -> pathlib.Path:
    path.mkdir()
    return path


@pytest.mark.parametrize("case", SPECIAL)
def test_special_files_are_refused_by_name_without_reading_them(tmp_path, case):
    directory = write_idx_dir(tmp_path / "mnist", idx_arrays(n_train=12, n_test=5))
    for key in IDX_NAMES:
        (directory / IDX_NAMES[key]).unlink()
    write_idx_dir(directory, idx_arrays(n_train=12, n_test=5), gz=True)  # .gz: after the special name
    special = SPECIAL[case](directory if "directory" in case else tmp_path)
    given = directory if "directory" in case else special
    with bounded(seconds=5, memory=8 * MiB), pytest.raises(ValueError) as info:
        load_mnist(given)
    assert str(info.value).startswith(f"{special}: is "), str(info.value)


def test_out_of_memory_while_unpickling_is_not_reported_as_a_damaged_file(tmp_path, monkeypatch):
    path = write_pkl_gz(tmp_path / "mnist.pkl.gz", book_data((6, 2, 2)))

    def out_of_memory(self):
        raise MemoryError

    monkeypatch.setattr(_book_pickle._ArraysOnlyUnpickler, "load", out_of_memory)
    with pytest.raises(MemoryError):
        load_mnist(path)


FORGED_SIZES = {  # tiny pickles whose opcodes announce huge sizes or memo indices
    "BYTEARRAY8 of 2**40 bytes": b"\x80\x05\x96" + struct.pack("<Q", 1 << 40) + bytes(16) + b".",
    "BINBYTES8 of 2**30 bytes": b"\x80\x04\x8e" + struct.pack("<Q", 1 << 30) + bytes(16) + b".",
    "BINUNICODE8 of 2**30 bytes": b"\x80\x04\x8d" + struct.pack("<Q", 1 << 30) + bytes(16) + b".",
    "FRAME of 2**30 bytes": b"\x80\x04\x95" + struct.pack("<Q", 1 << 30) + b"N.",
    "LONG_BINPUT at 2**31": b"\x80\x02Nr" + struct.pack("<I", 1 << 31) + b".",
    "PUT at 10**12": b"(p1000000000000\n.",
    "a million DUPs": b"\x80\x02N" + b"2" * 1_000_000 + b".",
    "FRAME shorter than its opcodes": b"\x80\x04\x95"
    + struct.pack("<Q", 4)
    + b"\x8e"
    + struct.pack("<Q", 8)
    + bytes(8)
    + b".",
}


@pytest.mark.parametrize("case", FORGED_SIZES)
def test_pickle_opcodes_announcing_huge_sizes_are_refused_in_bounded_memory(tmp_path, case):
    path = tmp_path / "mnist.pkl.gz"
    path.write_bytes(gzip.compress(FORGED_SIZES[case]))
    with bounded(seconds=10, memory=8 * MiB), pytest.raises(ValueError) as info:
        load_mnist(path)
    assert str(info.value).startswith(f"{path}: "), str(info.value)
