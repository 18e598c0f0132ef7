"""Time every implementation on every workload in fresh processes and write a results table.

    python -m benchmarks.run [--quick] [--workloads W1 W2 W3] [--repeats 3] [--threads 1 2] [--out DIR]

Each measurement is one child process (`--child`) that builds its data, sets its thread count
before NumPy or PyTorch load, times one epoch and prints JSON with the seconds and its peak RSS.
Implementations alternate within each round, so a slow spell of the machine hits all of them. The
table reports medians (min–max) over the repeats, each implementation at its best thread count, and
the ratios bpgpu / PyTorch and bpgpu / GEMM floor from the same run. Every figure is printed as it
comes and the table so far rewritten, so a run cut short leaves what it measured; a thread count
clearly slower than another after the first round is not timed again. `--quick`: W1 and W2, one
round, one thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path

from .workloads import CPU_WORKLOADS, WORKLOADS, data

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
IMPLS = (
    "bpgpu-numpy",
    "bpgpu-jax",
    "bpgpu-cupy",
    "bpgpu-torch",
    "torch",
    "book-loop",
    "gemm-floor",
    "xla-gemm-floor",
    "torch-cuda",
    "cupy-gemm-floor",
)
CPU_IMPLS = IMPLS[:-2]  # the default: what runs without a GPU (bpgpu-cupy says why it cannot)
# A CUDA GPU's run (benchmarks/gpu.sh): bpgpu's GPU backends against PyTorch CUDA and cuBLAS.
GPU_IMPLS = ("bpgpu-cupy", "bpgpu-jax", "torch-cuda", "cupy-gemm-floor")
# XLA keeps its own thread pool, which OMP_NUM_THREADS does not reach: one thread is this flag.
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false"
# Thread counts tried per workload: W1's tiny products run fastest on one thread (two threads only add
# synchronisation); W3's large ones on every core, for every implementation alike.
# Where a plain run writes its table: ignored by git, so `make bench` leaves the checkout clean. The
# committed tables in benchmarks/results/ are written with --out benchmarks/results.
LOCAL_RESULTS = Path(__file__).parent / "results" / "local"
DEFAULT_THREADS = {"W1": (1, 2), "W2": (1, 2), "W3": (os.cpu_count() or 1,), "W4": (os.cpu_count() or 1,)}
QUICK_WORKLOADS = ("W1", "W2")


def child(impl: str, workload_name: str, threads: int, rows: int | None, epochs: int) -> dict:
    """Run inside the fresh process: time `epochs` epochs of `impl` and measure memory."""
    from . import impls

    workload = WORKLOADS[workload_name]
    if rows is not None:
        workload = dataclasses.replace(workload, rows=rows)
    X, y = data(workload)
    if impl.startswith("torch") or impl == "bpgpu-torch":
        import torch

        torch.set_num_threads(threads)
    seconds, rss, compiled = [], [], []
    if epochs > 1:  # the memory run: one training run, RSS read after each of its epochs
        rss = impls.bpgpu_epochs_memory(workload, X, y, epochs, _current_rss)
        epochs = 0
    for _ in range(epochs):
        compile_seconds = None
        if impl.startswith("bpgpu-"):
            epoch, compile_seconds = impls.bpgpu_epoch(workload, X, y, impl.removeprefix("bpgpu-"))
        elif impl == "torch":
            epoch = impls.torch_epoch(workload, X, y)
        elif impl == "torch-cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("torch-cuda is not available on this machine: torch sees no CUDA device")
            impls.torch_epoch(workload, X, y, "cuda")  # CUDA context and kernel choice, untimed
            epoch = impls.torch_epoch(workload, X, y, "cuda")
        elif impl == "cupy-gemm-floor":
            epoch = impls.cupy_gemm_floor_epoch(workload, X, y)
        elif impl == "book-loop":
            epoch = impls.book_loop_epoch(workload, X, y)
        elif impl == "xla-gemm-floor":
            epoch, compile_seconds = impls.xla_gemm_floor_epoch(workload, X, y)
        else:
            epoch = impls.gemm_floor_epoch(workload, X, y)
        seconds.append(epoch)
        compiled.append(compile_seconds)
        rss.append(_current_rss())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    return {
        "seconds": seconds,
        "compile": compiled,
        "rss_after_epoch": rss,
        "peak_rss": peak,
        "data_bytes": X.nbytes + y.nbytes,
    }


def _current_rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(impl: str, workload: str, threads: int, rows: int | None = None, epochs: int = 1) -> dict | None:
    """One fresh process; None when the implementation cannot run here (e.g. PyTorch missing)."""
    env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}, "BPGPU_BACKEND": ""}
    if threads == 1:
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {XLA_ONE_THREAD}".strip()
    command = [sys.executable, "-m", "benchmarks.run", "--child", impl, workload, str(threads), str(epochs)]
    if rows is not None:
        command.append(str(rows))
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=Path(__file__).parent.parent
    )
    if result.returncode != 0:
        unavailable = ("ModuleNotFoundError: No module named", "is not available on this machine")
        if any(reason in result.stderr for reason in unavailable):
            return None
        raise RuntimeError(f"{impl} {workload} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def available(impl: str) -> bool:
    """Whether the library `impl` needs is installed (CuPy without a working GPU fails later)."""
    needs = {
        "bpgpu-torch": "torch",
        "torch": "torch",
        "bpgpu-cupy": "cupy",
        "bpgpu-jax": "jax",
        "xla-gemm-floor": "jax",
        "torch-cuda": "torch",
        "cupy-gemm-floor": "cupy",
    }.get(impl)
    return needs is None or importlib.util.find_spec(needs) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--workloads", nargs="+", default=list(CPU_WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument(
        "--impls", nargs="+", default=list(CPU_IMPLS), choices=IMPLS, help="(default: the CPU ones)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="W1 and W2, one repeat, one thread (under a minute on 2 cores)"
    )
    parser.add_argument("--threads", type=int, nargs="+", help="thread counts to try (default: per workload)")
    parser.add_argument("--rows", type=int, help="override every workload's rows (for quick checks)")
    parser.add_argument(
        "--out", default=str(LOCAL_RESULTS), help=f"(default {LOCAL_RESULTS}, ignored by git)"
    )
    args = parser.parse_args(argv)
    if args.child:
        impl, workload, threads, epochs, *rows = args.child
        result = child(impl, workload, int(threads), int(rows[0]) if rows else None, int(epochs))
        print(json.dumps(result))
        return 0

    if args.quick:
        args.workloads, args.repeats = [w for w in args.workloads if w in QUICK_WORKLOADS], 1
        args.threads = args.threads or [1]
    results: dict[tuple[str, str, int], list[dict]] = {}
    missing = [impl for impl in args.impls if not available(impl)]
    impls = [impl for impl in args.impls if impl not in missing]
    path = report_path(args.out)
    print(f"figures as they come; the table so far is rewritten to {path} after each", flush=True)
    for workload in args.workloads:
        counts = args.threads or DEFAULT_THREADS[workload]
        tried = {impl: list(counts) for impl in impls}  # thread counts still worth timing
        for repeat in range(args.repeats):
            for threads in counts:
                order = impls if repeat % 2 == 0 else impls[::-1]  # alternate, so drift hits all
                for impl in order:
                    if threads not in tried[impl] or (impl == "book-loop" and workload != "W1"):
                        continue
                    outcome = measure(impl, workload, threads, args.rows)
                    if outcome is None:
                        continue
                    results.setdefault((workload, impl, threads), []).append(outcome)
                    print(
                        f"{workload} {impl:<12} {threads} thread(s): {seconds(outcome['seconds'][0])} s",
                        flush=True,
                    )
                    path.write_text(render(results, args, missing, None), encoding="utf-8")
            if repeat == 0:
                for impl in impls:
                    for threads in worse_thread_counts(results, workload, impl):
                        tried[impl].remove(threads)
                        print(f"{workload} {impl}: {threads} thread(s) clearly slower; not timed again")
    memory = None
    if "W1" in args.workloads and "bpgpu-numpy" in impls:
        memory = measure("bpgpu-numpy", "W1", 1, args.rows, epochs=3)
    write_report(render(results, args, missing, memory), args.out)
    return 0


def worse_thread_counts(results: dict, workload: str, impl: str, margin: float = 1.5) -> list[int]:
    """The thread counts whose first time for `impl` on `workload` is over `margin` × the best one's."""
    first = {t: runs[0]["seconds"][0] for (w, i, t), runs in results.items() if (w, i) == (workload, impl)}
    if not first:
        return []
    fastest = min(first.values())
    return [threads for threads, value in first.items() if value > margin * fastest]


