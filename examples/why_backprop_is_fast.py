"""Why backpropagation is fast: one backprop against one extra forward pass per parameter.

    python examples/why_backprop_is_fast.py [--sizes 784 30 10] [--rows 10] [--weights 500]
                                            [--seed 1] [--backend numpy]

Chapter 2 of Nielsen's book asks "in what sense is backpropagation a fast algorithm?" and answers
by comparison with the obvious alternative: estimate each partial derivative by a forward
difference, ∂C/∂w_j ≈ (C(w + ε e_j) − C(w)) / ε. That costs one extra forward pass (one `net.cost`)
for every weight and bias, while backpropagation gets all of them from one forward and one backward
pass. This script does both for a float64 network and a random mini-batch and prints:

- how many weights and biases the network has (23 860 for [784, 30, 10]);
- the largest difference between the two gradients on the entries compared, relative to the
  largest gradient entry (forward differences with ε = 1e-7 agree to about 1e-7 here);
- the time of one backprop, one forward pass, and the whole finite-difference gradient.

`--weights N` perturbs only N parameters, a share from every layer's weights and biases, times
them, and *extrapolates* the per-parameter time to all of them (it says so); `--weights all`
perturbs every one (a few seconds for [784, 30, 10] with NumPy). Either way the ratio is in
the thousands.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

import bpgpu
from bpgpu.cli import shared

EPSILON = 1e-7  # forward differences in float64: truncation error ~ ε, rounding error ~ 1e-16 / ε


def how_many(text: str) -> int | None:
    """`--weights`: a positive count, or "all" (None)."""
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")
    return int(text)


def mean_time(fn: Callable[[], object], backend: bpgpu.Backend, repeats: int = 50) -> float:
    """The average wall-clock time of `fn()` over `repeats` calls, in seconds (device work included).

    An average, like the finite-difference time, so that the two are compared fairly."""
    fn()  # warm up
    backend.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    backend.synchronize()
    return (time.perf_counter() - start) / repeats


def choose_entries(net: bpgpu.Network, count: int | None, rng: np.random.Generator) -> list[tuple]:
    """`(kind, l, index)` of the parameters to perturb: all of them, or about `count`, every array
    contributing a share proportional to its size (at least one entry each)."""
    arrays = [("weights", l, tuple(w.shape)) for l, w in enumerate(net.weights)]
    arrays += [("biases", l, tuple(b.shape)) for l, b in enumerate(net.biases)]
    total = sum(int(np.prod(shape)) for _, _, shape in arrays)
    entries = []
    for kind, l, shape in arrays:
        size = int(np.prod(shape))
        take = size if count is None else min(size, max(1, round(count * size / total)))
        for flat in np.sort(rng.choice(size, take, replace=False)):
            entries.append((kind, l, np.unravel_index(flat, shape)))
    return entries


def finite_difference(net: bpgpu.Network, X, Y, entries: list[tuple]) -> np.ndarray:
    """(C(p + ε e_j) − C(p)) / ε for every entry j: one `net.cost`, one forward pass, per entry."""
    cost = net.cost(X, Y)
    hosts = {(kind, l): net.backend.to_numpy(getattr(net, kind)[l]).copy() for kind, l, _ in entries}
    estimates = np.empty(len(entries))
    for i, (kind, l, index) in enumerate(entries):
        params, host = getattr(net, kind), hosts[kind, l]  # net.weights or net.biases, on the host
        original, value = params[l], host[index]
        host[index] = value + EPSILON
        params[l] = net.backend.asarray(host)  # the network with one parameter nudged...
        estimates[i] = (net.cost(X, Y) - cost) / EPSILON
        params[l], host[index] = original, value  # ...and put back
    return estimates


def main(argv: list[str] | None = None) -> dict:
    parser = shared.Parser(description=shared.summary(__doc__), debug=True)
    parser.add_argument(
        "--sizes", type=shared.positive_int, nargs="+", default=[784, 30, 10], help="layer widths"
    )
    parser.add_argument("--rows", type=shared.positive_int, default=10, help="examples in the mini-batch")
    parser.add_argument(
        "--weights", type=how_many, default=500, help="how many parameters to perturb, or 'all'"
    )
    parser.add_argument("--seed", type=shared.seed, default=1, help="seeds the parameters and the data")
    parser.add_argument("--backend", type=shared.backend_name, default="numpy", help=shared.BACKEND_HELP)
    args = parser.parse_args(argv)
    count = args.weights

    net = bpgpu.Network(args.sizes, backend=args.backend, dtype="float64", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    X = net.backend.asarray(rng.random((args.rows, args.sizes[0])))  # moved to the device once
    Y = net.backend.asarray(np.eye(args.sizes[-1])[rng.integers(0, args.sizes[-1], args.rows)])
    n_weights = sum(int(np.prod(w.shape)) for w in net.weights)
    n_biases = sum(int(np.prod(b.shape)) for b in net.biases)
    n_params = n_weights + n_biases
    print(f"network {args.sizes}, float64, {net.backend.name} on {net.backend.device}")
    print(f"{n_weights} weights + {n_biases} biases = {n_params} parameters; mini-batch of {args.rows}")

    # Backpropagation: every partial derivative at once.
    nabla_b, nabla_w = net.backprop(X, Y)
    gradient = {"weights": [net.backend.to_numpy(g) for g in nabla_w]}
    gradient["biases"] = [net.backend.to_numpy(g) for g in nabla_b]
    backprop_seconds = mean_time(lambda: net.backprop(X, Y), net.backend)
    forward_seconds = mean_time(lambda: net.cost(X, Y), net.backend)

    # Finite differences: one forward pass per parameter.
    entries = choose_entries(net, count, rng)
    start = time.perf_counter()
    estimates = finite_difference(net, X, Y, entries)
    fd_measured = time.perf_counter() - start
    fd_seconds = fd_measured / len(entries) * n_params
    exact = np.array([gradient[kind][l][index] for kind, l, index in entries])
    max_rel_diff = float(np.max(np.abs(estimates - exact)) / np.max(np.abs(exact)))
    ratio = fd_seconds / backprop_seconds

    print(f"compared {len(entries)} of {n_params} partial derivatives (finite differences, ε = {EPSILON:g})")
    print(f"max |finite difference − backprop| / max |backprop| = {max_rel_diff:.1e}")
    print(
        f"one backprop (all {n_params} derivatives): {backprop_seconds * 1e3:.3f} ms, "
        f"the time of {backprop_seconds / forward_seconds:.1f} forward passes"
    )
    print(f"one forward pass (net.cost): {forward_seconds * 1e3:.3f} ms")
    if count is None:
        print(f"finite differences, {n_params} extra forward passes: {fd_seconds:.2f} s (measured)")
    else:
        print(
            f"finite differences, {n_params} extra forward passes: {fd_seconds:.2f} s "
            f"(extrapolated from {len(entries)} passes in {fd_measured:.2f} s)"
        )
    print(f"backprop is {ratio:,.0f}× faster")
    return {
        "n_weights": n_weights,
        "n_biases": n_biases,
        "compared": len(entries),
        "max_rel_diff": max_rel_diff,
        "backprop_seconds": backprop_seconds,
        "forward_seconds": forward_seconds,
        "fd_seconds": fd_seconds,
        "extrapolated": count is not None,
        "ratio": ratio,
    }


if __name__ == "__main__":
    sys.exit(shared.run(main))
