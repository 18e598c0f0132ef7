"""Reading the `.npz` layer of a bpgpu model file: a zip of `.npy` arrays that may be damaged or forged.

Nothing the file declares is trusted. Only what `numpy.savez` writes is read: regular files, members
that are stored (not compressed), unencrypted and named `<key>.npy`, each an `.npy` array whose header
is parsed here, strictly, rather than by NumPy's reader. Every size is checked against the bytes on
disk before anything is read, so loading takes time and memory bounded by the file's real size; the
zip CRC of every member is checked, since each is read to its end. Every problem raises `ValueError`
starting with the file's name.
"""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import math
import os
import struct
import zipfile
from collections.abc import Callable, Iterator
from typing import IO

import numpy as np

from .._messages import show, warnings_as_errors
from .files import open_regular

MAGIC = b"\x93NUMPY"
HEADER_LIMIT = 1 << 16  # bytes of .npy header text; NumPy writes well under 1 KiB for any array
CHUNK = 1 << 20  # bytes read at a time
MAX_DIM = 2**63 - 1  # NumPy's dimensions are int64
LENGTH_FORMATS = {(1, 0): "<H", (2, 0): "<I", (3, 0): "<I"}  # .npy version -> its header-length field
PLAIN_FLAGS = 0x0008 | 0x0800  # zip flag bits that change nothing here: data descriptor, UTF-8 names
FLAG_NAMES = {0: "encrypted", 5: "compressed patched data", 6: "strongly encrypted"}
MAX_ZIP_VERSION = 63  # the newest zip version `zipfile` reads (6.3)
LOCAL_HEADER = struct.Struct("<4sBBHHHHLLLHH")  # signature ... file-name length, extra-field length
# What `zipfile` raises on a damaged archive, besides BadZipFile; none of them names the file.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    struct.error,
)


class EntryError(Exception):
    """What is wrong with one member; `read_array` turns it into a `ValueError` naming file and entry."""


@dataclasses.dataclass(frozen=True)
class Archive:
    name: str  # the path, for messages
    zip: zipfile.ZipFile
    file: IO[bytes]
    size: int  # bytes on disk, from fstat of the open file


@dataclasses.dataclass(frozen=True)
class Header:
    """A checked `.npy` header: `dtype` is one `numpy.dtype` accepts, `shape` non-negative int64s."""

    dtype: np.dtype
    fortran_order: bool
    shape: tuple[int, ...]


@contextlib.contextmanager
def open_archive(name: str) -> Iterator[Archive]:
    """The zip archive in the regular file `name` (a FIFO or device is refused unread)."""
    try:
        file = open_regular(name, "a bpgpu model file")
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such model file") from None
    with file:
        try:
            archive = zipfile.ZipFile(file)
        except ZIP_ERRORS as exc:
            raise ValueError(
                f"{name}: not a bpgpu model file (neither an .npz archive nor safetensors: {exc})"
            ) from exc
        with archive:
            yield Archive(name, archive, file, os.fstat(file.fileno()).st_size)


def entries(archive: Archive) -> dict[str, zipfile.ZipInfo]:
    """The members by key (`<key>.npy`), once each and within the file, with plain local headers."""
    found: dict[str, zipfile.ZipInfo] = {}
    spanned = 0
    for info in archive.zip.infolist():
        key = info.orig_filename.removesuffix(".npy")
        if key == info.orig_filename:
            raise ValueError(f"{archive.name}: entry {show(key)} is not named <key>.npy as in bpgpu models")
        if key in found:
            raise ValueError(f"{archive.name}: entry {show(key)} appears twice")
        found[key] = info
        try:
            spanned += _span(archive, info)
        except ZIP_ERRORS as exc:
            raise ValueError(f"{archive.name}: damaged bpgpu model file, entry {show(key)} ({exc})") from exc
        except EntryError as exc:
            raise ValueError(f"{archive.name}: entry {show(key)} {exc}") from None
    if spanned > archive.size:
        raise ValueError(
            f"{archive.name}: damaged bpgpu model file: its entries span {spanned} bytes in all, "
            f"more than the file's {archive.size} (they overlap)"
        )
    return found


def read_array(archive: Archive, info: zipfile.ZipInfo, expect: Callable[[Header], str | None]) -> np.ndarray:
    """The array in member `info` (one `entries` checked), if `expect(header)` finds nothing wrong
    (it returns what is wrong).

    Exactly the bytes the header needs are read, and they must fill the member: a size the header or
    the zip declares that the file does not hold is refused before anything is allocated for it.
    """
    key = info.orig_filename.removesuffix(".npy")
    try:
        with archive.zip.open(info) as file:
            header, length = _read_header(file, info.file_size)
            problem = expect(header)
            if problem is not None:
                raise EntryError(problem)
            needed = math.prod(header.shape) * header.dtype.itemsize
            if info.file_size - length != needed:
                raise EntryError(
                    f"holds {info.file_size - length} bytes of array data; its header "
                    f"({header.dtype} {header.shape}) needs {needed}"
                )
            data = _read_exactly(file, needed, "its array data")
            if file.read(1):  # also the read that lets zipfile check the CRC of a member with no data
                raise EntryError("holds bytes after its array data")
            array = np.frombuffer(data, dtype=header.dtype)  # on a bytearray: writable, not a copy
            return array.reshape(header.shape, order="F" if header.fortran_order else "C")
    except EntryError as exc:
        raise ValueError(f"{archive.name}: entry {show(key)} {exc}") from None
    except ZIP_ERRORS as exc:
        raise ValueError(
            f"{archive.name}: damaged bpgpu model file, entry {show(key)} ({type(exc).__name__}: {exc})"
        ) from exc


