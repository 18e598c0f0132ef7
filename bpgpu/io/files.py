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


def check_writable(path: str | os.PathLike[str], what: str = "file") -> str:
    """The real path `atomic_write(path)` would replace (links followed), or `ValueError` naming
    `path` when it cannot hold a file: a name ending in a separator, a missing or unwritable
    directory, or something there that is not a regular file."""
    name = os.fspath(path)
    if not name or name.endswith((os.sep, "/")) or os.path.basename(name) in ("", ".", ".."):
        raise ValueError(f"{name!r}: not a file name; expected the name of a {what} to write")
    target = os.path.realpath(name)
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise ValueError(f"{name}: directory {directory} does not exist")
    if os.path.lexists(target) and not os.path.isfile(target):
        kind = "a directory" if os.path.isdir(target) else "not a regular file"
        raise ValueError(f"{name}: is {kind}; refusing to replace it with a {what}")
    if not os.access(directory, os.W_OK):
        raise ValueError(f"{name}: cannot write in {directory}")
    return target


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file to write; on success it replaces `path` in one rename, on failure it vanishes.

    The data goes to a new temporary file in the same directory, is flushed to disk, and is then
    renamed over `path` (atomic on POSIX and Windows). An existing file keeps its permissions; a new
    one gets the usual ones (0666 less the umask, applied by the OS when the file is created). A
    symbolic link is followed: the file it points to is replaced, the link stays. Anything at `path`
    that is not a regular file (a device such as /dev/null, a FIFO, a directory) raises `ValueError`
    and is left alone (see `check_writable`).
    """
    target = check_writable(path)
    directory = os.path.dirname(target)
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
