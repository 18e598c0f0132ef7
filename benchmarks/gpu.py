"""The GPU check's figures: each implementation's first and steady epochs, streamed as measured.

    python -m benchmarks.gpu [--quick] [--cpu] [--budget SECONDS] [--out DIR]     (benchmarks/gpu.sh)

One child process per implementation runs every workload in turn: its first epoch (compiling,
building kernels, capturing graphs and choosing cuBLAS kernels included) and then its steady
epochs, each from the same starting parameters (bpgpu's, seed 1). The child prints one JSON line a
workload the moment it is measured; this process prints it and rewrites the table under `--out`,
so a run cut short still leaves every figure up to the cut. Children run one after another, the
most telling first, each within what is left of `--budget`.

Rows on a GPU: bpgpu-jax (cold compilation cache, then a second process on the warm one, and once
without CUDA graphs for loops), bpgpu-cupy (cold kernel cache), bpgpu-torch (its step in a CUDA
graph, and once eager), PyTorch eager,
PyTorch with the step captured as a CUDA graph, and cuBLAS's products alone. Without a GPU
(`--cpu`, or when no CUDA device works) the CPU rows run instead, so the script itself is checked.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .run import _machine_line, seconds
from .workloads import WORKLOADS, data

ROOT = Path(__file__).parent.parent
SLOW_FIRST = 8.0  # seconds: a first epoch slower than this gets one steady epoch, not `--steady`


@dataclass(frozen=True)
class Row:
    """One child process: an implementation under a name, with its environment."""

    name: str
    impl: str
    env: dict[str, str] = field(default_factory=dict)
    cap: float = 60.0  # seconds this child may take at most


def gpu_rows(scratch: Path) -> list[Row]:
    jax_cache = {"BPGPU_JAX_CACHE": str(scratch / "jax-cache")}  # cold at first, warm for the next
    return [
        Row("cupy-gemm-floor", "cupy-gemm-floor", cap=40),
        Row("torch-cuda-graph", "torch-cuda-graph", cap=50),
        Row("bpgpu-jax", "bpgpu-jax", jax_cache, cap=70),
        Row("bpgpu-jax, 2nd process", "bpgpu-jax", jax_cache, cap=40),
        Row("bpgpu-torch", "bpgpu-torch", cap=50),
        Row("bpgpu-cupy", "bpgpu-cupy", {"CUPY_CACHE_DIR": str(scratch / "cupy-cache")}, cap=60),
        Row("torch-cuda", "torch-cuda", cap=50),
        Row(
            "bpgpu-jax, no loop graphs",
            "bpgpu-jax",
            {"BPGPU_XLA_COMMAND_BUFFERS": "0", "BPGPU_JAX_CACHE": str(scratch / "jax-plain")},
            cap=50,
        ),
        Row("bpgpu-torch, eager", "bpgpu-torch", {"BPGPU_TORCH_CUDA_GRAPHS": "0"}, cap=40),
    ]


def quick_rows(scratch: Path) -> list[Row]:
    jax_cache = {"BPGPU_JAX_CACHE": str(scratch / "jax-cache")}
    return [
        Row("cupy-gemm-floor", "cupy-gemm-floor", cap=15),
        Row("torch-cuda-graph", "torch-cuda-graph", cap=20),
        Row("bpgpu-jax", "bpgpu-jax", jax_cache, cap=30),
        Row("bpgpu-jax, 2nd process", "bpgpu-jax", jax_cache, cap=20),
    ]


def cpu_rows(scratch: Path) -> list[Row]:
    return [
        Row("gemm-floor", "gemm-floor", cap=30),
        Row("bpgpu-numpy", "bpgpu-numpy", cap=40),
        Row("bpgpu-jax", "bpgpu-jax", {"BPGPU_JAX_CACHE": str(scratch / "jax-cache")}, cap=40),
        Row("torch", "torch", cap=40),
    ]


# ---- the child: one implementation, every workload ---------------------------------------------


def epochs_of(impl: str, workload, X: np.ndarray, y: np.ndarray):
    """A function timing one epoch of `impl` (seconds); its first call is the first epoch."""
    from . import impls

    if impl.startswith("bpgpu-"):
        return impls.bpgpu_epochs(workload, X, y, impl.removeprefix("bpgpu-"))
    if impl == "torch-cuda-graph":
        return impls.torch_graph_epochs(workload, X, y)
    if impl in ("torch", "torch-cuda"):
        device = "cuda" if impl == "torch-cuda" else "cpu"
        return lambda: impls.torch_epoch(workload, X, y, device)
    if impl == "cupy-gemm-floor":
        import cupy

        return lambda: impls.gemm_floor_epoch(workload, X, y, cupy)
    if impl == "gemm-floor":
        return lambda: impls.gemm_floor_epoch(workload, X, y)
    raise ValueError(f"unknown implementation {impl!r}")


def child(impl: str, workloads: list[str], steady: int, data_dir: str) -> None:
    for name in workloads:
        X, y = np.load(Path(data_dir) / f"{name}-X.npy"), np.load(Path(data_dir) / f"{name}-y.npy")
        workload = dataclasses.replace(WORKLOADS[name], rows=len(y))
        epoch = epochs_of(impl, workload, X, y)
        first = epoch()
        times = [epoch() for _ in range(steady if first < SLOW_FIRST else 1)]
        print(json.dumps({"workload": name, "first": first, "steady": times}), flush=True)


def prepare(workloads: list[str], folder: Path, rows: int | None) -> None:
    """Draw every workload's data once, for all the children (W4's is 1.3 GB); `rows` cuts it."""
    for name in workloads:
        X, y = data(WORKLOADS[name], rows)
        np.save(folder / f"{name}-X.npy", X)
        np.save(folder / f"{name}-y.npy", y)


# ---- the parent: children in turn, each figure printed and written as it comes ------------------


class Table:
    """The results so far, rewritten to `path` after every figure."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path, self.header, self.rows = path, header, []
        self.figures: dict[tuple[str, str], float] = {}

    def add(self, row: Row, result: dict) -> str:
        steady = statistics.median(result["steady"])
        self.figures[(result["workload"], row.name)] = steady
        cells = [result["workload"], row.name, seconds(result["first"]), seconds(steady)]
        cells += [str(len(result["steady"])), seconds(result["first"] - steady)]
        self.rows.append(cells)
        self.write()
        return " | ".join(cells)

    def note(self, text: str) -> None:
        self.rows.append([text])
        self.write()

    def write(self) -> None:
        lines = [*self.header, "", "| workload | implementation | first epoch, s | steady epoch, s |"]
        lines[-1] += " steady epochs | first − steady, s | × graph PyTorch | × GEMM floor |"
        lines.append("|---|---|---|---|---|---|---|---|")
        for cells in self.rows:
            if len(cells) == 1:
                lines.append(f"| {cells[0]} | | | | | | | |")
                continue
            ratios = [self._ratio(cells, reference) for reference in ("torch-cuda-graph", "cupy-gemm-floor")]
            if ratios == ["", ""]:  # a CPU run: against PyTorch eager and NumPy's BLAS
                ratios = [self._ratio(cells, reference) for reference in ("torch", "gemm-floor")]
            lines.append("| " + " | ".join(cells + ratios) + " |")
        self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def _ratio(self, cells: list[str], reference: str) -> str:
        base = self.figures.get((cells[0], reference))
        return f"{float(cells[3]) / base:.2f}" if base else ""


