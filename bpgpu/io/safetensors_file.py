"""safetensors files (huggingface.co/docs/safetensors), read and written without running code.

The format: 8 bytes, a little-endian u64 N; N bytes of UTF-8 JSON, the header, mapping each tensor's
name to `{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}` plus an optional
`"__metadata__"` of string keys and values; then the tensors' bytes. Writing and the tensors
themselves go through the `safetensors` package, whose parser checks every offset against the
buffer. The header is read here first, bounded (its size, the depth of its JSON, the length of its
integers), so that a caller can check names, shapes and dtypes before any tensor is built.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from typing import IO, Any

import numpy as np

from .._messages import refuse_constant

HEADER_LIMIT = 1 << 20  # bytes of header JSON, as the .npz metadata; a bpgpu model's is a few kB
MAX_DIMENSIONS = 8  # of a tensor's shape; bpgpu's have 1 or 2
DTYPES = {"F32": np.dtype("float32"), "F64": np.dtype("float64")}  # the dtypes bpgpu reads
SUFFIX = ".safetensors"


def is_safetensors_name(path: str | os.PathLike[str]) -> bool:
    """Whether `path` names a safetensors file (by its suffix, as the ecosystem does)."""
    return os.fspath(path).lower().endswith(SUFFIX)


def looks_like_safetensors(start: bytes) -> bool:
    """Whether a file's first 9 bytes look like a safetensors header (a size, then a JSON object)."""
    return len(start) >= 9 and start[8:9] == b"{"


def encode(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """The whole file for `tensors` (C-contiguous host arrays) with the string `metadata`."""
    from safetensors.numpy import save

    return save({key: np.ascontiguousarray(value) for key, value in tensors.items()}, metadata=metadata)


def read_all(name: str, file: IO[bytes]) -> bytes:
    """Every byte of the regular file `file`: exactly its size on disk when opened, never more."""
    size = os.fstat(file.fileno()).st_size
    data = file.read(size)
    if len(data) != size:
        raise ValueError(f"{name}: the file changed while it was read ({len(data)} of {size} bytes)")
    return data


def header(name: str, data: bytes, parse_int: Callable[[str], int], too_deep: Callable[[Any], bool]) -> dict:
    """The header of the safetensors file `data`, checked to be a JSON object whose entries have
    the format's fields; `ValueError` naming the file otherwise."""
    if len(data) < 8:
        raise ValueError(
            f"{name}: not a safetensors file (truncated: {len(data)} bytes, less than its 8-byte size)"
        )
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(len(data) - 8, HEADER_LIMIT) or size < 2:
        raise ValueError(
            f"{name}: not a safetensors file (its header would be {size} bytes; the file holds "
            f"{len(data) - 8} after the size, and a header may have at most {HEADER_LIMIT})"
        )
    try:  # JSONDecodeError and UnicodeDecodeError are ValueErrors, as is what parse_int raises
        parsed = json.loads(
            data[8 : 8 + size].decode("utf-8"), parse_int=parse_int, parse_constant=refuse_constant
        )
    except (ValueError, RecursionError) as exc:
        raise ValueError(
            f"{name}: safetensors header is not valid JSON ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(parsed, dict) or too_deep(parsed):
        raise ValueError(f"{name}: safetensors header is not a flat JSON object of tensors")
    for key, entry in parsed.items():
        if key == "__metadata__":
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise ValueError(f"{name}: safetensors '__metadata__' must map strings to strings")
            continue
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("dtype"), str)
            and isinstance(entry.get("shape"), list)
            and len(entry["shape"]) <= MAX_DIMENSIONS
            and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in entry["shape"])
        ):
            raise ValueError(
                f"{name}: safetensors entry {key[:40]!r} lacks a dtype string or a shape list "
                f"(of at most {MAX_DIMENSIONS} sizes ≥ 0)"
            )
    return parsed


def tensors(name: str, data: bytes) -> dict[str, np.ndarray]:
    """The tensors of `data` as host arrays, by the `safetensors` package's own parser; anything it
    refuses (overlapping or out-of-range offsets, unknown dtypes, ...) is a `ValueError` naming the file."""
    import safetensors.numpy

    try:
        return safetensors.numpy.load(data)
    except Exception as exc:  # SafetensorError, and what a forged header may make numpy raise
        raise ValueError(f"{name}: damaged safetensors file ({type(exc).__name__}: {exc})") from exc
