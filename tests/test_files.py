"""Files on disk at the edges: paths the OS refuses (a loop of links, a path through a file, a name
too long), a full disk, the package's own folder, and temporaries that killed writes leave."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import bpgpu
import bpgpu.datasets
from bpgpu.cli import main
from bpgpu.io import files

fcntl = pytest.importorskip("fcntl", reason="flock (POSIX) is what keeps a write's temporary")


def small():
    return bpgpu.Network([3, 4, 2], seed=1)


def test_paths_the_os_cannot_open_are_value_errors_naming_them(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "plain").write_bytes(b"x")
    for path, reason in (
        (tmp_path / "loop", "symbolic links"),
        (tmp_path / "plain" / "m.npz", "Not a directory"),
        (tmp_path / ("n" * 300 + ".npz"), "name too long"),
    ):
        with pytest.raises(ValueError, match=rf"{path.name}: cannot be opened \(.*{reason}.*\)"):
            bpgpu.load(path)
        with pytest.raises(ValueError, match="cannot be opened"):
            bpgpu.datasets.load_mnist(path)


def test_a_save_that_cannot_create_its_file_fails_before_training_in_the_cli(tmp_path, capsys):
    long_name = tmp_path / ("n" * 300 + ".npz")
    assert main(["train", "--epochs", "1", "--save", str(long_name)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bpgpu train: error: --save ") and "name too long" in err
    assert err.count("\n") == 1 and "epoch" not in err
    if os.path.isdir("/proc/self"):  # a folder whose files are the kernel's: no new file there
        assert main(["train", "--epochs", "1", "--plot", "/proc/self/curves.png"]) == 1
        assert "cannot write" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_try_writable_changes_nothing_that_exists(tmp_path):
    existing = tmp_path / "m.npz"
    existing.write_bytes(b"keep")
    assert files.try_writable(existing) == str(existing)
    assert files.try_writable(tmp_path / "new.npz") == str(tmp_path / "new.npz")
    assert existing.read_bytes() == b"keep" and sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_the_package_folder_is_never_written(tmp_path):
    inside = os.path.join(files.PACKAGE, "data", "digits.npz")
    with pytest.raises(ValueError, match="is inside the bpgpu package"):
        small().save(inside)
    (tmp_path / "to-package").symlink_to(files.PACKAGE)
    with pytest.raises(ValueError, match="is inside the bpgpu package"):
        small().save(tmp_path / "to-package" / "m.npz")


def test_a_full_disk_names_the_file_asked_for_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "m.npz"
    small().save(target)
    before = target.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=rf"No space left on device \(writing {target}\)") as caught:
        bpgpu.Network([3, 5, 2], seed=2).save(target)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert ".tmp" not in str(caught.value)
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_a_save_removes_temporaries_of_killed_writes_and_keeps_those_in_progress(tmp_path):
    target = tmp_path / "m.npz"
    stale = tmp_path / ".m.npz.0123456789ab.tmp"  # as a write killed mid-way leaves it
    busy = tmp_path / ".m.npz.ba9876543210.tmp"  # a write another process is doing now
    others = [tmp_path / ".m.npz.notours.tmp", tmp_path / ".other.npz.0123456789ab.tmp"]
    for path in [stale, busy, *others]:
        path.write_bytes(b"partial")
    with open(busy, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        small().save(target)
    assert not stale.exists() and busy.exists() and all(p.exists() for p in others)
    np.testing.assert_array_equal(bpgpu.load(target).weights[0], small().weights[0])


def test_a_temporary_removed_before_it_was_locked_is_replaced_by_another(tmp_path, monkeypatch):
    """A cleaner may take a new temporary for a killed write's in the instant between its creation
    and its lock: the writer sees the name gone and starts again under a new one."""
    real_flock, removed = fcntl.flock, []

    def cleaner_first(fd, operation):
        if not removed:
            path = os.readlink(f"/proc/self/fd/{fd}")
            os.unlink(path)
            removed.append(path)
        return real_flock(fd, operation)

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to name the temporary by its descriptor")
    monkeypatch.setattr(files.fcntl, "flock", cleaner_first)
    small().save(tmp_path / "m.npz")
    assert removed and bpgpu.load(tmp_path / "m.npz").sizes == [3, 4, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_a_fifo_named_like_a_temporary_does_not_stop_a_save(tmp_path):
    """Anyone who can write the folder could plant one; opening it to check its lock must not wait."""
    planted = tmp_path / ".m.npz.0123456789ab.tmp"
    os.mkfifo(planted)
    script = f"import bpgpu; bpgpu.Network([3, 4, 2], seed=1).save({str(tmp_path / 'm.npz')!r})"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert bpgpu.load(tmp_path / "m.npz").sizes == [3, 4, 2] and planted.exists()  # not ours: left


def test_the_pre_check_never_creates_the_target_or_a_name_a_cleaner_would_take(tmp_path, monkeypatch):
    created, real_open = [], os.open

    def recording(path, flags, *args):
        if flags & os.O_CREAT:
            created.append(os.path.basename(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", recording)
    for name in ("new.npz", "m.npz"):
        files.try_writable(tmp_path / name)
    (tmp_path / "m.npz").write_bytes(b"old")
    files.try_writable(tmp_path / "m.npz")
    assert created and all(re.fullmatch(r"\.(new|m)\.npz\.[0-9a-f]{12}\.probe", name) for name in created)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def test_an_error_without_an_errno_keeps_its_own_message(tmp_path):
    with pytest.raises(OSError, match=r"^encoder error$"), files.atomic_write(tmp_path / "p.png"):
        raise OSError("encoder error")  # as an image library raises it while writing
    assert list(tmp_path.iterdir()) == []


def test_messages_show_what_a_forged_value_holds_without_printing_it():
    from bpgpu._messages import show

    assert show([10**5000]) == "a list of length 1" and show((1, 2**64)) == "(1, 18446744073709551616)"
    assert show(10**5000).startswith("an integer of about 5001 digits")
    nested = []
    nested.append(nested)
    assert show(nested) == "a list of length 1"