def run_child(row: Row, args: argparse.Namespace, data_dir: Path, limit: float, table: Table) -> None:
    command = [sys.executable, "-m", "benchmarks.gpu", "--child", row.impl, "--data", str(data_dir)]
    command += ["--steady", str(args.steady), "--workloads", *args.workloads]
    env = {**os.environ, **row.env, "BPGPU_BACKEND": ""}
    began = time.monotonic()
    errors = data_dir.parent / f"{row.name.replace(' ', '_')}.stderr"  # a file: a full pipe would block
    with (
        errors.open("w+") as stderr,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, cwd=ROOT
        ) as process,
    ):
        for line in _lines_until(process, began + limit):
            shown = table.add(row, json.loads(line))
            print(f"{shown}   ({time.monotonic() - began:.0f} s into {row.name})", flush=True)
        if process.poll() is None:
            process.kill()
            table.note(f"{row.name}: cut at its {limit:.0f} s limit")
            print(f"!! {row.name}: cut at its {limit:.0f} s limit", flush=True)
        elif process.returncode != 0:
            stderr.seek(0)
            error = (stderr.read().strip().splitlines() or ["no message"])[-1]
            table.note(f"{row.name}: failed: {error[:160]}")
            print(f"!! {row.name} failed: {error}", flush=True)


