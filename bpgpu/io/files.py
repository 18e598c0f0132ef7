"""Files on disk: reading only regular files, and writing so that an interrupted write never leaves a
broken file where a good one was, nor a temporary one for long.

A write goes to a hidden temporary file beside the target (`.NAME.<12 hex>.tmp`), held under an
exclusive `flock` while it is written, and then renamed over the target. A process killed mid-write
leaves its temporary behind; the next write to the same target removes those that no live process
holds locked.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import secrets
import stat
from collections.abc import Iterator
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no flock; temporaries of killed writes are then left alone
    fcntl = None  # type: ignore[assignment]

PACKAGE = os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    except OSError as exc:  # a loop of links, a path through a file, a name too long, no permission
        raise ValueError(f"{name}: cannot be opened ({exc.strerror}); expected {what}") from None
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
    directory, something there that is not a regular file, or a place inside the installed bpgpu
    package (whose own data files a save would otherwise replace). See `try_writable` for a check
    that also creates the file."""
    name = os.fspath(path)
    if not name or name.endswith((os.sep, "/")) or os.path.basename(name) in ("", ".", ".."):
        raise ValueError(f"{name!r}: not a file name; expected the name of a {what} to write")
    try:
        target = os.path.realpath(name, strict=False)
    except OSError as exc:  # a loop of symbolic links (Python ≥ 3.13 raises it here)
        raise ValueError(f"{name}: cannot be written ({exc.strerror})") from None
    if target == PACKAGE or target.startswith(PACKAGE + os.sep):
        raise ValueError(f"{name}: is inside the bpgpu package ({PACKAGE}); refusing to write there")
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):
        raise ValueError(f"{name}: directory {directory} does not exist")
    if os.path.lexists(target) and not os.path.isfile(target):
        kind = "a directory" if os.path.isdir(target) else "not a regular file"
        raise ValueError(f"{name}: is {kind}; refusing to replace it with a {what}")
    if not os.access(directory, os.W_OK):
        raise ValueError(f"{name}: cannot write in {directory}")
    return target


def try_writable(path: str | os.PathLike[str], what: str = "file") -> str:
    """`check_writable`, then what a write will need, tried without touching `path`: that the file
    system takes a name that long, and that the directory takes a new file (an empty probe,
    `.NAME.<12 hex>.probe`, is created and removed; /proc, say, refuses it)."""
    target = check_writable(path, what)
    directory, base = os.path.split(target)
    longest = None
    with contextlib.suppress(OSError, ValueError, AttributeError):  # pathconf: POSIX only
        longest = os.pathconf(directory, "PC_NAME_MAX")
    if longest is not None and len(os.fsencode(base)) > longest:
        raise ValueError(f"{os.fspath(path)}: cannot be written ({os.strerror(errno.ENAMETOOLONG)})")
    probe = os.path.join(directory, f".{base[:64]}.{secrets.token_hex(6)}.probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ValueError(f"{os.fspath(path)}: cannot be written ({exc.strerror})") from None
    try:
        os.close(fd)
    finally:  # only the probe this call created
        with contextlib.suppress(OSError):
            os.unlink(probe)
    return target


def _temporary(target: str) -> str:
    """A new temporary's name beside `target`: short enough for any file-name limit, unique, hidden."""
    return os.path.join(
        os.path.dirname(target), f".{os.path.basename(target)[:64]}.{secrets.token_hex(6)}.tmp"
    )


def _rename(tmp: str, target: str) -> None:
    """The finished temporary in the target's place, with the target's permissions when it had one."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(tmp, os.stat(target).st_mode & 0o7777)
    os.replace(tmp, target)


def _remove_stale_temporaries(target: str) -> None:
    """Remove the temporaries of `target` that killed writes left: those no live process holds."""
    if fcntl is None:
        return
    stem = os.path.basename(target)[:64]
    pattern = re.compile(re.escape(f".{stem}.") + r"[0-9a-f]{12}\.tmp")
    for candidate in glob.glob(
        os.path.join(glob.escape(os.path.dirname(target)), f".{glob.escape(stem)}.*.tmp")
    ):
        if not pattern.fullmatch(os.path.basename(candidate)):
            continue
        with contextlib.suppress(OSError):
            flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
            fd = os.open(candidate, flags)  # a FIFO planted there opens without waiting
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: a write in progress, keep it
                if stat.S_ISREG(os.fstat(fd).st_mode):
                    os.unlink(candidate)
            finally:
                os.close(fd)


def _create_locked(target: str, shown: str) -> tuple[int, str]:
    """A new temporary beside `target`, open for writing and locked (where `flock` exists)."""
    while True:
        tmp = _temporary(target)  # O_EXCL never reuses someone else's file
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except OSError as exc:
            raise _naming(exc, shown) from None
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)  # ours while it is written: see _remove_stale_temporaries
        if os.fstat(fd).st_nlink:
            return fd, tmp
        os.close(fd)  # a cleaner removed it between its creation and our lock: take another name


def _naming(exc: OSError, shown: str) -> OSError:
    """`exc` naming the file the user asked for instead of its temporary (one without an errno,
    which a library may raise with a message of its own, as it is)."""
    if exc.errno is None:
        return exc
    return type(exc)(exc.errno, f"{exc.strerror} (writing {shown})", shown)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file to write; on success it replaces `path` in one rename, on failure it vanishes.

    The data goes to a new temporary file in the same directory, is flushed to disk, and is then
    renamed over `path` (atomic on POSIX and Windows). An existing file keeps its permissions; a new
    one gets the usual ones (0666 less the umask, applied by the OS when the file is created). A
    symbolic link is followed: the file it points to is replaced, the link stays. Anything at `path`
    that is not a regular file (a device such as /dev/null, a FIFO, a directory) raises `ValueError`
    and is left alone (see `check_writable`). An `OSError` while writing (a full disk) names `path`,
    not the temporary.
    """
    target = check_writable(path)
    directory = os.path.dirname(target)
    _remove_stale_temporaries(target)
    fd, tmp = _create_locked(target, os.fspath(path))
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
            if fcntl is not None:
                _rename(tmp, target)  # still locked: a cleaner never takes it for a killed write's
        if fcntl is None:
            _rename(tmp, target)  # Windows renames closed files only
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if exc.filename in (None, tmp):
            raise _naming(exc, os.fspath(path)) from exc
        raise
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
