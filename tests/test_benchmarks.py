"""The benchmark harness runs end to end on a tiny workload (what it measures is not asserted)."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

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
    expected = ["bpgpu-numpy", "bpgpu-cupy", "bpgpu-torch", "torch", "book-loop", "gemm-floor"]
    if "bpgpu-cupy" not in names:  # CuPy installed but no GPU works: that run is skipped, no row
        assert importlib.util.find_spec("cupy") is not None
        expected.remove("bpgpu-cupy")
    assert names == expected
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        if cells[3] != "not installed":
            assert float(cells[3].split()[0]) > 0 and cells[6].endswith("MiB")
    assert "Memory, bpgpu-numpy W1, one SGD call of 3 epochs: peak RSS" in text
