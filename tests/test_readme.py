"""Every shell command the README and docs/ show (their ```sh blocks) works as written, from the root
of a clone with the virtual environment active, and leaves nothing that `git status` would show.

The commands run in order in one scratch folder that holds `examples/` (a link to the real one),
`.venv` (a link to the environment running the tests) and a small `mnist.pkl.gz` in the book's format
standing in for the download. Each runs in a shell whose PATH lacks the environment, after the
README's own activation line. Installing (`pip`, `make`) and downloading (`curl`) are not repeated
here: CI has done them.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

import bpgpu
from bpgpu.datasets import fashion_mnist_directory

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOT_RUN = ("pip ", "make ", "curl ", ". ")  # installing, downloading, activating


DOCS = sorted((ROOT / "docs").glob("*.md"))
README_LIMIT = 15_000  # bytes: one page to read; the depth is in docs/


def shell_lines(path: pathlib.Path) -> list[str]:
    """The command lines of `path`'s ```sh blocks, in order, without their comments."""
    text = path.read_text(encoding="utf-8")
    lines = []
    for block in text.split("```sh\n")[1:]:
        for line in block.split("\n```", 1)[0].splitlines():
            command = line.split("  #", 1)[0].strip()
            if command:
                lines.append(command)
    return lines


def readme_commands() -> tuple[list[str], list[str]]:
    """(the activation lines, the commands to run) of the README's ```sh blocks and then docs/'s."""
    lines = [line for path in [ROOT / "README.md", *DOCS] for line in shell_lines(path)]
    activation = [line for line in lines if line.startswith(". ")]
    commands = [line for line in lines if not line.startswith(NOT_RUN)]
    return activation, commands


ACTIVATION, COMMANDS = readme_commands()


@pytest.fixture
def clone(tmp_path: pathlib.Path) -> pathlib.Path:
    """A scratch folder standing in for a clone after `make train`: examples/, .venv and the data."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtual environment: there is no .venv to activate")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    rng = np.random.default_rng(0)
    splits = tuple(
        ((rng.integers(0, 256, (n, 784)) / 256).astype(np.float32), rng.integers(0, 10, n).astype(np.int64))
        for n in (60, 20, 20)
    )
    with gzip.open(tmp_path / "mnist.pkl.gz", "wb") as f:
        pickle.dump(splits, f, protocol=2)
    return tmp_path


def test_the_readme_says_how_to_enter_the_environment_and_names_no_package_that_is_not_on_the_index():
    assert ACTIVATION == [". .venv/bin/activate"], ACTIVATION
    assert len(COMMANDS) >= 8
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install bpgpu" not in text and 'pip install "bpgpu[' not in text


def test_every_readme_command_works_as_written_after_activating(clone: pathlib.Path) -> None:
    """In order, in one folder (`evaluate model.npz` reads what `train --save model.npz` wrote), in
    a shell whose PATH does not have the environment until the README's activation line adds it."""
    bin_dir = str(pathlib.Path(sys.prefix) / "bin")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != bin_dir)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "BPGPU_BACKEND")}
    env["PATH"] = path or "/usr/bin:/bin"
    for command in COMMANDS:
        if command.startswith("mpiexec") and not (pathlib.Path(bin_dir) / "mpiexec").exists():
            continue  # mpiexec comes with the mpi extra (pip install -e ".[mpi]"), which this run lacks
        if "--data fashion-mnist" in command and fashion_mnist_directory() is None:
            continue  # Debian's dataset-fashion-mnist is not installed (tests/test_fashion_mnist.py says so)
        script = " && ".join([*ACTIVATION, command])
        result = subprocess.run(
            ["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=300
        )
        if "--backend cupy" in command and "cupy" not in bpgpu.available_backends():
            assert result.returncode == 1, f"{command}\n{result.stdout}\n{result.stderr}"
            assert result.stderr.count("\n") == 1 and "backend 'cupy' is not available" in result.stderr
            continue
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stderr and "Warning" not in result.stderr, result.stderr
    made = sorted(p.name for p in clone.iterdir() if p.name not in ("examples", ".venv"))
    shown = subprocess.run(  # what git would show of those files in a real clone
        ["git", "check-ignore", "--no-index", "--verbose", "--non-matching", *made],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    untracked = [line.split("\t")[-1] for line in shown.stdout.splitlines() if line.startswith("::")]
    assert made and untracked == [], f"not in .gitignore: {untracked}"


def test_the_readme_is_one_page_and_every_link_in_it_and_in_docs_leads_somewhere():
    readme = ROOT / "README.md"
    assert len(readme.read_bytes()) <= README_LIMIT
    linked = set()
    for path in [readme, *DOCS]:
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"
            linked.add((path.parent / target).resolve())
    assert {doc.resolve() for doc in DOCS} <= linked, "every page of docs/ is linked from somewhere"
