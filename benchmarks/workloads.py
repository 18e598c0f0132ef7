"""The workloads of the performance issue: synthetic data, fixed seeds, float32, one epoch each.

W1 is the book's chapter-1 setting; W2 a mid-size network at a mid-size batch; W3 large layers at a
large batch, where the matrix products are nearly everything; W4 (GPU only) larger still.

Every implementation starts from the same parameters: bpgpu's, drawn from seed 1 with the workload's
`init` (`impls.initial_parameters`). W3 uses "scaled" (weights N(0, 1/n_in)): with the book's N(0, 1)
weights a 1024-wide sigmoid stack saturates, backprop's errors underflow into denormal floats, and
every matrix product runs about twice as slowly, which would time the trap, not the code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Workload:
    name: str
    sizes: tuple[int, ...]
    batch: int
    eta: float
    rows: int
    init: str = "normal"

    @property
    def steps(self) -> int:
        return -(-self.rows // self.batch)

    def describe(self) -> str:
        steps = f"{self.rows} rows = {self.steps} steps"
        return f"{list(self.sizes)}, mini-batch {self.batch}, {steps}, init {self.init!r}"


WORKLOADS = {
    "W1": Workload("W1", (784, 30, 10), 10, 3.0, 60_000),
    "W2": Workload("W2", (784, 512, 512, 10), 128, 0.5, 60_000),
    "W3": Workload("W3", (784, 1024, 1024, 1024, 10), 1024, 0.5, 102_400, "scaled"),  # 100 steps of 1024 rows
    # Where a GPU's arithmetic shows (benchmarks/gpu.py): 100 steps of 4096 rows, about 1.2 TFLOP a
    # step in float32; far too slow for a CPU run, so benchmarks/run.py leaves it out by default.
    "W4": Workload("W4", (784, 4096, 4096, 4096, 10), 4096, 0.5, 409_600, "scaled"),
}
CPU_WORKLOADS = ("W1", "W2", "W3")


def data(workload: Workload, rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic (X float32 (n, d) in [0, 1), labels int64 (n,)), the same for every implementation."""
    rng = np.random.default_rng(2026)
    n = workload.rows if rows is None else rows
    X = rng.random((n, workload.sizes[0]), dtype=np.float32)
    return X, rng.integers(0, workload.sizes[-1], size=n)
