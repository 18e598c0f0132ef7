"""The workloads of the performance issue: synthetic data, fixed seeds, float32, one epoch each.

W1 is the book's chapter-1 setting; W2 a mid-size network at a mid-size batch; W3 large layers at a
large batch, where the matrix products are nearly everything.
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

    @property
    def steps(self) -> int:
        return -(-self.rows // self.batch)

    def describe(self) -> str:
        return f"{list(self.sizes)}, mini-batch {self.batch}, {self.rows} rows = {self.steps} steps"


WORKLOADS = {
    "W1": Workload("W1", (784, 30, 10), 10, 3.0, 60_000),
    "W2": Workload("W2", (784, 512, 512, 10), 128, 0.5, 60_000),
    "W3": Workload("W3", (784, 1024, 1024, 1024, 10), 1024, 0.5, 102_400),  # 100 steps of 1024 rows
}


def data(workload: Workload, rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic (X float32 (n, d) in [0, 1), labels int64 (n,)), the same for every implementation."""
    rng = np.random.default_rng(2026)
    n = workload.rows if rows is None else rows
    X = rng.random((n, workload.sizes[0]), dtype=np.float32)
    return X, rng.integers(0, workload.sizes[-1], size=n)
