"""Every shell command the README shows (its ```sh blocks) works as written, from the root of a clone
with the virtual environment active.

The commands run in order in one scratch folder that holds `examples/` (a link to the real one) and a
small `mnist.pkl.gz` in the book's format standing in for the download, with this Python's `bin/`
first on PATH, as `. .venv/bin/activate` puts it. Installing (`pip`, `make`), downloading (`curl`) and
activating are not repeated here: CI has done them.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import pickle
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

import bpgpu

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOT_RUN = ("pip ", "make ", "curl ", ". ")  # installing, downloading, activating


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in text.split("```sh\n")[1:]:
        for line in block.split("\n```", 1)[0].splitlines():
            command = line.split("  #", 1)[0].strip()
            if command and not command.startswith(NOT_RUN):
                commands.append(command)
    return commands


COMMANDS = readme_commands()


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    here = tmp_path_factory.mktemp("clone")
    (here / "examples").symlink_to(ROOT / "examples")
    rng = np.random.default_rng(0)
    splits = tuple(
        ((rng.integers(0, 256, (n, 784)) / 256).astype(np.float32), rng.integers(0, 10, n).astype(np.int64))
        for n in (60, 20, 20)
    )
    with gzip.open(here / "mnist.pkl.gz", "wb") as f:
        pickle.dump(splits, f, protocol=2)
    return here


def test_the_readme_shows_commands_and_none_that_cannot_work_from_a_clone():
    assert len(COMMANDS) >= 8
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install bpgpu" not in text and 'pip install "bpgpu[' not in text  # not on the index


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_works_as_written(clone: pathlib.Path, command: str) -> None:
    words = shlex.split(command)
    program = next(w for w in words if "=" not in w)
    bin_dir = pathlib.Path(sys.executable).parent
    if program == "mpiexec" and not (bin_dir / "mpiexec").exists() and shutil.which("mpiexec") is None:
        pytest.skip("mpiexec is not installed (pip install mpi4py mpich)")
    if program == "bpgpu" and not (bin_dir / "bpgpu").exists():
        pytest.skip(f"no bpgpu console script beside {sys.executable}: bpgpu is not pip-installed here")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("BPGPU_BACKEND", None)
    result = subprocess.run(
        ["bash", "-c", command], cwd=clone, env=env, capture_output=True, text=True, timeout=300
    )
    if "--backend cupy" in command and "cupy" not in bpgpu.available_backends():
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr.count("\n") == 1 and "backend 'cupy' is not available" in result.stderr
        return
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr, result.stderr
