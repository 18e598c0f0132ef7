"""The benchmark harness runs end to end on a tiny workload (what it measures is not asserted)."""

from __future__ import annotations

import importlib.util
import pathlib
import shutil
import subprocess
import sys

import pytest

from benchmarks import run

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
