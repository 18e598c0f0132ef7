"""`bpgpu check`: does backpropagation give the right gradient on this installation's backends?

Three kinds of check, each a `Check` with a measured error and the limit it must stay under:

- **gradient**: backprop's gradient against central finite differences of the cost, entry by entry,
  in float64, for a small network in two activation/cost pairings;
- **the demon** (chapter 2's definition of the error δ^l_j = ∂C/∂z^l_j): for one example, a demon
  adds ±Δz to one neuron's weighted input in every layer in turn, and the change in the cost,
  (C(z + Δz) − C(z − Δz)) / 2, must be δ^l_j Δz with δ from backprop. It tests the definition, not
  the formulas: BP1 and BP2 have to be right for it to pass;
- **agreement**: another backend against NumPy from the same seed: initial parameters, the
  gradient, and the parameters after two epochs of SGD (float64 and float32).

Perturbed parameters are built on the host (as arrays of the NumPy backend) and moved to the backend
checked, as a user's data would be.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .backends import Backend, get_backend
from .backends.host_random import HostRandom
from .network import Network

Array = Any
SIZES = [4, 5, 3]
PAIRINGS = (("sigmoid", "sigmoid", "quadratic"), ("tanh", "sigmoid", "cross_entropy"))
FD_STEP = 1e-6
FD_LIMIT = 1e-6  # central differences err by O(step²) plus rounding / step: ~1e-9 here
AGREEMENT_LIMIT = {"float64": 1e-10, "float32": 1e-4}
DEMON_SIZES = [4, 6, 5, 3]  # two hidden layers, so that δ travels back through BP2 twice
DEMON_DZ = 1e-6


WHAT_WIDTH = 60  # the longest check's name: the columns stay in line as they are printed


@dataclass(frozen=True)
class Check:
    backend: str
    what: str
    error: float
    limit: float

    @property
    def passed(self) -> bool:
        return bool(self.error <= self.limit)  # NaN fails

    def __str__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        what = f"{self.what:<{WHAT_WIDTH}}"
        return f"{verdict}  {self.backend:<16} {what} error {self.error:.1e} (limit {self.limit:.0e})"


def run_checks(names: list[str]) -> Iterator[Check]:
    """Every check for the backends called `names` (agreement checks for all but "numpy")."""
    for name in names:
        backend = get_backend(name)
        for activation, output, cost in PAIRINGS:
            yield gradient_check(backend, activation, output, cost)
        yield demon_check(backend)
        if name != "numpy":
            yield from agreement_checks(backend, get_backend("numpy"))


def _data(rows: int = 8) -> tuple[Array, Array]:
    """Host features (rows, SIZES[0]) and labels (rows,), the same on every call."""
    random = HostRandom(7)
    return random.standard_normal((rows, SIZES[0]), "float64"), random.permutation(rows) % SIZES[-1]


def _relative(actual: list[Array], expected: list[Array]) -> float:
    """max |actual − expected| over every array, relative to the largest |expected| (host arrays)."""
    xp = get_backend("numpy").xp
    scale = max(float(xp.max(xp.abs(e))) for e in expected) or 1.0
    return max(float(xp.max(xp.abs(a - e))) for a, e in zip(actual, expected, strict=True)) / scale


def gradient_check(backend: Backend, activation: str, output: str, cost: str) -> Check:
    """Backprop's gradient against (C(p + h) − C(p − h)) / 2h for every weight and bias."""
    net = Network(
        SIZES,
        activation=activation,
        output_activation=output,
        cost=cost,
        backend=backend,
        dtype="float64",
        seed=3,
    )
    X, labels = _data()
    nabla_b, nabla_w = net.backprop(X, labels)
    analytic = [backend.to_numpy(g) for g in (*nabla_w, *nabla_b)]
    numeric, xp = [], get_backend("numpy").xp
    for group in ("weights", "biases"):
        for l, param in enumerate(getattr(net, group)):
            host = xp.asarray(backend.to_numpy(param), copy=True)
            grad = xp.zeros_like(host)
            for index in itertools.product(*(range(size) for size in host.shape)):
                costs = []
                for step in (FD_STEP, -FD_STEP):
                    moved = xp.asarray(host, copy=True)
                    moved[index] += step
                    getattr(net, group)[l] = backend.asarray(moved)
                    costs.append(net.cost(X, labels))
                grad[index] = (costs[0] - costs[1]) / (2 * FD_STEP)
            getattr(net, group)[l] = backend.asarray(host)
            numeric.append(grad)
    what = f"gradient = finite differences ({activation}/{output}, {cost})"
    return Check(backend.name, what, _relative(analytic, numeric), FD_LIMIT)


def demon_check(backend: Backend, dz: float = DEMON_DZ) -> Check:
    """The demon in every layer of a float64 network: ΔC / Δz against backprop's δ^l_j, neuron
    j = l mod width, for one example (whose δ is the bias gradient of its cost: BP3)."""
    net = Network(
        DEMON_SIZES,
        activation="tanh",
        output_activation="sigmoid",
        cost="cross_entropy",
        backend=backend,
        dtype="float64",
        seed=5,
    )
    X, labels = _data(rows=1)
    x, y = X[:, : DEMON_SIZES[0]], labels % DEMON_SIZES[-1]
    nabla_b, _ = net.backprop(x, y)
    deltas, changes = [], []
    for l, b in enumerate(nabla_b):
        j = l % DEMON_SIZES[l + 1]
        deltas.append(backend.to_numpy(b)[j : j + 1])
        up, down = net.cost(x, y, demon=(l, j, dz)), net.cost(x, y, demon=(l, j, -dz))
        changes.append(get_backend("numpy").xp.asarray([(up - down) / (2 * dz)]))
    return Check(backend.name, "the demon: ΔC = δ Δz in every layer", _relative(changes, deltas), FD_LIMIT)


def agreement_checks(backend: Backend, reference: Backend) -> Iterator[Check]:
    """`backend` against `reference` from the same seed: parameters, gradient, a training run."""
    X, labels = _data(rows=40)
    for dtype in ("float64", "float32"):
        nets = [Network(SIZES, backend=b, dtype=dtype, seed=11) for b in (backend, reference)]
        host = [[n.backend.to_numpy(p) for p in (*n.weights, *n.biases)] for n in nets]
        yield Check(backend.name, f"initial parameters = numpy's ({dtype})", _relative(*host), 0.0)
        grads = []
        for n in nets:
            nabla_b, nabla_w = n.backprop(X, labels)
            grads.append([n.backend.to_numpy(g) for g in (*nabla_w, *nabla_b)])
        yield Check(backend.name, f"gradient = numpy's ({dtype})", _relative(*grads), AGREEMENT_LIMIT[dtype])
        for n in nets:
            n.SGD((X, labels), epochs=2, mini_batch_size=8, eta=1.0)
        host = [[n.backend.to_numpy(p) for p in (*n.weights, *n.biases)] for n in nets]
        what = f"2 epochs of SGD = numpy's ({dtype})"
        yield Check(backend.name, what, _relative(*host), AGREEMENT_LIMIT[dtype])