def parse_header(text: str) -> Header:
    """The `.npy` header dictionary in `text`, checked; `EntryError` says what is wrong with it."""
    try:
        with warnings_as_errors():  # an invalid escape in a string literal warns
            fields = ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError, OverflowError, Warning) as exc:
        raise EntryError(f"has an .npy header that is not a Python literal ({type(exc).__name__})") from None
    if not isinstance(fields, dict) or set(fields) != {"descr", "fortran_order", "shape"}:
        got = show(sorted(map(repr, fields))) if isinstance(fields, dict) else type(fields).__name__
        raise EntryError(f"has an .npy header that is not a dict of descr, fortran_order, shape: {got}")
    shape, order = fields["shape"], fields["fortran_order"]
    if not isinstance(shape, tuple) or not all(_dimension(n) for n in shape):
        raise EntryError(f"has an .npy shape that is not a tuple of int64s ≥ 0: {show(shape)}")
    if not isinstance(order, bool):
        raise EntryError(f"has an .npy fortran_order that is not True or False: {show(order)}")
    return Header(_dtype(fields["descr"]), order, shape)


def _span(archive: Archive, info: zipfile.ZipInfo) -> int:
    """Bytes member `info` occupies (local header to end of data), after checking that the file holds
    them and that both its headers describe a plain stored member."""
    if not 0 <= info.header_offset <= archive.size - LOCAL_HEADER.size:
        raise EntryError(f"starts at byte {info.header_offset}, outside the {archive.size}-byte file")
    archive.file.seek(info.header_offset)
    local = LOCAL_HEADER.unpack(archive.file.read(LOCAL_HEADER.size))
    if local[0] != b"PK\x03\x04":
        raise EntryError(f"has no local zip header at byte {info.header_offset}")
    for where, version, flags, method in (
        ("its zip directory entry", info.extract_version, info.flag_bits, info.compress_type),
        ("its local zip header", local[1], local[3], local[4]),
    ):
        if odd := flags & ~PLAIN_FLAGS:
            named = [FLAG_NAMES.get(bit, f"bit {bit}") for bit in range(16) if odd >> bit & 1]
            raise EntryError(f"is marked {', '.join(named)} in {where}; bpgpu models are plain zip members")
        if method != zipfile.ZIP_STORED:
            raise EntryError(f"is compressed (zip method {method}) in {where}; bpgpu models are stored")
        if version > MAX_ZIP_VERSION:
            raise EntryError(f"needs zip version {version / 10:.1f} in {where}; bpgpu reads up to 6.3")
    if info.file_size != info.compress_size:
        raise EntryError(f"declares {info.file_size} bytes but stores {info.compress_size}; it is not stored")
    span = LOCAL_HEADER.size + local[10] + local[11] + info.compress_size
    if info.header_offset + span > archive.size:
        raise EntryError(
            f"declares {info.compress_size} bytes at byte {info.header_offset}, "
            f"past the end of the {archive.size}-byte file"
        )
    return span


def _read_header(file: IO[bytes], available: int) -> tuple[Header, int]:
    """The `.npy` header at the start of `file` (a member of `available` bytes) and its length."""
    start = _read_exactly(file, len(MAGIC) + 2, "an .npy magic string and version")
    if start[: len(MAGIC)] != MAGIC:
        raise EntryError(f"is not an .npy array: it starts {bytes(start[: len(MAGIC)])!r}, not {MAGIC!r}")
    version = (start[-2], start[-1])
    if version not in LENGTH_FORMATS:
        raise EntryError(f"has .npy format version {version}; expected (1, 0), (2, 0) or (3, 0)")
    field = struct.Struct(LENGTH_FORMATS[version])
    (length,) = field.unpack(_read_exactly(file, field.size, "an .npy header length"))
    if length > HEADER_LIMIT:
        raise EntryError(f"has an .npy header of {length} bytes, more than any array needs ({HEADER_LIMIT})")
    prefix = len(start) + field.size
    if prefix + length > available:
        raise EntryError(f"is truncated: its .npy header needs {prefix + length} bytes, holds {available}")
    raw = _read_exactly(file, length, "its .npy header")
    try:
        text = raw.decode("latin-1" if version < (3, 0) else "utf-8")
    except UnicodeDecodeError:
        raise EntryError("has an .npy header that is not UTF-8 text") from None
    return parse_header(text), prefix + length


def _read_exactly(file: IO[bytes], n: int, what: str) -> bytearray:
    """`n` bytes from `file`, read in chunks; callers have checked that the file holds `n` bytes."""
    data, got = bytearray(n), 0
    while got < n:
        chunk = file.read(min(CHUNK, n - got))
        if not chunk:
            raise EntryError(f"is truncated: {what} needs {n} bytes, holds {got}")
        data[got : got + len(chunk)] = chunk
        got += len(chunk)
    return data


def _dimension(n: object) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_DIM


def _dtype(descr: object) -> np.dtype:
    if isinstance(descr, str) and len(descr) <= 64:
        try:
            with warnings_as_errors():  # a deprecated alias is not what numpy.savez writes
                return np.dtype(descr)
        except (TypeError, ValueError, KeyError, SyntaxError, Warning):
            pass
    raise EntryError(f"has an .npy descr that is not a NumPy dtype: {show(descr)}")
