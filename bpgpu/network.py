"""`Network`: a fully connected network trained by backpropagation and mini-batch SGD.

The public face of the equations in `backprop`: it validates what users pass, keeps the parameters
on one backend's device, and runs the training loop. Conventions, fixed across bpgpu:

- data at the API has one example per row: `X` is (n, sizes[0]); targets `Y` are (n, sizes[-1]) or
  integer class labels (n,);
- `weights[l]` is (sizes[l+1], sizes[l]) and `biases[l]` is (sizes[l+1],), as in the book.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from . import _validation as check
from . import backprop as bp
from .activations import ACTIVATIONS
from .backends import Backend, get_backend
from .backends.host import HostRandom
from .costs import COSTS

Array = Any
F = TypeVar("F", bound=Callable[..., Any])


def _on_device(method: F) -> F:
    """Run a public method with the network's device current (it matters for CuPy on many GPUs)."""

    @functools.wraps(method)
    def wrapper(self: Network, *args: Any, **kwargs: Any) -> Any:
        with self.backend.activate():
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch of `Network.SGD` did. `correct`/`total` are None without test data."""

    epoch: int
    seconds: float
    correct: int | None = None
    total: int | None = None

    @property
    def accuracy(self) -> float | None:
        """Fraction of test rows classified correctly, or None without test data."""
        return None if self.total is None else self.correct / self.total

    def __str__(self) -> str:
        if self.total is None:
            return f"Epoch {self.epoch} complete ({self.seconds:.2f} s)"
        return f"Epoch {self.epoch}: {self.correct} / {self.total} ({self.seconds:.2f} s)"


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
        verbose: bool = False,
        callback: Callable[[EpochRecord], None] | None = None,
    ) -> list[EpochRecord]:
        """Mini-batch stochastic gradient descent over `training_data = (X, Y)`.

        Every epoch shuffles the rows (on the device, in an order drawn from the network's seed),
        then takes one `update_mini_batch` step per `mini_batch_size` rows; the last batch may be
        smaller. With `test_data = (X, labels)` each epoch records how many test rows are classified
        correctly. Returns one `EpochRecord` per epoch; `verbose` prints each, `callback` receives
        each. Everything is validated before the first step.
        """
        epochs = check.positive_int(epochs, "epochs")
        mini_batch_size = check.positive_int(mini_batch_size, "mini_batch_size")
        eta = check.positive_real(eta, "eta")
        check.optional_callable(callback, "callback")
        X, Y = check.pair(training_data, "training_data", "(X, Y)")
        x = self._x(X, "training_data X")
        y = self._y(Y, x.shape[0], "training_data Y", "training_data X")
        test = None
        if test_data is not None:
            tx, ty = check.pair(test_data, "test_data", "(X, labels)")
            tx = self._x(tx, "test_data X")
            test = (tx, self._labels(ty, tx.shape[0], "test_data labels", "test_data X"))

        xp, n, history = self.xp, x.shape[0], []
        for epoch in range(epochs):
            start = time.perf_counter()
            order = self.backend.asarray(self._random.permutation(n))
            xs, ys = xp.take(x, order, axis=0), xp.take(y, order, axis=0)
            for k in range(0, n, mini_batch_size):
                end = min(k + mini_batch_size, n)  # the standard leaves out-of-range stops undefined
                self._step(xs[k:end, ...], ys[k:end, ...], eta)
            correct = None if test is None else int(self._count_correct(*test))  # one sync
            self.backend.synchronize()
            record = EpochRecord(
                epoch, time.perf_counter() - start, correct, None if test is None else test[0].shape[0]
            )
            history.append(record)
            if verbose:
                print(record, flush=True)
            if callback is not None:
                callback(record)
        return history

    # ---- internals: validated device arrays only ------------------------------------------------

    def _step(self, x: Array, y: Array, eta: float) -> None:
        nabla_b, nabla_w = bp.backprop(self.weights, self.biases, self._sigmas, self._cost, x, y, self.xp)
        self.weights = bp.sgd_step(self.weights, nabla_w, eta)
        self.biases = bp.sgd_step(self.biases, nabla_b, eta)

    def _count_correct(self, x: Array, labels: Array) -> Array:
        _, activations = bp.feedforward(self.weights, self.biases, self._sigmas, x, self.xp)
        return bp.count_correct(activations[-1], labels, self.xp)
