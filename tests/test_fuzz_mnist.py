"""Fuzzing `load_mnist`: damaged and forged IDX directories and book-format pickles, made from good ones.

Whatever the files, `load_mnist` either returns sound `DataSets` (every split ≥ 1 row; X float32,
finite, in [0, 1], ≥ 1 column; y int64 in 0..9) or raises `ValueError` starting with the path of the
file at fault (or of the directory), within `bounded` time and memory; nothing else.
"""

from __future__ import annotations

import functools
import gzip
import math
import pathlib
import pickle
import pickletools
import struct
import tempfile

import numpy as np
from fuzzing import MiB, bounded, edited, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st
from test_mnist import IDX_NAMES, idx_arrays, idx_bytes, memo_bomb, python2_pickle

from bpgpu.datasets import DataSets, load_mnist

IDX_BYTE_EXAMPLES = 300
IDX_HEADER_EXAMPLES = 300
PICKLE_BYTE_EXAMPLES = 400
PICKLE_OPCODE_EXAMPLES = 600
MEMO_EXAMPLES = 60
PICKLE_KINDS = ("protocol 2", "protocol 5", "python 2")


@functools.cache
def idx_raw() -> dict[str, bytes]:
    """The four IDX files of a small valid directory, not gzipped: 12 training and 5 test images of 4×3."""
    arrays = idx_arrays(n_train=12, n_test=5, side=4, seed=3)
    arrays["train_images"] = arrays["train_images"][:, :, :3]
    arrays["test_images"] = arrays["test_images"][:, :, :3]
    return {key: idx_bytes(array) for key, array in arrays.items()}


@functools.cache
def pickle_raw(kind: str) -> bytes:
    """A small valid book-format pickle (3 splits of 5 / 2 / 2 rows of 6 pixels), not gzipped."""
    rng = np.random.default_rng(4)
    data = tuple(
        ((rng.integers(0, 256, (n, 6)) / 256).astype(np.float32), rng.integers(0, 10, n).astype(np.int64))
        for n in (5, 2, 2)
    )
    if kind == "python 2":
        return python2_pickle(data)
    return pickle.dumps(data, protocol=2 if kind == "protocol 2" else 5)


def check(got: DataSets) -> None:
    assert isinstance(got, DataSets)
    widths = set()
    for X, y in got:
        assert X.dtype == np.float32 and X.ndim == 2 and len(X) >= 1 and X.shape[1] >= 1
        assert np.isfinite(X).all() and X.min() >= 0 and X.max() <= 1
        assert y.dtype == np.int64 and y.shape == (len(X),) and y.min() >= 0 and y.max() <= 9
        widths.add(X.shape[1])
    assert len(widths) == 1


def attempt(given_path: pathlib.Path, culprits: list[pathlib.Path]) -> None:
    """`load_mnist(given_path)`: sound data, or a ValueError starting with one of `culprits`."""
    error = None
    with bounded(seconds=10, memory=64 * MiB):
        try:
            got = load_mnist(given_path)
        except ValueError as exc:
            error = exc
    if error is None:
        check(got)
    else:
        assert any(str(error).startswith(f"{c}: ") for c in culprits), f"names no culprit: {error}"


def attempt_idx(files: dict[str, bytes], single: str | None = None) -> None:
    """Write `files` (IDX names to contents) into a fresh directory and load it, or only `single`."""
    with tempfile.TemporaryDirectory() as name:
        directory = pathlib.Path(name)
        paths = [directory / file_name for file_name in files]
        for path, content in zip(paths, files.values(), strict=True):
            path.write_bytes(content)
        if single is None:
            attempt(directory, [directory, *paths])
        else:
            attempt(directory / single, [directory / single])


