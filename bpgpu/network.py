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
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from . import _validation as check
from . import backprop as bp
from . import checkpoint, rules
from .activations import ACTIVATIONS
from .backends import Backend, get_backend
from .backends.host_random import HostRandom
from .costs import COSTS
from .options import INITS, REGULARIZATIONS, Layers, Training
from .progress import ProgressBar
from .step import Model, Params, Step, Update, all_finite, confusion, layer_speeds, totals
from .training import EpochRecord, TrainingDivergedError, TrainingJob, step_size, train

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
        activation: an elementwise activation ("sigmoid", "tanh", "relu", "leaky_relu" or
            "identity") for the hidden layers and, unless `output_activation` is given, the output.
        output_activation: the output layer's activation (default: `activation`); also "softmax".
        cost: "quadratic" (½‖a − y‖², any output), "cross_entropy" (needs a sigmoid output) or
            "log_likelihood" (−ln a_y, needs a softmax output).
        backend: a name from `bpgpu.BACKEND_NAMES`, "auto", a `Backend`, or None (`BPGPU_BACKEND`,
            else "auto").
        dtype: "float32" or "float64", for parameters and all computation.
        seed: seeds initial parameters and shuffling; the same seed gives bit-identical initial
            parameters on every backend. None draws one (kept in `self.seed`).
        init: "normal" (every parameter N(0, 1), the book's network.py) or "scaled" (weights
            N(0, 1/n_in), biases N(0, 1), network2.py); "scaled" is "normal"'s draws / √n_in.
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
        init: str = "normal",
    ) -> None:
        self._configure(
            sizes,
            activation=activation,
            output_activation=output_activation,
            cost=cost,
            backend=backend,
            dtype=dtype,
            seed=seed,
            init=init,
        )
        # The book's order: every bias vector first, then every weight matrix. Biases are N(0, 1);
        # weights N(0, 1) ("normal", network.py) or N(0, 1/n_in) ("scaled", network2.py).
        pairs = list(zip(self.sizes[:-1], self.sizes[1:], strict=True))
        host_b = [self._random.standard_normal((n_out,), self.dtype) for _, n_out in pairs]
        host_w = [
            self._random.standard_normal((n_out, n_in), self.dtype, 1.0 if init == "normal" else n_in**-0.5)
            for n_in, n_out in pairs
        ]
        self.biases: list[Array] = [self.backend.asarray(b) for b in host_b]
        self.weights: list[Array] = [self.backend.asarray(w) for w in host_w]

    @classmethod
    def _without_parameters(cls, sizes: Sequence[int], **settings: Any) -> Network:
        """A network with every setting checked (its parameters would fit) but no parameters drawn:
        for `bpgpu.load`, which then sets `weights` and `biases` to the saved ones."""
        net = cls.__new__(cls)
        net._configure(sizes, **settings)
        return net

    def _configure(
        self,
        sizes: Sequence[int],
        *,
        activation: str,
        output_activation: str | None,
        cost: str,
        backend: str | Backend | None,
        dtype: str,
        seed: int | None,
        init: str,
    ) -> None:
        """Every setting of `__init__` checked and kept; no parameters yet."""
        self.sizes = check.layer_sizes(sizes)
        layers = Layers(activation, output_activation, cost)
        self.activation, self.output_activation = layers.activation, layers.output_activation
        self.cost_name = layers.cost
        self._cost = COSTS[self.cost_name]
        self.init = check.choice(init, "init", INITS)
        self.trained_on: str | None = None  # saved with the model: what `bpgpu evaluate` reads
        self._foreign = False  # loaded from weights without bpgpu's settings
        self.dtype = check.dtype_name(dtype)
        self._random = HostRandom(check.seed(seed))
        self.seed = self._random.seed
        self.backend = get_backend(backend)
        check.parameters_fit(self.sizes, self.dtype, self.backend)  # before drawing anything
        self.num_layers = len(self.sizes)
        hidden = [ACTIVATIONS[self.activation]] * (self.num_layers - 2)
        self._sigmas = [*hidden, ACTIVATIONS[self.output_activation]]
        self._model = Model(tuple(self._sigmas), self._cost)  # what the equations need

    def __repr__(self) -> str:
        return (
            f"Network({self.sizes}, activation={self.activation!r}, output_activation="
            f"{self.output_activation!r}, cost={self.cost_name!r}, init={self.init!r}, "
            f"backend={self.backend.name!r}, dtype={self.dtype!r}, seed={self.seed})"
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the network to one file at `path`, atomically; `bpgpu.load` reads it back.

        A name ending in `.safetensors` gets a safetensors file in PyTorch's `nn.Linear` layout
        (`layers.0.weight` (n_out, n_in), `layers.0.bias`, ...; see `bpgpu.checkpoint`), which
        PyTorch, JAX and Hugging Face tools read too; any other name gets bpgpu's `.npz` archive.
        Either holds the settings, the parameters and where the shuffle stream stands, so a loaded
        network gives the same outputs on any backend and continues training as this one would.
        """
        settings = {
            "sizes": self.sizes,
            "activation": self.activation,
            "output_activation": self.output_activation,
            "cost": self.cost_name,
            "init": self.init,
            "dtype": self.dtype,
            "seed": self.seed,
            "shuffle_state": self._random.shuffle_state,
            "data": self.trained_on,
        }
        to_host = self.backend.to_numpy
        checkpoint.save(path, settings, [to_host(w) for w in self.weights], [to_host(b) for b in self.biases])

    @property
    def xp(self) -> Any:
        """The array-API namespace of the network's backend."""
        return self.backend.xp

    # ---- validation of data at the boundary -------------------------------------------------

    def _x(self, data: Any, name: str = "X") -> Array:
        return check.features(self.backend, data, self.sizes[0], self.dtype, name)

    def _y(self, data: Any, n_rows: int, name: str = "Y", rows_of: str = "X") -> Array:
        rule = self._cost.targets
        return check.targets(self.backend, data, n_rows, self.sizes[-1], self.dtype, rule, name, rows_of)

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
    def cost(self, X: Any, Y: Any, *, demon: tuple[int, int, float] | None = None) -> float:
        """The mean cost C = (1/n) Σ_x C_x over the rows of `X` and `Y`.

        `demon = (layer, neuron, dz)` is chapter 2's demon: it adds `dz` to the weighted input z of
        that neuron (of every row) before its activation, `layer` counting from 0 for the first
        hidden layer as `weights` does. The cost then changes by about δ dz, where δ = ∂C/∂z is what
        backpropagation computes: for one row, `backprop`'s bias gradient (BP3).
        """
        x = self._x(X)
        y = self._y(Y, x.shape[0])
        if demon is not None:
            demon = self._demon(demon)
        value = bp.mean_cost(self.weights, self.biases, self._sigmas, self._cost, x, y, self.xp, demon)
        return float(value)

    @_on_device
    def layer_speeds(self, X: Any, Y: Any) -> list[float]:
        """Each layer's speed of learning (chapter 5): the Euclidean norm ‖∂C/∂b^l‖ of BP3's gradient
        of the mean cost over the rows of `X` and `Y`, one float per layer, the hidden layers first
        and the output layer last; the norms of `backprop(X, Y)`'s bias gradients, in one transfer."""
        x = self._x(X)
        y = self._y(Y, x.shape[0])
        speeds = layer_speeds(self._model, self.weights, self.biases, x, y, self.xp)
        return [float(s) for s in self.backend.to_numpy(speeds).tolist()]

    def _demon(self, demon: Any) -> tuple[int, int, float]:
        if not isinstance(demon, (tuple, list)) or len(demon) != 3:
            raise TypeError(f"demon must be (layer, neuron, dz); got {check.show(demon)}")
        layer = check.index(demon[0], "demon layer", len(self.weights))
        neuron = check.index(
            demon[1], f"demon neuron (layer {layer} has {self.sizes[layer + 1]})", self.sizes[layer + 1]
        )
        return layer, neuron, check.finite_real(demon[2], "demon dz")

    @_on_device
    def evaluate(self, X: Any, labels: Any) -> int:
        """How many rows of `X` the network classifies as `labels` (n,) (argmax of the output)."""
        x = self._x(X)
        y = self._labels(labels, x.shape[0])
        return int(self._count_correct(x, y))

    @_on_device
    def predict(self, X: Any) -> Any:
        """The class of each row of `X` (n, sizes[0]): the output neuron with the largest activation,
        or, for a network with one output, 1 where it is at least 0.5 and 0 elsewhere; a host
        `numpy.ndarray` of int64, shape (n,)."""
        x = self._x(X)
        out = self.feedforward(x)
        xp = self.xp
        classes = xp.argmax(out, axis=1) if out.shape[1] > 1 else xp.astype(out[:, 0] >= 0.5, xp.int64)
        return self.backend.to_numpy(classes).astype("int64")

    def score(self, X: Any, labels: Any) -> float:
        """The fraction of the rows of `X` that the network classifies as `labels` (n,): the
        accuracy, `evaluate(X, labels) / n`, as a float."""
        return self.evaluate(X, labels) / self._x(X).shape[0]

    @_on_device
    def confusion_matrix(self, X: Any, labels: Any) -> Any:
        """A (k, k) int64 host `numpy.ndarray` (k = sizes[-1]) whose [i, j] counts the rows of `X`
        labelled i (`labels`, (n,)) that the network classifies as j; its diagonal sums to
        `evaluate(X, labels)`, row i to the rows labelled i. Computed on the device, brought to the
        host in one transfer."""
        x = self._x(X)
        y = self._labels(labels, x.shape[0])
        counts = self.backend.to_numpy(confusion(self._model, self.weights, self.biases, x, y, self.xp))
        return counts.round().astype("int64")  # exact integers already; a host array's methods

    @_on_device
    def total_cost(self, X: Any, Y: Any, lmbda: float = 0.0, regularization: str = "l2") -> float:
        """The mean cost plus the regularisation penalty, as `network2.py`'s `total_cost`.

        L2 adds (λ/2n) Σ_w w², L1 adds (λ/n) Σ_w |w|, with n the number of rows of `X` (biases are
        not regularised). With `lmbda=0` this is `cost(X, Y)`.
        """
        lmbda = check.non_negative_real(lmbda, "lmbda")
        regularization = check.choice(regularization, "regularization", REGULARIZATIONS)
        x = self._x(X)
        y = self._y(Y, x.shape[0])
        value = bp.mean_cost(self.weights, self.biases, self._sigmas, self._cost, x, y, self.xp)
        if lmbda:
            value = value + rules.penalty(self.weights, lmbda, x.shape[0], regularization, self.xp)
        return float(value)

    @_on_device
    def update_mini_batch(
        self, X: Any, Y: Any, eta: float, lmbda: float = 0.0, n: int | None = None, regularization: str = "l2"
    ) -> None:
        """One gradient-descent step on the mean cost of the rows of `X`, `Y` with rate `eta`.

        With `lmbda > 0` the weights also decay: w ← (1 − ηλ/n) w − η∇w for L2, or
        w ← w − (ηλ/n) sgn(w) − η∇w for L1, where `n` is the size of the whole training set
        (default: the rows of `X`).

        Raises `TrainingDivergedError` (a `ValueError`), leaving the network unchanged, when the step
        would make a parameter NaN or infinite.
        """
        eta = check.positive_real(eta, "eta")
        lmbda = check.non_negative_real(lmbda, "lmbda")
        regularization = check.choice(regularization, "regularization", REGULARIZATIONS)
        x = self._x(X)
        y = self._y(Y, x.shape[0])
        n = x.shape[0] if n is None else check.positive_int(n, "n")
        step = Step(self._model, Update(lmbda, n, regularization), self.xp)
        weights, biases, _ = self.backend.compile(step)(Params(self.weights, self.biases), x, y, eta)
        if not bool(all_finite([*weights, *biases], self.xp)):
            raise TrainingDivergedError(None, step_size(eta, lmbda), "the network is unchanged")
        self.weights, self.biases = weights, biases

    @_on_device
    def SGD(  # noqa: N802 - the book's name
        self,
        training_data: tuple[Any, Any],
        epochs: int,
        mini_batch_size: int,
        eta: float,
        test_data: tuple[Any, Any] | None = None,
        *,
        lmbda: float = 0.0,
        regularization: str = "l2",
        momentum: float = 0.0,
        evaluation_data: tuple[Any, Any] | None = None,
        monitor: Sequence[str] = (),
        early_stopping: int | None = None,
        eta_schedule: str | None = None,
        patience: int | None = None,
        verbose: bool = False,
        callback: Callable[[EpochRecord], None] | None = None,
        progress: Callable[[int, int], None] | bool | None = None,
        comm: Any = None,
    ) -> list[EpochRecord]:
        """Mini-batch stochastic gradient descent over `training_data = (X, Y)`, as the book's
        `network.SGD` and `network2.SGD`; returns one `EpochRecord` per epoch run.

        Each epoch shuffles the rows on the device (an order drawn from the network's seed) and takes
        one step per `mini_batch_size` rows, the last batch perhaps smaller. Chapter 3: `lmbda` and
        `regularization` ("l2", "l1"; n = training rows), `momentum` μ (v ← μv − η∇C, p ← p + v).

        Reports: `test_data = (X, labels)` counts correct test rows; `monitor` names any of
        `MONITORS` (training and evaluation cost and accuracy, over `evaluation_data`, and
        "layer_speeds"), all brought to the host in one transfer an epoch. `verbose` prints each
        record, `callback(record)` receives it, `progress(rows_done, rows)` comes 10 to 20 times an
        epoch (`progress=True`: the command's bar). Stopping, judged by evaluation accuracy:
        `early_stopping=n` (keeps the best epoch's parameters), `eta_schedule="halve"` with
        `patience` (`bpgpu.stopping`). `comm`: an MPI communicator (`bpgpu.distributed`).

        Everything is validated before the first step (`bpgpu.options.Training`). A diverging epoch
        raises `TrainingDivergedError` with the network as the epoch began; Ctrl-C raises
        `TrainingInterrupted` once the network holds a whole step; any other error leaves the last
        whole finite step and a note saying which. docs/api.md has the details.
        """
        bar = ProgressBar(check.positive_int(epochs, "epochs")) if progress is True else None
        if isinstance(progress, bool):
            progress = bar  # shown from the first report on; None for False
        parallel = None
        if comm is not None:
            from .distributed import DataParallel

            parallel = DataParallel(comm, self.backend)
        try:
            options = Training(
                epochs,
                mini_batch_size,
                eta,
                lmbda,
                regularization,
                momentum,
                monitor,
                early_stopping,
                eta_schedule,
                patience,
            )
            job = self._job(training_data, test_data, evaluation_data, options, callback, progress)
        except Exception as error:
            if parallel is None:
                raise
            parallel.raise_together(error)  # every rank ends, none waits in a collective
        if parallel is not None:
            parallel.raise_together(None)
            parallel.check_same(self, job, self._random.shuffle_state)
        try:
            return train(
                self._model,
                self.backend,
                self._random,
                self.weights,
                self.biases,
                job,
                commit=self._commit,
                parallel=parallel,
                verbose=verbose,
                callback=callback,
                progress=progress,
            )
        finally:
            if bar is not None:
                bar.close()

    def _job(
        self,
        training_data: Any,
        test_data: Any,
        evaluation_data: Any,
        options: Training,
        callback: Any,
        progress: Any,
    ) -> TrainingJob:
        """`SGD`'s data validated and on the device, with its checked `options`: everything is
        checked before any step."""
        check.optional_callable(callback, "callback")
        check.optional_callable(progress, "progress")
        X, Y = check.pair(training_data, "training_data", "(X, Y)")
        x = self._x(X, "training_data X")
        y = self._y(Y, x.shape[0], "training_data Y", "training_data X")
        o = options
        update = Update(o.lmbda, x.shape[0], o.regularization, o.momentum)  # n: the training rows
        test = self._labelled(test_data, "test_data")
        evaluation = self._labelled(evaluation_data, "evaluation_data")
        monitor = o.monitor
        if evaluation is None and (o.watching or any(m.startswith("evaluation") for m in monitor)):
            needs = [m for m in monitor if m.startswith("evaluation")]
            needs += ["early_stopping"] * (o.early_stopping is not None)
            needs += ["eta_schedule"] * (o.eta_schedule is not None)
            raise ValueError(f"{', '.join(needs)} need evaluation_data=(X, labels); got None")
        if o.watching and "evaluation_accuracy" not in monitor:
            monitor = (*monitor, "evaluation_accuracy")
        return TrainingJob(x, y, options, update, monitor, test, evaluation)

    # ---- internals: validated device arrays only ------------------------------------------------

    def _commit(self, weights: Sequence[Array], biases: Sequence[Array]) -> None:
        """Replace every parameter at once (the training loop's `commit`)."""
        self.weights, self.biases = list(weights), list(biases)

    def _count_correct(self, x: Array, labels: Array) -> Array:
        return self._totals(x, None, labels)[1]

    def _totals(self, x: Array, y: Array | None, labels: Array | None) -> tuple[Array | None, Array | None]:
        return totals(self._model, self.weights, self.biases, x, y, labels, self.xp)

    def _labelled(self, data: Any, name: str) -> tuple[Array, Array] | None:
        """Validated `(X, labels)` as device arrays, or None."""
        if data is None:
            return None
        X, labels = check.pair(data, name, "(X, labels)")
        x = self._x(X, f"{name} X")
        return x, self._labels(labels, x.shape[0], f"{name} labels", f"{name} X")


def load(path: str | os.PathLike[str], backend: str | Backend | None = None, **settings: Any) -> Network:
    """The network saved at `path` by `Network.save` (`.safetensors` or `.npz`, told apart by the
    file's first bytes), on `backend` (default: `BPGPU_BACKEND`, else "auto").

    Outputs equal those of the saved network on every backend (the parameters are the saved bits).
    Training can continue where it stopped: the shuffle stream resumes from its saved state. The
    formats and their checks are in `bpgpu.checkpoint`.

    A safetensors file without bpgpu's metadata, such as a PyTorch state dict of `nn.Linear` layers
    saved as `layers.{l}.weight` / `layers.{l}.bias`, loads too: its tensors give the sizes and the
    dtype, and `settings` (any of `activation`, `output_activation`, `cost`, `init`, `seed`, as for
    `Network`) the rest, with `Network`'s defaults. A bpgpu file has its own settings: passing any
    for one is a `ValueError`.

    Raises:
        FileNotFoundError: nothing at `path`.
        ValueError: the file is not a bpgpu model, is damaged, or comes from a newer bpgpu (the
            message starts with the file's name); also a FIFO, a device or a directory.
    """
    unknown = sorted(settings.keys() - set(checkpoint.FOREIGN_SETTINGS))
    if unknown:
        raise TypeError(
            f"load() got unexpected settings {unknown}; it takes {list(checkpoint.FOREIGN_SETTINGS)}"
        )
    target = get_backend(backend)  # a bad backend is the caller's mistake, not the file's
    for key, names in (("activation", ACTIVATIONS), ("output_activation", ACTIVATIONS), ("cost", COSTS)):
        if settings.get(key) is not None:  # so are bad settings: refused before the file is read
            check.choice(settings[key], key, tuple(names))
    if "init" in settings:
        check.choice(settings["init"], "init", INITS)
    if settings.get("seed") is not None:
        check.seed(settings["seed"])
    saved = checkpoint.read(path, settings)
    kept = saved.settings
    try:  # the file's settings are checked; what is left is whether the parameters fit the device
        net = Network._without_parameters(
            saved.sizes,
            activation=kept["activation"],
            output_activation=kept["output_activation"],
            cost=kept["cost"],
            init=kept["init"],
            dtype=saved.dtype,
            seed=kept["seed"],
            backend=target,
        )
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{os.fspath(path)}: invalid model settings: {exc}") from exc
    if saved.native:
        net._random.shuffle_state = kept["shuffle_state"]
    net.trained_on, net._foreign = kept["data"], not saved.native
    with net.backend.activate():
        net._commit(
            [net.backend.asarray(w) for w in saved.weights], [net.backend.asarray(b) for b in saved.biases]
        )
    return net
