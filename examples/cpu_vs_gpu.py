"""The same training run on NumPy (CPU) and on CuPy (GPU), side by side, epoch by epoch.

    python examples/cpu_vs_gpu.py [--epochs 5] [--seed 1] [--dtype float32] [--other cupy]

Trains the book's chapter-1 network, [64, 30, 10] with mini-batches of 10 and eta = 3.0, on the
embedded digits twice from the same seed: once with NumPy and once with `--other` (CuPy by default).
The same seed gives the same initial parameters and the same shuffles on every backend, so the two
accuracy curves should match (float32 rounding on another device may move a count by a row in a
long run). It prints both curves with each epoch's seconds, then the largest difference between the
two runs' final weights and biases.

A network this small, fed 10 examples at a time, is limited by launching GPU kernels, not by
arithmetic, so the GPU is not faster here; the point is that the same code gives the same answers.

Without a working GPU it says in one line why CuPy is not available, trains on NumPy alone and
exits normally. `--other torch` or `--other array_api_strict` compares with those backends instead.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import bpgpu
from bpgpu.cli import shared
from bpgpu.datasets import load_digits


def train(backend: bpgpu.Backend, args: argparse.Namespace) -> tuple[bpgpu.Network, list]:
    data = load_digits()
    net = bpgpu.Network([64, args.hidden, 10], backend=backend, dtype=args.dtype, seed=args.seed)
    history = net.SGD(
        (data.train.X, data.train.y),
        epochs=args.epochs,
        mini_batch_size=args.batch_size,
        eta=args.eta,
        test_data=(data.test.X, data.test.y),
    )
    return net, history


def row(first: object, cells: list[str]) -> str:
    """One line of the side-by-side table."""
    return (f"{first:<7}" + "".join(f"{cell:<24}" for cell in cells)).rstrip()


def largest_difference(a: bpgpu.Network, b: bpgpu.Network) -> float:
    """max |p_a − p_b| over every weight and bias of two networks, compared on the host."""
    pairs = zip(a.weights + a.biases, b.weights + b.biases, strict=True)
    return max(float(np.max(np.abs(a.backend.to_numpy(p) - b.backend.to_numpy(q)))) for p, q in pairs)


def main(argv: list[str] | None = None) -> dict:
    parser = shared.Parser(description=shared.summary(__doc__), debug=True)
    parser.add_argument("--epochs", type=shared.positive_int, default=5, help="passes over the data")
    parser.add_argument("--seed", type=shared.seed, default=1, help="seeds parameters and shuffles")
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "float64"], help="of the arithmetic"
    )
    parser.add_argument(
        "--other", default="cupy", choices=["cupy", "torch", "array_api_strict"], help="compared with NumPy"
    )
    parser.add_argument("--hidden", type=shared.positive_int, default=30, help="hidden neurons")
    parser.add_argument("--batch-size", type=shared.positive_int, default=10, help="mini-batch size")
    parser.add_argument("--eta", type=shared.positive_float, default=3.0, help="learning rate")
    args = parser.parse_args(argv)

    cpu = bpgpu.get_backend("numpy")
    try:
        other = bpgpu.get_backend(args.other)
    except RuntimeError as exc:
        other, reason = None, str(exc)
        print(f"{args.other} is not available, so training on NumPy only: {reason}")

    runs = [(cpu, *train(cpu, args))]
    if other is not None:
        runs.append((other, *train(other, args)))

    print(f"[64, {args.hidden}, 10], {args.dtype}, seed {args.seed}; test digits correct after each epoch")
    print("; ".join(f"{b.name} on {b.device}" for b, _, _ in runs))
    print(row("epoch", [b.name for b, _, _ in runs]))
    for epoch in range(args.epochs):
        records = [history[epoch] for *_, history in runs]
        print(row(epoch, [f"{r.correct:3} / {r.total}  {r.seconds:6.2f} s" for r in records]))
    print(row("total", [f"{'':11}{sum(r.seconds for r in h):6.2f} s" for *_, h in runs]))

    result = {"numpy": runs[0][2], "other": None, "max_param_diff": None, "skipped": None}
    if other is None:
        result["skipped"] = reason
        return result
    diff = largest_difference(runs[0][1], runs[1][1])
    print(f"largest difference of the final weights and biases, numpy vs {other.name}: {diff:.1e}")
    result.update(other=runs[1][2], max_param_diff=diff)
    return result


if __name__ == "__main__":
    sys.exit(shared.run(main))
