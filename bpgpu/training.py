"""What `Network.SGD` reports each epoch, the per-epoch metrics it computes on the device, its loop,
and the two ways a training run can end early: diverging, and Ctrl-C.

The metrics are sums over whole data sets, taken in chunks of rows so that memory stays bounded, and
kept on the device; `Network.SGD` stacks every number an epoch needs into one array (with one flag:
whether every parameter is still finite) and brings that to the host in one transfer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from . import backprop as bp
from .activations import Activation
from .costs import Cost

if TYPE_CHECKING:
    from .network import Network

Array = Any

MONITORS = ("training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy")
CHUNK_ROWS = 8192  # rows per forward pass when measuring a whole data set


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch of `Network.SGD` did; a field is None when it was not asked for.

    `correct`/`total` count the test rows classified correctly (`test_data`); the `training_*` and
    `evaluation_*` fields are the mean cost (with the penalty, when `lmbda` > 0) and the accuracy (a
    fraction) named in `monitor`.
    """

    epoch: int
    seconds: float
    correct: int | None = None
    total: int | None = None
    training_cost: float | None = None
    training_accuracy: float | None = None
    evaluation_cost: float | None = None
    evaluation_accuracy: float | None = None
    eta: float | None = None  # the learning rate this epoch used

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


class TrainingDivergedError(ValueError):
    """Training made a parameter or a monitored cost NaN or infinite: the learning rate, λ or the
    data's scale is too large for the network.

    The network is left with the last parameters known to be finite: those it had when the epoch
    (or, for `update_mini_batch`, the step) began. `epoch` is the epoch that diverged (None for a
    single step) and `history` holds the records of the epochs completed before it.
    """

    def __init__(self, message: str, epoch: int | None = None, history: Sequence[EpochRecord] = ()) -> None:
        super().__init__(message)
        self.epoch, self.history = epoch, list(history)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (KeyboardInterrupt) during `Network.SGD`, raised once the network holds a whole step.

    The network's parameters are exactly those after `rows_done` of the `rows` training rows of
    epoch `epoch` (0 ≤ rows_done ≤ rows; rows_done = 0 means the epoch had not taken a step);
    `history` holds the records of the completed epochs. It is a `KeyboardInterrupt`, so code that
    catches that still does. `diverged`: the epoch's steps had already made a parameter NaN or
    infinite, so the network was put back where the epoch began (rows_done = 0), as when an epoch
    diverges without an interrupt.
    """

    def __init__(
        self, epoch: int, rows_done: int, rows: int, history: Sequence[EpochRecord], diverged: bool = False
    ) -> None:
        note = "; it had diverged, so the network is back where the epoch began" if diverged else ""
        super().__init__(f"interrupted in epoch {epoch} after {rows_done} of its {rows} rows{note}")
        self.epoch, self.rows_done, self.rows, self.history = epoch, rows_done, rows, list(history)
        self.diverged = diverged


def all_finite(arrays: Sequence[Array], xp: Any) -> Array:
    """Whether every value of every array is finite, as a 0-d boolean device array (no transfer)."""
    return xp.all(xp.stack([xp.all(xp.isfinite(a)) for a in arrays]))


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


class Rule(NamedTuple):
    """How `Network.SGD` updates parameters: weight decay λ over n rows, momentum μ and its velocities."""

    lmbda: float
    n: int
    regularization: str
    momentum: float = 0.0
    velocities: tuple[list[Array], list[Array]] | None = None  # (weights', biases') on the device


def measure(
    net: Network,
    monitor: tuple[str, ...],
    measured: dict[str, tuple[Array, Array | None, Array | None]],
    test: tuple[Array, Array] | None,
    rule: Rule,
) -> dict[str, Any]:
    """Everything an epoch reports, computed on the device and brought to the host in one transfer.

    `measured[prefix]` is `(x, targets or None, labels or None)` for "training" and "evaluation".
    Returns keyword arguments for `EpochRecord`, and whether the epoch stayed finite: every
    parameter, and every cost it measured.
    """
    xp = net.xp
    wanted = {"finite": all_finite([*net.weights, *net.biases], xp)}
    if test is not None:
        wanted["correct"] = net._count_correct(*test)
    for prefix, (x, y, labels) in measured.items():
        cost_name, accuracy_name = f"{prefix}_cost", f"{prefix}_accuracy"
        if cost_name not in monitor and accuracy_name not in monitor:
            continue
        rows = x.shape[0]
        cost_sum, correct = net._totals(
            x, y if cost_name in monitor else None, labels if accuracy_name in monitor else None
        )
        if cost_sum is not None:
            wanted[cost_name] = cost_sum / rows
            if rule.lmbda:
                wanted[cost_name] = wanted[cost_name] + bp.penalty(
                    net.weights, rule.lmbda, rows, rule.regularization, xp
                )
        if correct is not None:
            wanted[accuracy_name] = xp.astype(correct, xp.float64) / rows
    stacked = xp.stack([xp.astype(v, xp.float64) for v in wanted.values()])
    values = dict(zip(wanted, net.backend.to_numpy(stacked).tolist(), strict=True))
    net.backend.synchronize()
    finite = values.pop("finite") == 1.0 and all(math.isfinite(v) for v in values.values())
    if test is not None:
        values["correct"], values["total"] = int(values["correct"]), test[0].shape[0]
    return values, finite


class Patience:
    """Early stopping and the halving schedule of chapter 3, judged by evaluation accuracy (host side).

    `update(accuracy)` after each epoch returns `(improved, stop)`. Improvement means a strictly
    better accuracy than every earlier epoch. `early_stopping=n` stops after n epochs in a row
    without one; `schedule="halve"` halves `eta` after `patience` such epochs (counting again from
    the halving) and stops when `eta` would fall below its first value / 128.
    """

    def __init__(self, early_stopping: int | None, schedule: str | None, patience: int, eta: float) -> None:
        self.early_stopping, self.schedule, self.patience = early_stopping, schedule, patience
        self.eta, self.floor = eta, eta / 128
        self.best: float | None = None
        self.since_best = self.since_change = 0

    def update(self, accuracy: float) -> tuple[bool, bool]:
        improved = self.best is None or accuracy > self.best
        if improved:
            self.best, self.since_best, self.since_change = accuracy, 0, 0
            return True, False
        self.since_best += 1
        self.since_change += 1
        if self.early_stopping is not None and self.since_best >= self.early_stopping:
            return False, True
        if self.schedule == "halve" and self.since_change >= self.patience:
            self.eta, self.since_change = self.eta / 2, 0
            if self.eta < self.floor:
                return False, True
        return False, False


@dataclass(frozen=True)
class Plan:
    """What `Network.SGD` was asked to do, validated: device data and settings."""

    x: Array
    y: Array
    epochs: int
    mini_batch_size: int
    eta: float
    rule: Rule
    monitor: tuple[str, ...]
    test: tuple[Array, Array] | None
    evaluation: tuple[Array, Array] | None
    early_stopping: int | None
    eta_schedule: str | None
    patience: int


def train(
    net: Network,
    plan: Plan,
    parallel: Any,
    verbose: bool,
    callback: Callable[[EpochRecord], None] | None,
    progress: Callable[[int, int], None] | None,
) -> list[EpochRecord]:
    """`Network.SGD`'s loop over epochs and mini-batches, on a validated `plan` (see its docstring)."""
    x, y, rule, monitor = plan.x, plan.y, plan.rule, plan.monitor
    xp, n, history = net.xp, x.shape[0], []
    if parallel is not None:  # sharded data: n is every rank's rows together
        rule = rule._replace(n=parallel.total_rows(n))
    measured = {"training": (x, y, xp.argmax(y, axis=1) if "training_accuracy" in monitor else None)}
    if plan.evaluation is not None:
        ex, labels = plan.evaluation
        ey = None
        if "evaluation_cost" in monitor:
            ey = bp.one_hot(labels, net.sizes[-1], net.backend.dtype(net.dtype), xp)
        measured["evaluation"] = (ex, ey, labels)
    watching = plan.early_stopping is not None or plan.eta_schedule is not None
    tracker = Patience(plan.early_stopping, plan.eta_schedule, plan.patience, plan.eta) if watching else None
    best = (net.weights, net.biases)  # arrays are never changed in place: keeping them is enough
    if rule.momentum:
        rule = rule._replace(
            velocities=([xp.zeros_like(w) for w in net.weights], [xp.zeros_like(b) for b in net.biases])
        )
    # What the network holds and how far it got, replaced in one assignment after every step, so a
    # Ctrl-C anywhere can put the network back to a whole step and say exactly which one.
    state = (net.weights, net.biases, 0, 0)  # weights, biases, epoch, rows of that epoch done
    began, stream = (net.weights, net.biases), net._random.shuffle_state
    try:
        for epoch in range(plan.epochs):
            start = time.perf_counter()
            began, stream = (net.weights, net.biases), net._random.shuffle_state
            rate = plan.eta if tracker is None else tracker.eta
            order = net.backend.asarray(net._random.permutation(n))
            state = (*began, epoch, 0)
            for k in range(0, n, plan.mini_batch_size):
                end = min(k + plan.mini_batch_size, n)  # the standard leaves out-of-range stops undefined
                rows = order[k:end]  # gather one batch on the device: no copy of the whole set
                if parallel is None:
                    weights, biases, rule = net._step(
                        xp.take(x, rows, axis=0), xp.take(y, rows, axis=0), rate, rule
                    )
                else:
                    mine = rows[slice(*parallel.share(end - k))]
                    weights, biases, rule = net._step(
                        xp.take(x, mine, axis=0), xp.take(y, mine, axis=0), rate, rule, parallel, end - k
                    )
                state = (weights, biases, epoch, end)
                net.weights, net.biases = weights, biases
                if progress is not None:
                    progress(end, n)
            values, finite = measure(net, monitor, measured, plan.test, rule)
            if not finite:  # back to where the epoch began, shuffle stream included
                (net.weights, net.biases), net._random.shuffle_state = began, stream
                raise _diverged(epoch, plan, history)
            record = EpochRecord(epoch, time.perf_counter() - start, eta=rate, **values)
            history.append(record)
            if verbose:
                print(record, flush=True)
            if callback is not None:
                callback(record)
            if tracker is not None:
                improved, stop = tracker.update(record.evaluation_accuracy)
                if improved:
                    best = (net.weights, net.biases)
                if stop:
                    break
    except KeyboardInterrupt:
        net.weights, net.biases, epoch, done = state
        if not bool(all_finite([*net.weights, *net.biases], xp)):  # diverging when interrupted
            (net.weights, net.biases), net._random.shuffle_state = began, stream
            raise TrainingInterrupted(epoch, 0, n, history, diverged=True) from None
        raise TrainingInterrupted(epoch, done, n, history) from None
    except Exception as error:
        # The other ranks would wait in the next all-reduce forever; but with the whole data on
        # every rank, all hold the same parameters and numbers and diverge in the same epoch.
        same_everywhere = (
            isinstance(error, TrainingDivergedError) and parallel is not None and not parallel.shard
        )
        if parallel is not None and not same_everywhere:
            parallel.abort(error)
        raise
    if plan.early_stopping is not None:
        net.weights, net.biases = best
    return history


def _diverged(epoch: int, plan: Plan, history: list[EpochRecord]) -> TrainingDivergedError:
    kept = f"after epoch {epoch - 1}" if epoch else "before training"
    settings = f"eta={plan.eta:g}" + (f", lmbda={plan.rule.lmbda:g}" if plan.rule.lmbda else "")
    return TrainingDivergedError(
        f"training diverged in epoch {epoch}: a parameter or the cost became NaN or infinite "
        f"({settings} is too large for this network?); the network keeps its parameters from {kept}",
        epoch,
        history,
    )