def attempt_pickle(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as name:
        path = pathlib.Path(name) / "mnist.pkl.gz"
        path.write_bytes(content)
        attempt(path, [path])


# ---- byte edits, anywhere -----------------------------------------------------------------------

positions = st.integers(-16, 1 << 12)  # negative: from the end (a gzip trailer, the last opcodes)
edits = st.one_of(
    st.tuples(st.just("flip"), positions, st.integers(1, 255)),
    st.tuples(st.just("cut"), positions),
    st.tuples(st.just("insert"), positions, st.binary(min_size=1, max_size=9)),
    st.tuples(st.just("delete"), positions, st.integers(1, 40)),
    st.tuples(st.just("overwrite"), positions, st.binary(min_size=1, max_size=9)),
)


def stored(raw: bytes, gz: bool, changes: list[tuple], after_gzip: bool) -> bytes:
    """`raw` with `changes` made, gzipped if `gz`: before gzip (its content) or after (gzip damage)."""
    if not after_gzip:
        for change in changes:
            raw = edited(raw, change)
    data = gzip.compress(raw, mtime=0) if gz else raw
    if after_gzip:
        for change in changes:
            data = edited(data, change)
    return data


@fuzz_settings(IDX_BYTE_EXAMPLES)
@given(
    st.sampled_from(sorted(IDX_NAMES)),
    st.booleans(),
    st.booleans(),
    st.lists(edits, min_size=1, max_size=3),
    st.sampled_from([False, False, False, True]),  # True: the edited file given as the path
)
def test_damaged_idx_files_are_refused_or_load_sound_data(key, gz, after_gzip, changes, single):
    files = {}
    for other, raw in idx_raw().items():
        name = IDX_NAMES[other] + (".gz" if gz else "")
        files[name] = stored(raw, gz, changes if other == key else [], after_gzip and gz)
    attempt_idx(files, IDX_NAMES[key] + (".gz" if gz else "") if single else None)


@fuzz_settings(PICKLE_BYTE_EXAMPLES)
@given(st.sampled_from(PICKLE_KINDS), st.booleans(), st.lists(edits, min_size=1, max_size=3))
def test_damaged_pickles_are_refused_or_load_sound_data(kind, after_gzip, changes):
    attempt_pickle(stored(pickle_raw(kind), True, changes, after_gzip))


# ---- forged IDX headers: magic, dimensions, counts, sizes ---------------------------------------

SIZES = [0, 1, 2, 3, 5, 6, 11, 12, 13, 255, 1 << 16, (1 << 28) - 1, 1 << 28, (1 << 32) - 1]


@st.composite
def forged_idx_files(draw) -> dict[str, bytes]:
    """The valid directory with one part of one file forged: its magic, sizes, ndim or data."""
    key = draw(st.sampled_from(sorted(IDX_NAMES)))
    raw = idx_raw()[key]
    magic, ndim = int.from_bytes(raw[:4], "big"), raw[3]
    dims = list(struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim]))
    data = raw[4 + 4 * ndim :]
    part = draw(st.sampled_from(["magic", "size", "size", "ndim", "data", "size and data", "size fitted"]))
    if part == "magic":
        magic = draw(
            st.sampled_from([0x801, 0x803, 0x802, 0x804, 0x903, 0x0D03, 0]) | st.integers(0, 2**32 - 1)
        )
    if part.startswith("size"):
        at = draw(st.integers(0, ndim - 1))
        dims[at] = draw(st.sampled_from(SIZES) | st.integers(0, 2**32 - 1) | st.integers(0, 3 * dims[at]))
    if part == "ndim":
        dims = dims[: draw(st.integers(0, ndim - 1))] + draw(st.lists(st.sampled_from(SIZES), max_size=2))
    if part.endswith("data"):
        data = draw(st.sampled_from([data[: draw(st.integers(0, len(data)))], data + bytes(7)]))
        data = draw(st.sampled_from([data, data * draw(st.integers(2, 4))]))
    if part == "size fitted" and math.prod(dims) <= 1 << 12:  # the data made to match, digits for labels
        data = bytes(b % 10 if ndim == 1 else b for b in (data * (1 << 12))[: math.prod(dims)])
    content = struct.pack(f">I{len(dims)}I", magic, *dims) + data
    gz = draw(st.booleans())
    files = {IDX_NAMES[other]: content if other == key else good for other, good in idx_raw().items()}
    return {f"{name}.gz" if gz else name: gzip.compress(f, mtime=0) if gz else f for name, f in files.items()}


@fuzz_settings(IDX_HEADER_EXAMPLES)
@given(forged_idx_files())
def test_forged_idx_headers_are_refused_or_load_sound_data(files):
    attempt_idx(files)


# ---- opcode-level edits of pickles: moved, repeated, inserted, resized, memo reuse --------------


def opcodes(raw: bytes) -> list[bytes]:
    """`raw` cut into its opcodes, each with its argument."""
    starts = [pos for _, _, pos in pickletools.genops(raw)]
    return [raw[a:b] for a, b in zip(starts, [*starts[1:], len(raw)], strict=True)]


