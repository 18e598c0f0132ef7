"""The examples run end to end (on tiny settings) and print what they promise."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from bpgpu.datasets import load_digits

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def test_digits_example_prints_each_epoch_and_the_accuracy():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "digits.py"), "--epochs", "3", "--backend", "numpy"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "backend numpy on cpu" in lines
    assert [line.split(":")[0] for line in lines if line.startswith("Epoch")] == [
        "Epoch 0",
        "Epoch 1",
        "Epoch 2",
    ]
    assert lines[-1].startswith("test accuracy after 3 epochs: ")


def test_embedded_digits_are_the_uci_set_split_without_overlap():
    digits = load_digits()
    assert [len(s.y) for s in digits] == [1199, 299, 299]
    for split in digits:
        assert split.X.dtype.name == "float32" and split.X.shape[1] == 64
        assert split.y.dtype.name == "int64"
        assert split.X.min() >= 0.0 and split.X.max() <= 1.0
        assert set(split.y.tolist()) == set(range(10))
    assert sum(len(s.y) for s in digits) == 1797  # each row of the file in exactly one split


def test_readme_usage_example_runs_and_prints_what_its_comments_say():
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\nimport bpgpu") + len("```python\n")
    code = readme[start : readme.index("```", start)]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # The README quotes 173 / 299 after epoch 0 and 290 / 299 (0.970) after epoch 29, as measured
    # here; another CPU's BLAS may round float32 differently and move a count by a few rows.
    first, last = (int(lines[i].split(":")[1].split("/")[0]) for i in (0, 29))
    assert abs(first - 173) <= 10 and abs(last - 290) <= 4
    assert abs(float(lines[30]) - 0.970) <= 0.015
