"""The benchmark harness runs end to end on a tiny workload (what it measures is not asserted)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

from benchmarks import gpu, run

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_harness_writes_a_results_table_with_every_implementation(tmp_path):
    command = [sys.executable, "-m", "benchmarks.run", "--workloads", "W1", "--rows", "200"]
    command += ["--repeats", "1", "--threads", "1", "--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    (report,) = tmp_path.glob("*.md")
    text = report.read_text(encoding="utf-8")
    assert "Quick run: every workload cut to 200 rows" in text
    rows = [line for line in text.splitlines() if line.startswith("| W1 |")]
    names = [row.split("|")[2].strip().split(" ")[0] for row in rows]
    expected = list(run.CPU_IMPLS)
    if "bpgpu-cupy" not in names:  # CuPy installed but no GPU works: that run is skipped, no row
        assert importlib.util.find_spec("cupy") is not None
        expected.remove("bpgpu-cupy")
    assert names == expected
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        if cells[3] != "not installed":
            assert float(cells[3].split()[0]) > 0 and cells[7].endswith("MiB")
            assert bool(cells[6]) == (cells[1] in ("bpgpu-jax", "xla-gemm-floor"))  # compile seconds
    assert "Memory, bpgpu-numpy W1, one SGD call of 3 epochs: peak RSS" in text


@pytest.mark.parametrize(
    ("value", "shown"), [(11.924, "11.92"), (0.5881, "0.5881"), (0.00041234, "0.0004123"), (3e-7, "3e-07")]
)
def test_times_keep_four_significant_digits_however_fast_the_machine(value, shown):
    assert run.seconds(value) == shown and float(shown) > 0


def test_a_plain_run_writes_where_git_ignores_it():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (or git is not installed): nothing to keep clean")
    probe = run.LOCAL_RESULTS.relative_to(ROOT) / "machine-2026-01-01.md"
    result = subprocess.run(["git", "check-ignore", "-q", str(probe)], cwd=ROOT, timeout=60)
    assert result.returncode == 0, f"{probe} would show in git status"


def test_a_first_round_drops_thread_counts_that_are_clearly_slower():
    def timed(value):
        return [{"seconds": [value]}]

    results = {
        ("W1", "torch", 1): timed(3.0),
        ("W1", "torch", 2): timed(70.0),
        ("W1", "numpy", 2): timed(1.0),
    }
    results[("W1", "numpy", 1)] = timed(1.2)
    assert run.worse_thread_counts(results, "W1", "torch") == [2]
    assert run.worse_thread_counts(results, "W1", "numpy") == []  # within 1.5x: both kept
    assert run.worse_thread_counts(results, "W2", "torch") == []


def test_the_gpu_check_streams_first_and_steady_epochs_and_runs_its_cpu_part_without_a_gpu(tmp_path):
    """Where no GPU works (or with --cpu) the same harness runs the CPU rows: one line per figure as
    it comes, and the table under --out with first and steady epochs for every row."""
    command = [sys.executable, "-m", "benchmarks.gpu", "--cpu", "--rows", "300", "--budget", "240"]
    command += ["--out", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    streamed = [line for line in result.stdout.splitlines() if line.startswith("W1 | ")]
    (table,) = tmp_path.glob("gpu-*.md")
    text = table.read_text(encoding="utf-8")
    assert "Every workload cut to 300 rows" in text and "no CUDA GPU" in text
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in text.splitlines()]
    rows = [cells for cells in rows if cells and cells[0] == "W1"]
    names = [cells[1] for cells in rows]
    expected = ["gemm-floor", "bpgpu-numpy"]
    expected += ["bpgpu-jax"] * (importlib.util.find_spec("jax") is not None)
    expected += ["torch"] * (importlib.util.find_spec("torch") is not None)
    assert names == expected and len(streamed) == len(expected)
    for cells in rows:
        first, steady = float(cells[2]), float(cells[3])
        assert first > 0 and steady > 0 and cells[4] == "1"
        ratio = steady / dict((r[1], float(r[3])) for r in rows)["gemm-floor"]
        assert abs(float(cells[7]) - ratio) <= 0.005 + 2e-3 * ratio  # from the printed, rounded times


def test_a_figure_that_has_come_is_kept_when_its_child_is_cut(tmp_path):
    """A child that prints one figure and then hangs: the figure is read at once, and the child is
    given up at the deadline (not waited for)."""
    script = "import json, time; print(json.dumps({'workload': 'W1'}), flush=True); time.sleep(60)"
    began = time.monotonic()
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as child:
        lines = list(gpu._lines_until(child, time.monotonic() + 5))
        child.kill()
    assert [json.loads(line) for line in lines] == [{"workload": "W1"}]
    assert time.monotonic() - began < 50