def _lines_until(process: subprocess.Popen, deadline: float):
    """The child's stdout lines that come before `deadline` (a blocked read is given up at it)."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(timeout=left):
                return
            line = process.stdout.readline()
            if not line:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
                return
            if line.startswith("{"):
                yield line


def gpu_works() -> bool:
    probe = "import sys, bpgpu; sys.exit(0 if 'cupy' in bpgpu.available_backends() else 1)"
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, cwd=ROOT).returncode == 0


def header(gpu: bool, args: argparse.Namespace) -> list[str]:
    device = "no CUDA GPU (the CPU part of the check)"
    if gpu:
        query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"]
        try:
            device = subprocess.run(query, capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            device = "a CUDA GPU (nvidia-smi absent)"
    versions = []
    for name in (
        "numpy",
        "cupy-cuda13x",
        "cupy-cuda12x",
        "cupy",
        "jax",
        "jaxlib",
        "torch",
        "array-api-compat",
    ):
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    mode = "quick" if args.quick else "full"
    return [
        f"# bpgpu GPU check ({mode}): {device}",
        "",
        f"{datetime.datetime.now().isoformat(timespec='minutes')}; host: {_machine_line()}.",
        f"Versions: {', '.join(versions)}.",
        "",
        "float32, the book's sigmoid network and quadratic cost; every implementation starts from "
        "bpgpu's parameters (seed 1); each epoch moves the data from the host. First epoch: the first "
        "in its process (compiling, kernel building, graph capture included, caches cold unless the row "
        "says otherwise); steady epoch: the median of the later ones. Workloads: "
        + "; ".join(f"{w} {WORKLOADS[w].describe()}" for w in args.workloads),
    ] + (
        ["", f"**Every workload cut to {args.rows} rows: not comparable with full runs.**"]
        if args.rows
        else []
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="W1 and W2, four rows, under a minute")
    parser.add_argument("--cpu", action="store_true", help="the CPU rows even where a GPU works")
    parser.add_argument("--workloads", nargs="+", choices=list(WORKLOADS), help="(default: per mode)")
    parser.add_argument("--steady", type=int, help="steady epochs per workload (default: 2, quick 1)")
    parser.add_argument("--rows", type=int, help="cut every workload to this many rows (tests)")
    parser.add_argument("--budget", type=float, help="seconds for every child together (default: per mode)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "local"))
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.workloads, args.steady, args.data)
        return 0

    gpu = not args.cpu and gpu_works()
    if args.workloads is None:
        args.workloads = ["W1"] if not gpu else ["W1", "W2"] if args.quick else ["W1", "W2", "W3", "W4"]
    args.steady = args.steady or (1 if args.quick or not gpu else 2)
    budget = args.budget or (55 if args.quick else 200)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = Table(out / f"gpu-{datetime.date.today().isoformat()}.md", header(gpu, args))
    print("\n".join(table.header), flush=True)
    print(f"== figures as they come, within {budget:.0f} s; table: {table.path}", flush=True)
    deadline = time.monotonic() + budget
    with tempfile.TemporaryDirectory(prefix="bpgpu-gpu-check-") as scratch:
        data_dir = Path(scratch) / "data"
        data_dir.mkdir()
        prepare(args.workloads, data_dir, args.rows)
        rows = (quick_rows if args.quick else gpu_rows)(Path(scratch)) if gpu else cpu_rows(Path(scratch))
        for row in rows:
            left = deadline - time.monotonic()
            if left < 5:
                table.note(f"{row.name}: not run, the {budget:.0f} s budget was spent")
                print(f"!! {row.name}: not run, the budget was spent", flush=True)
                continue
            run_child(row, args, data_dir, min(row.cap, left), table)
    print(f"wrote {table.path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