COUNTED = {  # opcode -> format of the size that follows it
    b"B": "<I", b"C": "<B", b"T": "<I", b"U": "<B", b"X": "<I", b"\x8c": "<B",
    b"\x8d": "<Q", b"\x8e": "<Q", b"\x96": "<Q", b"\x95": "<Q",
}  # fmt: skip
SNIPPETS = [
    b"2", b"0", b"1", b"(", b"t", b")", b"]", b"}", b"e", b"a", b"s", b"u", b"R", b"b", b"N", b"\x85",
    b"\x86", b"\x87", b"\x88", b"\x89", b"\x94", b"\x81", b"\x92", b"\x93", b".", b"P1\n", b"Q",
    b"cos\nsystem\n", b"cnumpy\nndarray\n", b"cnumpy\ndtype\n", b"cbuiltins\nbytes\n", b"c_codecs\nencode\n",
    b"cnumpy._core.numeric\n_frombuffer\n", b"cnumpy._core.multiarray\n_reconstruct\n",
    b"r\xff\xff\xff\x7f", b"j\x00\x00\x00\x01", b"p99999999999\n", b"g0\n", b"K\x00", b"J\xff\xff\xff\xff",
    b"\x8a\x09" + b"\xff" * 9, b"L" + b"9" * 5000 + b"L\n", b"S'\\q'\n", b"V\\ud800\n", b"F1e999\n",
    b"X\x02\x00\x00\x00f8", b"X\x02\x00\x00\x00O8", b"X\x01\x00\x00\x00C",
    b"\x96" + struct.pack("<Q", 1 << 40),
    b"\x8e" + struct.pack("<Q", 1 << 20) + bytes(64), b"\x95" + struct.pack("<Q", 1 << 30), b"\x97", b"\x98",
]  # fmt: skip
sizes = st.sampled_from([0, 1, 2, 3, 8, 255, 2**16, 2**31 - 1, 2**32 - 1, 2**40, 2**63 - 1]) | st.integers(
    0, 600
)


def resized(op: bytes, size: int) -> bytes:
    form = COUNTED.get(op[:1])
    if form is None:
        return op
    width = struct.calcsize(form)
    return op[:1] + (size % (1 << (8 * width))).to_bytes(width, "little") + op[1 + width :]


@st.composite
def opcode_edits(draw, ops: list[bytes]) -> list[bytes]:
    ops = list(ops)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(ops) - 1))
        action = draw(st.sampled_from(["delete", "repeat", "move", "insert", "resize", "get", "put"]))
        if action == "delete" and len(ops) > 1:
            del ops[at]
        elif action == "repeat":
            ops[at:at] = [ops[at]] * draw(st.integers(1, 3) | st.sampled_from([100, 3000]))
        elif action == "move":
            ops.insert(draw(st.integers(0, len(ops) - 1)), ops.pop(at))
        elif action == "insert":
            ops.insert(at, draw(st.sampled_from(SNIPPETS)))
        elif action == "resize":
            ops[at] = resized(ops[at], draw(sizes))
        else:  # memo reuse: an earlier object referred to again, or one stored where another was
            code = draw(st.integers(0, 40) | st.sampled_from([255, 2**16, 2**31]))
            small = code < 256
            op = (b"h" if small else b"j") if action == "get" else (b"q" if small else b"r")
            ops.insert(at, op + code.to_bytes(1 if small else 4, "little"))
    return ops


@fuzz_settings(PICKLE_OPCODE_EXAMPLES)
@given(st.sampled_from(PICKLE_KINDS), st.data())
def test_pickles_edited_opcode_by_opcode_are_refused_or_load_sound_data(kind, data):
    ops = data.draw(opcode_edits(opcodes(pickle_raw(kind))))
    attempt_pickle(gzip.compress(b"".join(ops), 1, mtime=0))


@fuzz_settings(MEMO_EXAMPLES)
@given(st.integers(1, 4000), st.sampled_from([0, 1, 16, 4096, 1 << 20]), st.sampled_from([b"", b"2", b"0"]))
def test_memoised_data_given_to_many_arrays_is_refused_or_loads_sound_data(arrays, data_bytes, extra):
    raw = memo_bomb(arrays, data_bytes)
    attempt_pickle(gzip.compress(raw[:-2] + extra + raw[-2:], 6, mtime=0))
