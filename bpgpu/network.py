"""`Network`: a fully connected network trained by backpropagation and mini-batch SGD.

The public face of the equations in `backprop`: it validates what users pass, keeps the parameters
on one backend's device, and runs the training loop. Conventions, fixed across bpgpu:

- data at the API has one example per row: `X` is (n, sizes[0]); targets `Y` are (n, sizes[-1]) or
  integer class labels (n,);
- `weights[l]` is (sizes[l+1], sizes[l]) and `biases[l]` is (sizes[l+1],), as in the book.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import _validation as check
from . import backprop as bp
from . import checkpoint
from .activations import ACTIVATIONS
from .backends import Backend, get_backend
from .backends.host import HostRandom
from .costs import COSTS
from .training import MONITORS, EpochRecord, totals

Array = Any
F = TypeVar("F", bound=Callable[..., Any])


def _on_device(method: F) -> F:
    """Run a public method with the network's device current (it matters for CuPy on many GPUs)."""

    @functools.wraps(method)
    def wrapper(self: Network, *args: Any, **kwargs: Any) -> Any:
        with self.backend.activate():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class Network:
    """A feedforward network of `sizes` neurons per layer, e.g. `Network([784, 30, 10])`.

    Args:
        sizes: at least two positive layer widths, input first.
        activation: "sigmoid", "tanh" or "relu", for the hidden layers and, unless
            `output_activation` is given, the output layer.
        output_activation: the output layer's activation (default: `activation`).
        cost: "quadratic" (½‖a − y‖²) or "cross_entropy" (needs a sigmoid output).
        backend: a name from `bpgpu.BACKEND_NAMES`, "auto", a `Backend`, or None (`BPGPU_BACKEND`,
            else "auto").
        dtype: "float32" or "float64", for parameters and all computation.
        seed: seeds initial parameters and shuffling; the same seed gives bit-identical initial
            parameters on every backend. None draws one (kept in `self.seed`).
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        activation: str = "sigmoid",
        output_activation: str | None = None,
        cost: str = "quadratic",
        backend: str | Backend | None = None,
        dtype: str = "float32",
        seed: int | None = None,
    ) -> None:
        self.sizes = check.layer_sizes(sizes)
        self.activation = check.choice(activation, "activation", tuple(ACTIVATIONS))
        self.output_activation = check.choice(
            activation if output_activation is None else output_activation,
            "output_activation",
            tuple(ACTIVATIONS),
        )
        self.cost_name = check.choice(cost, "cost", tuple(COSTS))
        self._cost = COSTS[self.cost_name]
        allowed = self._cost.output_activations
        if allowed is not None and self.output_activation not in allowed:
            raise ValueError(
                f"cost {cost!r} needs an output activation in {allowed} (outputs in (0, 1)); "
                f"got output activation {self.output_activation!r}"
            )
        self.dtype = check.dtype_name(dtype)
        self._random = HostRandom(check.seed(seed))
        self.seed = self._random.seed
        self.backend = get_backend(backend)
        self.num_layers = len(self.sizes)
        hidden = [ACTIVATIONS[self.activation]] * (self.num_layers - 2)
        self._sigmas = [*hidden, ACTIVATIONS[self.output_activation]]
        # The book's network.py: every bias vector first, then every weight matrix, all N(0, 1).
        pairs = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        host_b = [self._random.standard_normal((n_out,), self.dtype) for _, n_out in pairs]
        host_w = [self._random.standard_normal((n_out, n_in), self.dtype) for n_in, n_out in pairs]
        self.biases: list[Array] = [self.backend.asarray(b) for b in host_b]
        self.weights: list[Array] = [self.backend.asarray(w) for w in host_w]

    def __repr__(self) -> str:
        return (
            f"Network({self.sizes}, activation={self.activation!r}, output_activation="
            f"{self.output_activation!r}, cost={self.cost_name!r}, backend={self.backend.name!r}, "
            f"dtype={self.dtype!r}, seed={self.seed})"
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the network to one `.npz` file at `path`, atomically; `bpgpu.load` reads it back.

        The file holds the settings, the parameters and where the shuffle stream stands, so a loaded
        network gives the same outputs on any backend and continues training as this one would.
        """
        checkpoint.save(self, path)

    @property
    def xp(self) -> Any:
        """The array-API namespace of the network's backend."""
        return self.backend.xp

    # ---- validation of data at the boundary -------------------------------------------------

    def _x(self, data: Any, name: str = "X") -> Array:
        return check.features(self.backend, data, self.sizes[0], self.dtype, name)

    def _y(self, data: Any, n_rows: int, name: str = "Y", rows_of: str = "X") -> Array:
        unit = self.cost_name == "cross_entropy"
        return check.targets(self.backend, data, n_rows, self.sizes[-1], self.dtype, unit, name, rows_of)

    def _labels(self, data: Any, n_rows: int, name: str = "labels", rows_of: str = "X") -> Array:
        return check.labels(self.backend, data, n_rows, self.sizes[-1], name, rows_of)

    # ---- the public operations ----------------------------------------------------------------

    @_on_device
    def feedforward(self, X: Any) -> Array:
        """The output activations for the rows of `X` (n, sizes[0]): (n, sizes[-1])."""
        x = self._x(X)
        _, activations = bp.feedforward(self.weights, self.biases, self._sigmas, x, self.xp)
        return activations[-1]

    @_on_device
    def backprop(self, X: Any, Y: Any) -> tuple[list[Array], list[Array]]:
        """`(nabla_b, nabla_w)`: the gradient of the mean cost over the rows of `X` and `Y`."""
        x = self._x(X)
        y = self._y(Y, x.shape[0])
        return bp.backprop(self.weights, self.biases, self._sigmas, self._cost, x, y, self.xp)

    @_on_device
    def cost(self, X: Any, Y: Any) -> float:
        """The mean cost C = (1/n) Σ_x C_x over the rows of `X` and `Y`."""
        x = self._x(X)
        y = self._y(Y, x.shape[0])
        return float(bp.mean_cost(self.weights, self.biases, self._sigmas, self._cost, x, y, self.xp))

    @_on_device
    def evaluate(self, X: Any, labels: Any) -> int:
        """How many rows of `X` the network classifies as `labels` (n,) (argmax of the output)."""
        x = self._x(X)
        y = self._labels(labels, x.shape[0])
        return int(self._count_correct(x, y))

    @_on_device
    def update_mini_batch(self, X: Any, Y: Any, eta: float) -> None:
        """One gradient-descent step on the mean cost of the rows of `X`, `Y` with rate `eta`."""
        eta = check.positive_real(eta, "eta")
        x = self._x(X)
        y = self._y(Y, x.shape[0])
        self._step(x, y, eta)

    @_on_device
    def SGD(  # noqa: N802 - the book's name
        self,
        training_data: tuple[Any, Any],
        epochs: int,
        mini_batch_size: int,
        eta: float,
        test_data: tuple[Any, Any] | None = None,
        *,
        evaluation_data: tuple[Any, Any] | None = None,
        monitor: Sequence[str] = (),
        verbose: bool = False,
        callback: Callable[[EpochRecord], None] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[EpochRecord]:
        """Mini-batch stochastic gradient descent over `training_data = (X, Y)`.

        Every epoch shuffles the rows (on the device, in an order drawn from the network's seed),
        then takes one `update_mini_batch` step per `mini_batch_size` rows; the last batch may be
        smaller. With `test_data = (X, labels)` each epoch records how many test rows are classified
        correctly. `monitor` names any of "training_cost", "training_accuracy" (over the training
        rows; accuracy against argmax of Y) and "evaluation_cost", "evaluation_accuracy" (over
        `evaluation_data = (X, labels)`), recorded every epoch; all of an epoch's numbers reach the
        host in one transfer. Returns one `EpochRecord` per epoch; `verbose` prints each, `callback`
        receives each, `progress(rows_done, rows)` is called after every mini-batch (it gets plain
        ints, so it adds no device synchronisation). Everything is validated before the first step.
        """
        epochs = check.positive_int(epochs, "epochs")
        mini_batch_size = check.positive_int(mini_batch_size, "mini_batch_size")
        eta = check.positive_real(eta, "eta")
        monitor = check.names(monitor, "monitor", MONITORS)
        check.optional_callable(callback, "callback")
        check.optional_callable(progress, "progress")
        X, Y = check.pair(training_data, "training_data", "(X, Y)")
        x = self._x(X, "training_data X")
        y = self._y(Y, x.shape[0], "training_data Y", "training_data X")
        test = self._labelled(test_data, "test_data")
        evaluation = self._labelled(evaluation_data, "evaluation_data")
        if evaluation is None and any(m.startswith("evaluation") for m in monitor):
            raise ValueError(f"monitor {monitor} asks for evaluation metrics but evaluation_data is None")

        xp, n, history = self.xp, x.shape[0], []
        measured = {"training": (x, y, xp.argmax(y, axis=1) if "training_accuracy" in monitor else None)}
        if evaluation is not None:
            ex, labels = evaluation
            ey = None
            if "evaluation_cost" in monitor:
                ey = bp.one_hot(labels, self.sizes[-1], self.backend.dtype(self.dtype), xp)
            measured["evaluation"] = (ex, ey, labels)
        for epoch in range(epochs):
            start = time.perf_counter()
            order = self.backend.asarray(self._random.permutation(n))
            xs, ys = xp.take(x, order, axis=0), xp.take(y, order, axis=0)
            del order
            for k in range(0, n, mini_batch_size):
                end = min(k + mini_batch_size, n)  # the standard leaves out-of-range stops undefined
                self._step(xs[k:end, ...], ys[k:end, ...], eta)
                if progress is not None:
                    progress(end, n)
            del xs, ys
            record = self._epoch_record(epoch, start, monitor, measured, test)
            history.append(record)
            if verbose:
                print(record, flush=True)
            if callback is not None:
                callback(record)
        return history

    # ---- internals: validated device arrays only ------------------------------------------------

    def _step(self, x: Array, y: Array, eta: float) -> None:
        nabla_b, nabla_w = bp.backprop(self.weights, self.biases, self._sigmas, self._cost, x, y, self.xp)
        # One assignment for both, so that an interrupt (Ctrl-C) never leaves half a step behind.
        self.weights, self.biases = (
            bp.sgd_step(self.weights, nabla_w, eta),
            bp.sgd_step(self.biases, nabla_b, eta),
        )

    def _count_correct(self, x: Array, labels: Array) -> Array:
        return self._totals(x, None, labels)[1]

    def _totals(self, x: Array, y: Array | None, labels: Array | None) -> tuple[Array | None, Array | None]:
        return totals(self.weights, self.biases, self._sigmas, self._cost, x, y, labels, self.xp)

    def _labelled(self, data: Any, name: str) -> tuple[Array, Array] | None:
        """Validated `(X, labels)` as device arrays, or None."""
        if data is None:
            return None
        X, labels = check.pair(data, name, "(X, labels)")
        x = self._x(X, f"{name} X")
        return x, self._labels(labels, x.shape[0], f"{name} labels", f"{name} X")

    def _epoch_record(
        self,
        epoch: int,
        start: float,
        monitor: tuple[str, ...],
        measured: dict[str, tuple[Array, Array | None, Array | None]],
        test: tuple[Array, Array] | None,
    ) -> EpochRecord:
        """Measure what the epoch reports and bring it to the host in one transfer."""
        xp, wanted = self.xp, {}
        if test is not None:
            wanted["correct"] = self._count_correct(*test)
        for prefix, (x, y, labels) in measured.items():
            cost_name, accuracy_name = f"{prefix}_cost", f"{prefix}_accuracy"
            if cost_name in monitor or accuracy_name in monitor:
                cost_sum, correct = self._totals(
                    x, y if cost_name in monitor else None, labels if accuracy_name in monitor else None
                )
                if cost_sum is not None:
                    wanted[cost_name] = cost_sum / x.shape[0]
                if correct is not None:
                    wanted[accuracy_name] = xp.astype(correct, xp.float64) / x.shape[0]
        values = {}
        if wanted:
            stacked = xp.stack([xp.astype(v, xp.float64) for v in wanted.values()])
            values = dict(zip(wanted, self.backend.to_numpy(stacked).tolist(), strict=True))
        self.backend.synchronize()
        if test is not None:
            values["correct"], values["total"] = int(values["correct"]), test[0].shape[0]
        return EpochRecord(epoch, time.perf_counter() - start, **values)
