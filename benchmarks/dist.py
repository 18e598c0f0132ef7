"""Data-parallel training over MPI on this machine: does a second rank pay, and what does a step's
all-reduce cost?

    python -m benchmarks.dist [--workloads W1 W2] [--repeats 3] [--rows N] [--out DIR]   (make bench-dist)

Training: each workload's one epoch (`Network.SGD` on NumPy, as benchmarks/impls.py times it) with
1 rank × 2 threads and with 2 ranks × 1 thread (`mpiexec -n 2`, `comm=MPI.COMM_WORLD`), and with 1 rank ×
1 thread for reference; each
measurement a fresh process (or pair), alternating, median of `--repeats`. All-reduce: one
`DataParallel.sum_across_ranks` on gradients of each workload's parameter shapes between 2 ranks,
and the bare `MPI.Allreduce` of the same float32 buffer, averaged over many calls, median of 5.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .run import LOCAL_RESULTS, THREAD_VARIABLES, _machine_line, _versions, write_report
from .workloads import WORKLOADS, Workload, data

ROOT = Path(__file__).parent.parent
CALLS = {"W1": 3000, "W2": 300, "W3": 30}  # all-reduce calls per timing


def _workload(name: str, rows: int | None) -> Workload:
    w = WORKLOADS[name]
    return w if rows is None else Workload(w.name, w.sizes, w.batch, w.eta, rows)


def child_train(name: str, rows: int | None) -> None:
    """One epoch on this rank; rank 0 prints the slowest rank's seconds as JSON."""
    import bpgpu
    from bpgpu import distributed

    workload = _workload(name, rows)
    X, y = data(workload)
    comm = distributed.world_if_launched()
    net = bpgpu.Network(list(workload.sizes), backend="numpy", seed=1)
    if comm is not None:
        comm.Barrier()
    start = time.perf_counter()
    net.SGD((X, y), 1, workload.batch, workload.eta, comm=comm)
    seconds = time.perf_counter() - start
    if comm is not None:
        from mpi4py import MPI

        seconds = comm.allreduce(seconds, op=MPI.MAX)
    if comm is None or comm.Get_rank() == 0:
        print(json.dumps({"seconds": seconds}))


def child_allreduce(names: list[str]) -> None:
    """Seconds per call of sum_across_ranks and of the bare Allreduce, per workload (rank 0 prints)."""
    import numpy as np
    from mpi4py import MPI

    import bpgpu
    from bpgpu.distributed import DataParallel

    comm = MPI.COMM_WORLD
    results = {}
    for name in names:
        workload = WORKLOADS[name]
        net = bpgpu.Network(list(workload.sizes), backend="numpy", seed=1)
        nabla_b, nabla_w = [b * 1.0 for b in net.biases], [w * 1.0 for w in net.weights]
        parallel = DataParallel(comm, net.backend)
        flat = np.concatenate([a.reshape(-1) for a in [*nabla_b, *nabla_w]])
        calls, packed, bare = CALLS[name], [], []
        for _ in range(5):
            for times, call in (
                (packed, functools.partial(parallel.sum_across_ranks, nabla_b, nabla_w)),
                (bare, functools.partial(comm.Allreduce, MPI.IN_PLACE, flat, op=MPI.SUM)),
            ):
                call()
                comm.Barrier()
                start = time.perf_counter()
                for _ in range(calls):
                    call()
                times.append(comm.allreduce((time.perf_counter() - start) / calls, op=MPI.MAX))
        results[name] = {
            "values": int(flat.size),
            "bytes": int(flat.nbytes),
            "sum_across_ranks": statistics.median(packed),
            "allreduce": statistics.median(bare),
        }
    if comm.Get_rank() == 0:
        print(json.dumps(results))