def report_path(out: str, prefix: str = "") -> Path:
    """OUT/<prefix><machine>-<date>.md, its folder made."""
    path = Path(out) / f"{prefix}{_machine_tag()}-{datetime.date.today().isoformat()}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_report(report: str, out: str, prefix: str = "") -> Path:
    """Print `report` and write it to OUT/<prefix><machine>-<date>.md."""
    path = report_path(out, prefix)
    path.write_text(report, encoding="utf-8")
    print(report)
    print(f"wrote {path}")
    return path


def seconds(value: float) -> str:
    """A time in four significant digits: 11.92, 0.588, 0.0004123; never rounded to 0 on a fast machine."""
    return f"{value:.4g}"


def summarise(runs: list[dict]) -> tuple[float, float, float]:
    times = [r["seconds"][0] for r in runs]
    return statistics.median(times), min(times), max(times)


def best(
    results: dict, workload: str, impl: str
) -> tuple[int, tuple[float, float, float], list[dict]] | None:
    """The thread count with the lowest median for `impl` on `workload`."""
    options = [
        (summarise(runs), threads, runs)
        for (w, i, threads), runs in results.items()
        if (w, i) == (workload, impl)
    ]
    if not options:
        return None
    stats, threads, runs = min(options, key=lambda option: option[0][0])
    return threads, stats, runs


