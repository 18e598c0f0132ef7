"""The training step and the per-epoch metrics as pure functions of plain data.

    step(params, x, y, eta) -> params     params = Params(weights, biases, the rule's state)

A `Step` is built once per `Network.SGD` call from the network's activations and cost (a `Model`)
and the learning rule's options (an `Update`, which names a chain of `bpgpu.rules`); it calls only
the equations of `backprop` and those rules, reads and changes nothing else, and returns new
arrays. So the same object runs eagerly on NumPy, CuPy and PyTorch, and is what a compiling
backend (JAX) traces once and runs many times. `Step` and `Metrics` are frozen dataclasses of
hashable settings: equal settings are equal keys, so a backend can cache
what it compiled across `SGD` calls.

For data-parallel training a step comes apart in two, with an all-reduce between them:
`step.gradient(...)` (this rank's part of the mini-batch) and `step.apply(...)` (the update).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import backprop as bp
from . import rules
from .activations import Activation
from .costs import Cost
from .labels import count_correct, one_hot

Array = Any
MONITORS = ("training_cost", "training_accuracy", "evaluation_cost", "evaluation_accuracy", "layer_speeds")
CHUNK_ROWS = 8192  # rows per forward pass when measuring a whole data set
SPEED_ROWS = 1000  # training rows that layer speeds are measured on, without evaluation data


class Params(NamedTuple):
    """What a step changes: weights and biases (the book's order of layers), and the update rule's
    state: with momentum the velocities `(v_weights, v_biases)`, else `()`."""

    weights: list[Array]
    biases: list[Array]
    velocities: tuple[list[Array], list[Array]] | tuple[()] = ()


@dataclass(frozen=True)
class Model:
    """What the equations need besides the parameters: each layer's activation σ and the cost."""

    sigmas: tuple[Activation, ...]
    cost: Cost


class Update(NamedTuple):
    """The learning rule's options (chapter 3): weight decay λ over n training rows, "l2" or "l1",
    and momentum μ (0: plain gradient descent). `rule` builds the `bpgpu.rules` chain they ask for."""

    lmbda: float = 0.0
    n: int = 1
    regularization: str = "l2"
    momentum: float = 0.0

    def rule(self, xp: Any) -> rules.Rule:
        """[weight decay when λ > 0], then momentum when μ > 0, else gradient descent."""
        decay = [rules.weight_decay(self.lmbda, self.n, self.regularization, xp)] if self.lmbda else []
        return rules.chain(*decay, rules.momentum(self.momentum, xp) if self.momentum else rules.sgd())


@dataclass(frozen=True)
class Step:
    """One update of every parameter by mini-batch gradient descent; see the module docstring."""

    model: Model
    update: Update
    xp: Any

    @functools.cached_property
    def rule(self) -> rules.Rule:
        return self.update.rule(self.xp)

    def __call__(self, params: Params, x: Array, y: Array, eta: Any) -> Params:
        """The parameters after one step on the mean cost of the rows of `x` (n, sizes[0]) and `y`."""
        return self.apply(params, self.gradient(params, x, y, eta), eta)

    def gradient(self, params: Params, x: Array, y: Array, eta: Any, rows: int | None = None) -> rules.Grads:
        """`(nabla_w, nabla_b)` of the mean cost over `rows` rows (default: those of `x`), times the
        rule's factor when the rule is one (`rules.Rule.scale`: the update itself, then). Summing
        the parts of a mini-batch gives the whole's."""
        m, scale = self.model, self.rule.scale
        factor = 1.0 if scale is None else scale(eta)
        nabla_b, nabla_w = bp.backprop(
            params.weights, params.biases, m.sigmas, m.cost, x, y, self.xp, factor, rows
        )
        return nabla_w, nabla_b

    def apply(self, params: Params, gradient: rules.Grads, eta: Any) -> Params:
        """The update from a mini-batch's `gradient` (as `self.gradient` returns it): new `Params`."""
        updates, state = gradient, params.velocities
        if self.rule.scale is None:  # else backprop applied the rule's factor already
            updates, state = self.rule.update(gradient, state, params, eta)
        return Params(
            rules.apply_updates(params.weights, updates[0]),
            rules.apply_updates(params.biases, updates[1]),
            state,
        )

    def start(self, weights: Sequence[Array], biases: Sequence[Array]) -> Params:
        """`Params` for the first step of a run: the rule's first state (velocities at zero)."""
        return Params(list(weights), list(biases), self.rule.init(weights, biases))


def all_finite(arrays: Sequence[Array], xp: Any) -> Array:
    """Whether every value of every array is finite, as a 0-d boolean device array (no transfer)."""
    return xp.all(xp.stack([xp.all(xp.isfinite(a)) for a in arrays]))


def totals(
    model: Model,
    weights: Sequence[Array],
    biases: Sequence[Array],
    x: Array,
    y: Array | None,
    labels: Array | None,
    xp: Any,
    chunk_rows: int | None = None,
) -> tuple[Array | None, Array | None]:
    """(Σ_x C_x over the rows, number of rows classified as `labels`), as device scalars.

    Either part is None when its input is: the cost needs targets `y` (n, k); the count needs integer
    `labels` (n,). The rows go through the network `chunk_rows` (default CHUNK_ROWS) at a time, so
    memory stays bounded.
    """
    chunk_rows = CHUNK_ROWS if chunk_rows is None else chunk_rows
    cost_sum = correct = None
    for k in range(0, x.shape[0], chunk_rows):
        end = min(k + chunk_rows, x.shape[0])
        zs, activations = bp.feedforward(weights, biases, model.sigmas, x[k:end, ...], xp)
        if y is not None:
            part = xp.sum(model.cost.fn(zs[-1], activations[-1], y[k:end, ...], xp))
            cost_sum = part if cost_sum is None else cost_sum + part
        if labels is not None:
            part = count_correct(activations[-1], labels[k:end, ...], xp)
            correct = part if correct is None else correct + part
    return cost_sum, correct


def layer_speeds(
    model: Model, weights: Sequence[Array], biases: Sequence[Array], x: Array, y: Array, xp: Any
) -> Array:
    """Each layer's speed of learning (chapter 5): ‖∂C/∂b^l‖, the Euclidean norm of BP3's gradient
    of the mean cost over the rows of `x` and `y`, hidden layers first and the output layer last,
    as a 1-d device array of L floats."""
    nabla_b, _ = bp.backprop(weights, biases, model.sigmas, model.cost, x, y, xp)
    return xp.stack([xp.sqrt(xp.sum(g * g)) for g in nabla_b])


def confusion(
    model: Model,
    weights: Sequence[Array],
    biases: Sequence[Array],
    x: Array,
    labels: Array,
    xp: Any,
    chunk_rows: int | None = None,
) -> Array:
    """The confusion matrix of the rows of `x` against `labels` (n,), a (k, k) float64 device array
    whose [i, j] counts the rows labelled i that the network classifies as j (argmax of its output;
    k = the output layer's width). One-hot labels times one-hot predictions, summed over chunks of
    `chunk_rows` rows: exact for any count below 2⁵³ (in float64: on JAX inside `activate()`, as
    `Network.confusion_matrix` runs it)."""
    chunk_rows = CHUNK_ROWS if chunk_rows is None else chunk_rows
    k = biases[-1].shape[0]
    matrix = None
    for start in range(0, x.shape[0], chunk_rows):
        end = min(start + chunk_rows, x.shape[0])
        _, activations = bp.feedforward(weights, biases, model.sigmas, x[start:end, ...], xp)
        truth = one_hot(labels[start:end, ...], k, xp.float64, xp)
        guess = one_hot(xp.argmax(activations[-1], axis=1), k, xp.float64, xp)
        part = truth.T @ guess
        matrix = part if matrix is None else matrix + part
    return matrix


@dataclass(frozen=True)
class Metrics:
    """Every number an epoch of `SGD` reports, as one float64 device vector (one transfer to the host).

    `names` says what each entry is: first "finite" (1.0 when every parameter is finite), then
    "correct" with test data, then the `monitor` names asked for, in `MONITORS` order (accuracies as
    counts of rows: the host divides them by the rows, so that they round once). Called with
    the parameters and `data = (training, evaluation, test)`: training is `(x, targets)`,
    evaluation and test are `(x, labels)` or None. What the numbers need besides (the training
    rows' labels, the evaluation rows' targets, the rows layer speeds are measured on: the
    evaluation rows when there are some, else the first `SPEED_ROWS` training rows) is worked out
    inside the call, so that a compiling backend compiles it with the rest.
    Costs include the penalty of `update` (λ over each data set's own rows), as `total_cost` does.
    """

    model: Model
    update: Update
    monitor: tuple[str, ...]
    test: bool
    xp: Any
    chunk_rows: int = CHUNK_ROWS  # a field, so that a compiled copy is never reused for another

    @property
    def names(self) -> tuple[str, ...]:
        """One per entry; "layer_speeds" stands for L entries, "layer_speeds.0" ... (hidden first)."""
        names = ["finite", *("correct",) * self.test]
        for m in MONITORS:
            if m in self.monitor:
                speeds = m == "layer_speeds"
                names += [f"{m}.{l}" for l in range(len(self.model.sigmas))] if speeds else [m]
        return tuple(names)

    def __call__(self, weights: Sequence[Array], biases: Sequence[Array], data: tuple[Any, ...]) -> Array:
        xp, u, monitor = self.xp, self.update, self.monitor
        found = {"finite": all_finite([*weights, *biases], xp)}
        (x, y), evaluation, test = data
        training = (x, y, xp.argmax(y, axis=1) if "training_accuracy" in monitor else None)
        if evaluation is not None:
            needs_targets = "evaluation_cost" in monitor or "layer_speeds" in monitor
            targets = one_hot(evaluation[1], y.shape[1], y.dtype, xp) if needs_targets else None
            evaluation = (evaluation[0], targets, evaluation[1])
        if "layer_speeds" in monitor:
            rows = min(SPEED_ROWS, x.shape[0])
            on = evaluation[:2] if evaluation is not None else (x[:rows, ...], y[:rows, ...])
            measured = layer_speeds(self.model, weights, biases, on[0], on[1], xp)
            found |= {f"layer_speeds.{l}": measured[l] for l in range(measured.shape[0])}
        if self.test:
            found["correct"] = totals(
                self.model, weights, biases, test[0], None, test[1], xp, self.chunk_rows
            )[1]
        for prefix, part in (("training", training), ("evaluation", evaluation)):
            cost_name, accuracy_name = f"{prefix}_cost", f"{prefix}_accuracy"
            if cost_name not in monitor and accuracy_name not in monitor:
                continue
            rows = part[0].shape[0]
            cost_sum, correct = totals(
                self.model,
                weights,
                biases,
                part[0],
                part[1] if cost_name in monitor else None,
                part[2] if accuracy_name in monitor else None,
                xp,
                self.chunk_rows,
            )
            if cost_sum is not None:
                found[cost_name] = cost_sum / rows
                if u.lmbda:
                    found[cost_name] = found[cost_name] + rules.penalty(
                        weights, u.lmbda, rows, u.regularization, xp
                    )
            if correct is not None:
                found[accuracy_name] = correct  # a count: the host divides, so that it rounds once
        return xp.stack([xp.astype(found[name], xp.float64) for name in self.names])