def _run(command: list[str], threads: int) -> dict:
    env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}, "BPGPU_BACKEND": "numpy"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child-train", nargs=2, metavar=("WORKLOAD", "ROWS"), help=argparse.SUPPRESS)
    parser.add_argument("--child-allreduce", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--workloads", nargs="+", default=["W1", "W2"], choices=list(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, help="cut every workload to this many rows (quick checks)")
    parser.add_argument(
        "--out", default=str(LOCAL_RESULTS), help=f"(default {LOCAL_RESULTS}, ignored by git)"
    )
    args = parser.parse_args(argv)
    if args.child_train:
        name, rows = args.child_train
        child_train(name, None if rows == "all" else int(rows))
        return 0
    if args.child_allreduce:
        child_allreduce(args.child_allreduce)
        return 0

    mpiexec = str(Path(sys.executable).with_name("mpiexec"))
    me = [sys.executable, "-m", "benchmarks.dist"]
    layouts = {
        "1 rank × 2 threads": ([], 2),
        "2 ranks × 1 thread": ([mpiexec, "-n", "2"], 1),
        "1 rank × 1 thread": ([], 1),  # for reference: what each rank does alone
    }
    load_before = os.getloadavg()
    seconds: dict[tuple[str, str], list[float]] = {}
    for name in args.workloads:
        for repeat in range(args.repeats):
            order = list(layouts) if repeat % 2 == 0 else list(layouts)[::-1]
            for layout in order:
                prefix, threads = layouts[layout]
                rows = "all" if args.rows is None else str(args.rows)
                outcome = _run([*prefix, *me, "--child-train", name, rows], threads)
                seconds.setdefault((name, layout), []).append(outcome["seconds"])
                print(f"{name} {layout}: {outcome['seconds']:.3f} s", flush=True)
    reduce = _run([mpiexec, "-n", "2", *me, "--child-allreduce", *args.workloads], 1)
    load_after = os.getloadavg()
    write_report(_render(args, seconds, reduce, layouts, (load_before, load_after)), args.out, "dist-")
    return 0


def _render(args, seconds, reduce, layouts, loads) -> str:
    lines = [
        f"# bpgpu data-parallel benchmark: {_machine_line()}",
        "",
        f"{datetime.datetime.now().isoformat(timespec='minutes')}; MPICH through the `mpich` wheel, "
        f"ranks on one machine (shared memory); one epoch per measurement, each in fresh processes; "
        f"median (min–max) of {args.repeats}. Versions: {_versions()}.",
        "",
        f"This machine has {os.cpu_count()} logical CPUs and is shared: other processes may have run "
        f"during the measurement (1-minute load average {loads[0][0]:.2f} before, {loads[1][0]:.2f} after).",
        "",
    ]
    if args.rows:
        lines += [
            f"**Quick run: every workload cut to {args.rows} rows; not comparable with full runs.**",
            "",
        ]
    lines += ["| workload | layout | seconds per epoch | × 1 rank |", "|---|---|---|---|"]
    for name in args.workloads:
        base = statistics.median(seconds[(name, next(iter(layouts)))])
        for layout in layouts:
            times = seconds[(name, layout)]
            median = statistics.median(times)
            spread = f"{median:.3f} ({min(times):.3f}–{max(times):.3f})"
            lines.append(f"| {name} | {layout} | {spread} | {median / base:.2f} |")
    lines += [
        "",
        "All-reduce between 2 ranks (1 thread each) of one step's gradient, float32:",
        "",
        "| workload | values (bytes) | sum_across_ranks per step | bare MPI Allreduce | steps per epoch | "
        "sum_across_ranks per epoch | share of a 1-rank step |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in args.workloads:
        r, workload = reduce[name], _workload(name, args.rows)
        step = statistics.median(seconds[(name, next(iter(layouts)))]) / workload.steps
        packed = r["sum_across_ranks"]
        lines.append(
            f"| {name} | {r['values']:,} ({r['bytes'] / 2**20:.2f} MiB) | {packed * 1e6:.0f} µs | "
            f"{r['allreduce'] * 1e6:.0f} µs | {workload.steps} | {packed * workload.steps:.3f} s | "
            f"{packed / step:.1%} |"
        )
    lines += ["", "Workloads: " + "; ".join(f"{w} {WORKLOADS[w].describe()}" for w in args.workloads), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
