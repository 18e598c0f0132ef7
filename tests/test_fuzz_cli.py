"""Fuzzing the `bpgpu` command: random command lines, built from its real options and nasty values.

Every run exits 0, 1 (a mistake) or 2 (a bad command line); a non-zero exit prints exactly one line on
stderr and no traceback, a usage error prints nothing on stdout, and no warning escapes (pytest turns
warnings into errors). Training is kept short: every command line starts with `--epochs 1`, and the
fuzzed values for counts are small or wrong. `--debug` is never drawn: tracebacks are what is
checked.
"""

from __future__ import annotations

import os
import re
import stat

import pytest
from fuzzing import MiB, bounded, fuzz_settings
from hypothesis import example, given
from hypothesis import strategies as st

from bpgpu.cli import main

EXAMPLES = 120
WORDS = st.sampled_from(
    [
        "", " ", "-", "--", "0", "-1", "1", "2", "1e308", "1e400", "nan", "inf", "-inf", "0.5", "1.0",
        "10**400", "abc", "auto", "numpy", "cupy", "NUMPY", "nope", "softmax", "sigmoid", "digits", "/", ".",
        "fifo", "m.npz", "c.png", "c.txt", "no/such/dir/m.npz", "x" * 300, "é", "--quiet", "\x00",
    ]
)  # fmt: skip
OPTIONS = {
    "train": [
        "--data", "--sizes", "--epochs", "--batch-size", "--eta", "--activation", "--output-activation",
        "--cost", "--backend", "--init", "--lmbda", "--regularization", "--momentum", "--early-stopping",
        "--eta-schedule", "--patience", "--dtype", "--seed", "--save", "--plot", "--quiet", "--bogus",
    ],
    "evaluate": ["--data", "--split", "--backend", "m.npz", "fifo", "."],
    "info": ["--bogus"],
    "check": ["--backend"],
}  # fmt: skip
# Values for the options whose valid values could make a run long or large.
SMALL = {
    "--sizes": ["64", "3", "10", "0", "-5", "x"],
    "--epochs": ["1", "2", "0", "x"],
    "--patience": ["1", "0"],
}


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from([*OPTIONS, "frobnicate", "--version"]))
    argv = [command] + (["--epochs", "1"] if command == "train" else [])
    for _ in range(draw(st.integers(0, 4))):
        option = draw(st.sampled_from(OPTIONS.get(command, ["--x"])))
        values = st.sampled_from(SMALL[option]) if option in SMALL else WORDS
        argv += [option, *draw(st.lists(values, min_size=0, max_size=2 if option == "--sizes" else 1))]
    return argv


@pytest.fixture
def in_scratch(tmp_path):
    """The working folder, holding a FIFO named `fifo`: never a system file such as /dev/zero, which a
    regression that wrote over special files would destroy."""
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "fifo")
    before = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(before)


@given(argv=command_lines())
@example(argv=["train", "--epochs", "1", "--save", ""])  # the defects a walkthrough found, always run
@example(argv=["train", "--epochs", "1", "--plot", ""])
@example(argv=["train", "--epochs", "1", "--activation", "softmax"])
@example(argv=["train", "--epochs", "1", "--eta", "1e308", "--save", "m.npz"])
@fuzz_settings(EXAMPLES)
def test_random_command_lines_end_in_an_exit_code_and_at_most_one_line(in_scratch, capsys, argv):
    capsys.readouterr()
    with bounded(seconds=60, memory=256 * MiB):
        try:
            code = main(argv)
        except SystemExit as exit:  # argparse: usage errors, --help, --version
            code = exit.code
    out, err = capsys.readouterr()
    assert code in (0, 1, 2), (argv, code, err)
    if code:
        assert err.count("\n") == 1 and "Traceback" not in err, (argv, err)
        assert not re.search(r"\b[a-z]+_[a-z_]+=", err), f"names a Python argument, not an option: {err}"
    if code == 2:
        assert out == "", (argv, out)
    if hasattr(os, "mkfifo"):
        assert stat.S_ISFIFO(os.lstat(in_scratch / "fifo").st_mode), (argv, "replaced the FIFO")
    if code == 0 and argv[0] == "train":  # what it was asked to write, it wrote
        for option in ("--save", "--plot"):
            if option in argv[:-1]:
                target = argv[len(argv) - 1 - argv[::-1].index(option) + 1]  # the last one counts
                assert (in_scratch / target).is_file(), (argv, f"{option} {target!r} wrote nothing")