def render(results: dict, args: argparse.Namespace, missing: list[str], memory: dict | None) -> str:
    lines = [
        f"# bpgpu benchmark: {_machine_line()}",
        "",
        f"{datetime.datetime.now().isoformat(timespec='minutes')}; one epoch per measurement, "
        "each in a fresh process; "
        f"median (min–max) of {args.repeats} repeats; each implementation at its best thread count "
        f"(tried: {args.threads or DEFAULT_THREADS}).",
        "",
        f"Versions: {_versions()}.",
        "",
    ]
    if args.rows:
        lines += [
            f"**Quick run: every workload cut to {args.rows} rows; not comparable with full runs.**",
            "",
        ]
    header = (
        "| workload | implementation | threads | seconds, median (min–max) | × PyTorch | × GEMM floor "
        "| compile, s | peak RSS |"
    )
    lines += [header, "|---|---|---|---|---|---|---|---|"]
    for workload in args.workloads:
        torch_best = best(results, workload, _reference(args.impls, "torch-cuda", "torch"))
        floor_best = best(results, workload, _reference(args.impls, "cupy-gemm-floor", "gemm-floor"))
        for impl in IMPLS:
            if impl in missing:
                lines.append(f"| {workload} | {impl} | | not installed | | | | |")
                continue
            found = best(results, workload, impl)
            if found is None:
                continue
            threads, (median, low, high), runs = found
            ratio_torch = f"{median / torch_best[1][0]:.2f}" if torch_best else ""
            ratio_floor = f"{median / floor_best[1][0]:.2f}" if floor_best else ""
            peak = max(r["peak_rss"] for r in runs) / 2**20
            extrapolated = " (extrapolated from 1000 batches)" if impl == "book-loop" else ""
            compiles = [r["compile"][0] for r in runs if r["compile"][0] is not None]
            compile_cell = seconds(statistics.median(compiles)) if compiles else ""
            lines.append(
                f"| {workload} | {impl}{extrapolated} | {threads} | {seconds(median)} "
                f"({seconds(low)}–{seconds(high)}) | "
                f"{ratio_torch} | {ratio_floor} | {compile_cell} | {peak:.0f} MiB |"
            )
    described = "; ".join(f"{w} {WORKLOADS[w].describe()}" for w in args.workloads)
    lines += ["", f"Workloads: {described}", ""]
    floor_library = "cuBLAS (CuPy)" if "cupy-gemm-floor" in args.impls else "NumPy's BLAS"
    lines += [
        f"Ratios are against {_reference(args.impls, 'torch-cuda', 'torch')} and "
        f"{_reference(args.impls, 'cupy-gemm-floor', 'gemm-floor')}. "
        "Every implementation starts from bpgpu's parameters for seed 1 and the workload's init. "
        "Compiled rows (bpgpu-jax, xla-gemm-floor) are timed on their second run; the compile column "
        f"is the first run's extra time. The GEMM floor is {floor_library}.",
        "",
    ]
    if memory is not None:
        data_mib = memory["data_bytes"] / 2**20
        rss = ", ".join(f"{r / 2**20:.0f}" for r in memory["rss_after_epoch"])
        lines += [
            "Memory, bpgpu-numpy W1, one SGD call of 3 epochs: "
            f"peak RSS {memory['peak_rss'] / 2**20:.0f} MiB for {data_mib:.0f} MiB of training data "
            f"(target ≤ 2 × data + 150 = {2 * data_mib + 150:.0f} MiB); "
            f"RSS after each epoch {rss} MiB.",
            "",
        ]
    return "\n".join(lines)


def _reference(impls: list[str], gpu: str, cpu: str) -> str:
    """What the ratios divide by: the GPU reference when this run has it, else the CPU one."""
    return gpu if gpu in impls else cpu


def _machine_tag() -> str:
    return f"{platform.node() or 'machine'}-{os.cpu_count()}cpu".replace(" ", "_")


def _machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} logical CPUs, {system}, Python {platform.python_version()}"


def _versions() -> str:
    names = ("bpgpu", "numpy", "array-api-compat", "torch", "jax", "jaxlib")
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    try:
        import numpy as np

        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        found.append(f"NumPy BLAS {blas.get('name')} {blas.get('version')}")
    except Exception:
        pass
    return ", ".join(found)


if __name__ == "__main__":
    sys.exit(main())
