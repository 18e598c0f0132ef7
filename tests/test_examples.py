"""The examples run end to end (on tiny settings) and print what they promise."""

from __future__ import annotations

import gzip
import importlib.util
import os
import pathlib
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest

import bpgpu
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


def test_readme_usage_example_runs_and_prints_what_its_comments_say(tmp_path):
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("```python\nimport bpgpu") + len("```python\n")
    code = readme[start : readme.index("```", start)]
    result = subprocess.run(  # in a scratch folder: the example saves a model
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    accuracy, score = result.stdout.splitlines()[0].split()
    predicted = result.stdout.splitlines()[1].strip("[]").split()
    # The README quotes 0.970 after epoch 29 (290 / 299), as measured here; another CPU's BLAS may
    # round float32 differently and move the count by a few rows.
    assert abs(float(accuracy) - 0.970) <= 0.015 and f"{float(score):.3f}" == accuracy
    assert len(predicted) == 5 and all(0 <= int(label) <= 9 for label in predicted)
    assert "epoch 29 (30/30)" in result.stderr  # progress=True: the bar, on stderr
    assert (tmp_path / "model.safetensors").exists()


def run_example(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=300
    )


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), EXAMPLES / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_why_backprop_is_fast_matches_finite_differences_on_every_parameter(capsys):
    result = load_example("why_backprop_is_fast.py").main(["--sizes", "20", "8", "4", "--weights", "all"])
    assert (result["n_weights"], result["n_biases"]) == (20 * 8 + 8 * 4, 8 + 4)
    assert result["compared"] == 204 and not result["extrapolated"]
    assert result["max_rel_diff"] < 1e-6
    assert result["ratio"] > 1
    out = capsys.readouterr().out
    assert "finite differences, 204 extra forward passes: " in out and "(measured)" in out


def test_why_backprop_is_fast_extrapolates_a_sample_of_the_books_network():
    result = run_example("why_backprop_is_fast.py", "--weights", "40")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "23820 weights + 40 biases = 23860 parameters; mini-batch of 10" in lines
    diff = next(line for line in lines if line.startswith("max |finite difference − backprop|"))
    assert float(diff.split("=")[1]) < 1e-6
    passes = next(line for line in lines if line.startswith("finite differences, 23860 extra"))
    assert "(extrapolated from " in passes
    ratio = re.fullmatch(r"backprop is ([\d,]+)× faster", lines[-1])
    assert ratio is not None, lines[-1]
    assert int(ratio[1].replace(",", "")) > 1


def epoch_rows(stdout: str, epochs: int) -> list[list[str]]:
    """The "c / 299" counts of each epoch's row of cpu_vs_gpu's table, one list per row."""
    rows = [line for line in stdout.splitlines() if re.match(r"\d+ ", line)]
    assert [row.split()[0] for row in rows] == [str(e) for e in range(epochs)], stdout
    return [re.findall(r"\d+ / \d+", row) for row in rows]


