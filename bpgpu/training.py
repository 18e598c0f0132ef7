"""What `Network.SGD` reports each epoch, and the per-epoch metrics it computes on the device.

The metrics are sums over whole data sets, taken in chunks of rows so that memory stays bounded, and
kept on the device; `Network.SGD` stacks every number an epoch needs into one array and brings that
to the host in one transfer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import backprop as bp
from .activations import Activation
from .costs import Cost

Array = Any

MONITORS = ("training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy")
CHUNK_ROWS = 8192  # rows per forward pass when measuring a whole data set


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch of `Network.SGD` did; a field is None when it was not asked for.

    `correct`/`total` count the test rows classified correctly (`test_data`); the `training_*` and
    `evaluation_*` fields are the mean cost and the accuracy (a fraction) named in `monitor`.
    """

    epoch: int
    seconds: float
    correct: int | None = None
    total: int | None = None
    training_cost: float | None = None
    training_accuracy: float | None = None
    evaluation_cost: float | None = None
    evaluation_accuracy: float | None = None

    @property
    def accuracy(self) -> float | None:
        """Fraction of test rows classified correctly, or None without test data."""
        return None if self.total is None else self.correct / self.total

    def __str__(self) -> str:
        parts = [] if self.total is None else [f"{self.correct} / {self.total}"]
        for name in MONITORS:
            value = getattr(self, name)
            if value is not None:
                shown = f"{value:.2%}" if name.endswith("accuracy") else f"{value:.6g}"
                parts.append(f"{name.replace('_', ' ')} {shown}")
        head = f"Epoch {self.epoch}: " + ", ".join(parts) if parts else f"Epoch {self.epoch} complete"
        return f"{head} ({self.seconds:.2f} s)"


def totals(
    weights: Sequence[Array],
    biases: Sequence[Array],
    sigmas: Sequence[Activation],
    cost: Cost,
    x: Array,
    y: Array | None,
    labels: Array | None,
    xp: Any,
) -> tuple[Array | None, Array | None]:
    """(Σ_x C_x over the rows, number of rows classified as `labels`), as device scalars.

    Either part is None when its input is: the cost needs targets `y` (n, k); the count needs integer
    `labels` (n,).
    """
    cost_sum = correct = None
    for k in range(0, x.shape[0], CHUNK_ROWS):
        end = min(k + CHUNK_ROWS, x.shape[0])
        zs, activations = bp.feedforward(weights, biases, sigmas, x[k:end, ...], xp)
        if y is not None:
            part = xp.sum(cost.fn(zs[-1], activations[-1], y[k:end, ...], xp))
            cost_sum = part if cost_sum is None else cost_sum + part
        if labels is not None:
            part = bp.count_correct(activations[-1], labels[k:end, ...], xp)
            correct = part if correct is None else correct + part
    return cost_sum, correct
