"""Reading a file that may be gzipped, whose sizes are not to be trusted.

`read_up_to(file, n)` never allocates more than `CHUNK` bytes ahead of the data that is really there,
where Python's own `read(n)` allocates `n` bytes first: a header that announces a huge size gets only
as much memory as the file holds.
"""

from __future__ import annotations

import contextlib
import gzip
import zlib
from collections.abc import Iterator
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20  # bytes read at a time
# What reading a damaged gzip stream raises: BadGzipFile (an OSError), zlib.error for damaged deflate
# data, and EOFError for a stream cut short.
GZIP_ERRORS = (OSError, EOFError, zlib.error)


def is_gzipped(file: IO[bytes]) -> bool:
    """Whether the (seekable) `file` starts with the gzip magic bytes; it is left at its start."""
    file.seek(0)
    gzipped = file.read(2) == GZIP_MAGIC
    file.seek(0)
    return gzipped


@contextlib.contextmanager
def gunzipped(file: IO[bytes]) -> Iterator[IO[bytes]]:
    """The content of `file` from its start: gunzipped when it starts with the gzip magic bytes."""
    if not is_gzipped(file):
        yield file
        return
    with gzip.GzipFile(fileobj=file, mode="rb") as stream:
        yield stream


def read_up_to(file: IO[bytes], n: int) -> bytes | bytearray:
    """At most `n` bytes of `file` (fewer at its end), read `CHUNK` at a time."""
    if n <= CHUNK:
        return file.read(n)
    data = bytearray()
    while len(data) < n and (piece := file.read(min(CHUNK, n - len(data)))):
        data += piece
    return data


def head(file: IO[bytes], n: int) -> bytes:
    """The first `n` bytes of the content of `file` (gunzipped), or fewer if it cannot be read."""
    try:
        with gunzipped(file) as stream:
            return bytes(read_up_to(stream, n))
    except GZIP_ERRORS:
        return b""
    finally:
        file.seek(0)
