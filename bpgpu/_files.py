"""Files on disk: reading only regular files, and writing so that an interrupted write never leaves a
broken file where a good one was."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from typing import IO


def open_regular(path: str | os.PathLike[str], what: str) -> IO[bytes]:
    """`path` opened for binary reading, if it is a regular file (after following links).

    A FIFO, a device such as /dev/zero, a socket or a directory raises `ValueError` naming the file
    and `what` was expected; nothing is read from it, and opening never blocks: the file is opened
    non-blocking and checked with `fstat` on the open descriptor, so it cannot be swapped in between.
    A missing file raises `FileNotFoundError`.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except IsADirectoryError:
        raise ValueError(f"{name}: is a directory; expected {what}") from None
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such file; expected {what}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise ValueError(f"{name}: is {kind}; expected {what}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file to write; on success it replaces `path` in one rename, on failure it vanishes.

    The data goes to a new temporary file in the same directory, is flushed to disk, and is then
    renamed over `path` (atomic on POSIX and Windows). An existing file keeps its permissions; a new
    one gets the usual ones (0666 less the umask, applied by the OS when the file is created).
    """
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    # Short enough for any file-name limit, unique, hidden; O_EXCL never reuses someone else's file.
    tmp = os.path.join(directory, f".{os.path.basename(target)[:64]}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows it
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