def test_cpu_vs_gpu_prints_two_matching_curves_with_another_backend():
    result = run_example("cpu_vs_gpu.py", "--other", "array_api_strict", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    counts = epoch_rows(result.stdout, 2)
    assert all(len(row) == 2 and row[0] == row[1] for row in counts), counts
    assert ["epoch", "numpy", "array_api_strict"] in [line.split() for line in result.stdout.splitlines()]
    last = result.stdout.splitlines()[-1]
    assert last.startswith("largest difference of the final weights and biases, numpy vs array_api_strict: ")
    assert float(last.rsplit(" ", 1)[1]) < 1e-5


def test_cpu_vs_gpu_compares_with_cupy_or_says_why_it_cannot():
    try:
        bpgpu.get_backend("cupy")
        reason = None
    except RuntimeError as exc:
        reason = str(exc)
    result = run_example("cpu_vs_gpu.py", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    counts = epoch_rows(result.stdout, 2)
    if reason is None:  # a working GPU: both curves, and the comparison
        assert all(len(row) == 2 for row in counts), counts
        assert lines[-1].startswith("largest difference of the final weights and biases, numpy vs cupy: ")
    else:  # no GPU: one line saying why, then the NumPy curve alone
        assert lines[0] == f"cupy is not available, so training on NumPy only: {reason}"
        assert all(len(row) == 1 for row in counts), counts
        assert not any(line.startswith("largest difference") for line in lines)


def test_mnist_chapter3_example_trains_on_a_small_file_in_the_books_format(tmp_path):
    rng = np.random.default_rng(0)

    def split(n):
        return rng.uniform(0, 1, size=(n, 784)).astype(np.float32), rng.integers(0, 10, size=n)

    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as file:
        pickle.dump((split(60), split(20), split(20)), file, protocol=2)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "mnist_chapter3.py"), str(path), "--epochs", "2", "--hidden", "8"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("cost='cross_entropy', init='scaled'" in line for line in lines[:2])  # after the log note
    epochs = [line for line in lines if line.startswith("Epoch")]
    assert len(epochs) == 2 and "evaluation accuracy" in epochs[0] and "training cost" in epochs[0]
    assert lines[-1].startswith("test accuracy: ")


def test_the_chapter3_example_of_the_docs_runs_and_prints_what_its_comment_says():
    readme = (EXAMPLES.parent / "docs" / "teaching.md").read_text(encoding="utf-8")
    start = readme.index("```python", readme.index("## Chapter 3")) + len("```python\n")
    code = readme[start : readme.index("```", start)]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    correct, total_cost = result.stdout.split()
    # Quoted as measured here (293, 0.392); another CPU's BLAS may move a float32 count by a few rows.
    assert abs(int(correct) - 293) <= 4 and abs(float(total_cost) - 0.392) <= 0.03


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_shows_each_options_default_in_its_help(name):
    from test_cli import options_without_a_default

    result = run_example(name, "--help")
    assert result.returncode == 0, result.stderr
    assert options_without_a_default(result.stdout) == []
    described = " ".join(result.stdout.split("\n\n")[1].split())  # after the usage: the description
    first_paragraph = (EXAMPLES / name).read_text().split('"""')[1].split("\n\n")[0]
    assert described == " ".join(first_paragraph.split()) and described.endswith("."), described


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--backend", "nope"], {}, "argument --backend: expected one of auto, numpy"),
        ([], {"BPGPU_BACKEND": "bogus"}, "unknown backend 'bogus' (from environment variable BPGPU_BACKEND)"),
        (["--epochs", "0"], {}, "argument --epochs: expected a positive int, got '0'"),
        (["--eta", "1e308"], {}, "training diverged in epoch 0"),  # after the log note: stdout
    ],
)
def test_an_example_ends_a_mistake_with_one_line(args, env, expected):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "digits.py"), "--epochs", "1", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert result.returncode in (1, 2) and expected in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr


def test_an_example_asked_for_a_missing_backend_says_why_in_one_line():
    missing = [name for name in bpgpu.BACKEND_NAMES if name not in bpgpu.available_backends()]
    if not missing:
        pytest.skip("every backend works on this machine: none to ask for in vain")
    result = run_example("digits.py", "--epochs", "1", "--backend", missing[0])
    assert result.returncode == 1
    assert result.stderr.startswith(f"digits.py: error: backend '{missing[0]}' is not available")
    assert result.stderr.count("\n") == 1, result.stderr
    debug = run_example("digits.py", "--epochs", "1", "--backend", missing[0], "--debug")
    assert "Traceback" in debug.stderr


def test_the_demon_example_shows_the_change_in_cost_is_delta_dz_in_every_layer():
    result = run_example("the_demon.py", "--backend", "numpy", "--neurons", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.endswith(":") and "layer" in line] == [
        "hidden layer 1 (layer 2 in the book's numbering):",
        "hidden layer 2 (layer 3 in the book's numbering):",
        "the output layer (layer 4 in the book's numbering):",
    ]
    gaps = [float(line.rsplit("off by ", 1)[1].rstrip("%)")) for line in lines if "off by" in line]
    assert len(gaps) == 6 and max(gaps) < 1.0  # percent: Δz = 1e-3 leaves only the Δz² term
    assert lines[-1].startswith("ΔC ≈ δ Δz holds to within ")


def test_the_vanishing_gradient_example_prints_every_depth_and_setting():
    result = run_example("vanishing_gradient.py", "--epochs", "1", "--rows", "60", "--data", "digits")
    assert result.returncode == 0, result.stderr
    starts = [line for line in result.stdout.splitlines() if "at the start" in line]
    assert len(starts) == 9
    sigmoid_4 = [float(v) for v in starts[5].split("at the start")[1].split()]  # chapter 3, 4 hidden
    assert len(sigmoid_4) == 5 and sigmoid_4[0] < sigmoid_4[1] < sigmoid_4[2] < sigmoid_4[3]
