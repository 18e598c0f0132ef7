"""`Network.SGD`'s loop over epochs and mini-batches, what it reports each epoch, and the two ways a
training run can end early: diverging, and Ctrl-C.

The loop works on plain data: a `step.Model`, the parameters, the host's random streams and a
validated `TrainingJob`. It hands the pure `step.Step` and `step.Metrics` to the backend, which may compile
them (`Backend.compile`, `Backend.run_steps`), and gives every new set of parameters back through
`commit`; it knows nothing of `Network`. An epoch's numbers (`step.Metrics`, with one flag: whether
every parameter is still finite) reach the host in one transfer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import interrupts, stopping
from . import step as steps
from .backends import Backend
from .backends.host_random import HostRandom
from .interrupts import TrainingInterrupted
from .options import Training
from .step import MONITORS, Metrics, Model, Params, Step, Update, all_finite

Array = Any
__all__ = [
    "MONITORS",
    "EpochRecord",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "TrainingJob",
    "train",
]


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch of `Network.SGD` did; a field is None when it was not asked for.

    `correct`/`total` count the test rows classified correctly (`test_data`); the `training_*` and
    `evaluation_*` fields are the mean cost (with the penalty, when `lmbda` > 0) and the accuracy (a
    fraction) named in `monitor`; `layer_speeds` (monitor "layer_speeds") is each layer's
    ‖∂C/∂b^l‖, hidden layers first, as `Network.layer_speeds` gives it.
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
    layer_speeds: tuple[float, ...] | None = None  # ‖∂C/∂b^l‖ per layer, hidden first (monitored)

    @property
    def accuracy(self) -> float | None:
        """Fraction of test rows classified correctly, or None without test data."""
        return None if self.total is None else self.correct / self.total

    def __str__(self) -> str:
        parts = [] if self.total is None else [f"{self.correct} / {self.total}"]
        for name in MONITORS:
            value = getattr(self, name)
            if value is not None:
                if name == "layer_speeds":
                    shown = " ".join(f"{speed:.3g}" for speed in value)
                else:
                    shown = f"{value:.2%}" if name.endswith("accuracy") else f"{value:.6g}"
                parts.append(f"{name.replace('_', ' ')} {shown}")
        head = f"Epoch {self.epoch}: " + ", ".join(parts) if parts else f"Epoch {self.epoch} complete"
        return f"{head} ({self.seconds:.2f} s)"


class TrainingDivergedError(ValueError):
    """Training made a parameter or a monitored cost NaN or infinite: the learning rate, λ or the
    data's scale is too large for the network.

    The network is left with the last parameters known to be finite: those it had when the epoch
    (or, for `update_mini_batch`, the step) began. `epoch` is the epoch that diverged (None for a
    single step) and `history` holds the records of the epochs completed before it. `what` says
    what happened and `settings` the step's size ("eta=3 with lmbda=0.5"), for callers that word the
    rest themselves (the `bpgpu` command).
    """

    def __init__(
        self, epoch: int | None, settings: str, kept: str, history: Sequence[EpochRecord] = ()
    ) -> None:
        self.what = (
            "the step made a parameter NaN or infinite"
            if epoch is None
            else f"training diverged in epoch {epoch}: a parameter or the cost became NaN or infinite"
        )
        super().__init__(f"{self.what} ({settings} is too large for this network?); {kept}")
        self.epoch, self.settings, self.kept, self.history = epoch, settings, kept, list(history)

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole, e.g. from a multiprocessing worker
        return type(self), (self.epoch, self.settings, self.kept, self.history)


def step_size(eta: float, lmbda: float) -> str:
    """ "eta=3", "eta=3 with lmbda=0.5": the settings a diverged run names."""
    return f"eta={eta:g}" + (f" with lmbda={lmbda:g}" if lmbda else "")


@dataclass(frozen=True)
class TrainingJob:
    """What `Network.SGD` was asked to do, validated: the device data, the `options`, the update
    rule's settings, and what each epoch measures (`monitor`, with the evaluation accuracy added when
    a stopping rule needs it)."""

    x: Array
    y: Array
    options: Training
    update: Update
    monitor: tuple[str, ...]
    test: tuple[Array, Array] | None
    evaluation: tuple[Array, Array] | None


def train(
    model: Model,
    backend: Backend,
    random: HostRandom,
    weights: Sequence[Array],
    biases: Sequence[Array],
    job: TrainingJob,
    *,
    commit: Callable[[list[Array], list[Array]], None],
    parallel: Any = None,
    verbose: bool = False,
    callback: Callable[[EpochRecord], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[EpochRecord]:
    """`Network.SGD`'s loop over epochs and mini-batches, on a validated `job` (see `SGD`'s docstring).

    Starts from `weights` and `biases` and hands every new whole set of parameters to `commit`, so
    that the caller holds a whole step at every moment: after each call of the backend's
    `run_steps`, at the end, and, on an error, the last whole set that can still be read (the
    epoch's start when a diverging epoch or a cut-short compiled call leaves nothing better).
    `random` supplies the shuffles (and is put back to where an epoch began when it diverges).
    """
    x, y, batch = job.x, job.y, job.options.mini_batch_size
    xp, n, history = backend.xp, x.shape[0], []
    update = job.update
    if parallel is not None:  # sharded data: n is every rank's rows together
        update = update._replace(n=parallel.total_rows(n))
    step = Step(model, update, xp)
    metrics = Metrics(model, update, job.monitor, job.test is not None, xp, steps.CHUNK_ROWS)
    measure = _EpochNumbers(backend, metrics)
    data = ((x, y), job.evaluation, job.test)
    full, last = divmod(n, batch)  # whole mini-batches, and the rows of a short last one
    per_call = backend.steps_per_call(full)
    rule = stopping.rule_for(job.options.early_stopping, job.options.eta_schedule, job.options.patience)
    watched, rate = (None if rule is None else rule.init(job.options.eta)), job.options.eta
    params = (backend.compile(step.start) if update.momentum else step.start)(weights, biases)
    best = began = (params.weights, params.biases)
    stream = random.shuffle_state
    # What the caller holds and how far it got, replaced after every call, so that a Ctrl-C or an
    # error anywhere can put back a whole step and say exactly which one.
    state = (*began, 0, 0)  # weights, biases, epoch, rows of that epoch done

    def advance(new: Params, epoch: int, rows_done: int) -> Params:
        nonlocal state
        state = (new.weights, new.biases, epoch, rows_done)
        commit(new.weights, new.biases)
        if progress is not None:
            progress(rows_done, n)
        interrupt.check()
        return new

    def settle(checked: bool) -> tuple[int, int, bool]:
        """Leave the caller with the last whole step that is finite (`checked`: known to be): the
        one `state` holds, else the epoch's start, shuffle stream included. Returns the epoch, its
        rows done, and whether the epoch had diverged."""
        weights, biases, epoch, done = state
        diverged = not checked and not bool(all_finite([*weights, *biases], xp))
        if diverged:
            (weights, biases), done = began, 0
            random.shuffle_state = stream
        commit(weights, biases)
        return epoch, done, diverged

    try:
        with interrupts.deferred() as interrupt:
            for epoch in range(job.options.epochs):
                began_at = time.perf_counter()
                began, stream = (params.weights, params.biases), random.shuffle_state
                state = (*began, epoch, 0)
                order = backend.asarray(random.permutation(n))
                if parallel is None:
                    done = 0
                    while done < full:
                        count = min(per_call, full - done)
                        first = done * batch  # the call's first row of `order`
                        params = backend.run_steps(step, params, x, y, order, first, count, batch, rate)
                        done += count
                        params = advance(params, epoch, done * batch)
                    if last:  # the short last mini-batch: a call of its own
                        params = backend.run_steps(step, params, x, y, order, full * batch, 1, last, rate)
                        params = advance(params, epoch, n)
                else:
                    for k in range(0, n, batch):
                        end = min(k + batch, n)
                        params = advance(parallel.step(step, params, x, y, order[k:end], rate), epoch, end)
                values, finite = measure(params, data)
                if not finite:  # back to where the epoch began, shuffle stream included
                    state = (*began, epoch, 0)
                    random.shuffle_state = stream
                    raise _diverged(epoch, job, history)
                record = EpochRecord(epoch, time.perf_counter() - began_at, eta=rate, **values)
                history.append(record)
                if verbose:
                    print(record, flush=True)
                if callback is not None:
                    callback(record)
                if rule is not None:
                    verdict, watched = rule.update(record.evaluation_accuracy, watched)
                    rate = verdict.eta
                    if verdict.improved:
                        best = (params.weights, params.biases)
                    if verdict.stop:
                        interrupt.check()  # a Ctrl-C during this last epoch still counts
                        break
                interrupt.check()
    except KeyboardInterrupt:
        epoch, done, diverged = settle(checked=False)
        raise TrainingInterrupted(epoch, done, n, history, diverged=diverged) from None
    except Exception as error:
        epoch, done, _ = settle(checked=isinstance(error, TrainingDivergedError))
        if not isinstance(error, TrainingDivergedError) and hasattr(error, "add_note"):
            error.add_note(
                f"bpgpu: training stopped in epoch {epoch}; the network holds its parameters after "
                f"{done} of that epoch's {n} rows"
            )
        # The other ranks would wait in the next all-reduce forever; but with the whole data on
        # every rank, all hold the same parameters and numbers and diverge in the same epoch.
        same_everywhere = (
            isinstance(error, TrainingDivergedError) and parallel is not None and not parallel.shard
        )
        if parallel is not None and not same_everywhere:
            parallel.abort(error)
        raise
    commit(*(best if job.options.early_stopping is not None else (params.weights, params.biases)))
    return history


class _EpochNumbers:
    """The epoch's numbers: `Metrics` compiled by the backend, brought to the host in one transfer."""

    def __init__(self, backend: Backend, metrics: Metrics) -> None:
        self.backend, self.metrics = backend, metrics
        self.compiled = backend.compile(metrics)

    def __call__(self, params: Params, data: tuple[Any, Any, Any]) -> tuple[dict[str, Any], bool]:
        """Keyword arguments for `EpochRecord`, and whether the epoch stayed finite: every parameter,
        and every cost it measured."""
        stacked = self.compiled(params.weights, params.biases, data)
        values = dict(zip(self.metrics.names, self.backend.to_numpy(stacked).tolist(), strict=True))
        finite = values.pop("finite") == 1.0 and all(math.isfinite(v) for v in values.values())
        speeds = [values.pop(name) for name in self.metrics.names if name.startswith("layer_speeds.")]
        if speeds:
            values["layer_speeds"] = tuple(speeds)
        for prefix, part in zip(("training", "evaluation"), data[:2], strict=True):
            if f"{prefix}_accuracy" in values:  # counted on the device, divided here: exactly rounded
                values[f"{prefix}_accuracy"] /= part[0].shape[0]
        test = data[2]
        if test is not None:
            values["correct"], values["total"] = int(values["correct"]), test[0].shape[0]
        return values, finite


def _diverged(epoch: int, job: TrainingJob, history: list[EpochRecord]) -> TrainingDivergedError:
    kept = f"after epoch {epoch - 1}" if epoch else "before training"
    settings = step_size(job.options.eta, job.update.lmbda)
    return TrainingDivergedError(epoch, settings, f"the network keeps its parameters from {kept}", history)
