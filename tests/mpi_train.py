"""Run by tests/test_distributed.py under `mpiexec -n N`: train on synthetic data, save the parameters.

    mpiexec -n 3 python tests/mpi_train.py OUT [--rows 50] [--batch 7] [--lmbda L] [--momentum M]
        [--shard] [--seed-by-rank] [--perturb-rank R] [--swap-labels-rank R] [--patience-by-rank]
        [--bad-features-rank R] [--raise-in-callback-rank R]

Every rank writes OUT.rank<R>.npz with its final weights and biases (w0, w1, ..., b0, b1, ...).
`--seed-by-rank`, `--perturb-rank`, `--swap-labels-rank` and `--patience-by-rank` make the ranks
disagree on purpose (the fingerprint check); `--bad-features-rank` makes one rank's input invalid and
`--raise-in-callback-rank` one rank fail in the middle of training (every rank must end, none hang).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from mpi4py import MPI

import bpgpu
from bpgpu import distributed

SIZES = [5, 4, 3]


def data(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic float64 features and labels, the same for every caller."""
    rng = np.random.default_rng(7)
    return rng.standard_normal((rows, SIZES[0])), rng.integers(0, SIZES[-1], size=rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--batch", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lmbda", type=float, default=0.0)
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--shard", action="store_true")
    parser.add_argument("--seed-by-rank", action="store_true")
    parser.add_argument("--perturb-rank", type=int)
    parser.add_argument("--swap-labels-rank", type=int)
    parser.add_argument("--patience-by-rank", action="store_true")
    parser.add_argument("--bad-features-rank", type=int)
    parser.add_argument("--raise-in-callback-rank", type=int)
    args = parser.parse_args()

    world = MPI.COMM_WORLD
    rank = world.Get_rank()
    X, labels = data(args.rows)
    if args.perturb_rank == rank:
        X[3, 2] += 1e-3
    if args.swap_labels_rank == rank:  # the same class counts, so every row and column count agrees
        first = int(np.flatnonzero(labels != labels[0])[0])
        labels[[0, first]] = labels[[first, 0]]
    if args.bad_features_rank == rank:
        X = X[:, :-1]
    options = {}
    if args.patience_by_rank:
        options = {"evaluation_data": data(20), "eta_schedule": "halve", "patience": 1 + rank}

    def callback(record: bpgpu.EpochRecord) -> None:
        if args.raise_in_callback_rank == rank and record.epoch == 1:
            raise RuntimeError(f"callback failed on rank {rank}")

    comm = distributed.Communicator(world, shard=args.shard)
    if args.shard:
        X, labels = distributed.shard(X, labels, comm)
    net = bpgpu.Network(SIZES, dtype="float64", seed=1 + rank if args.seed_by_rank else 1)
    try:
        train(net, X, labels, args, comm, callback, options)
    except ValueError as error:  # each rank writes its own message: stderr lines of ranks interleave
        Path(f"{args.out}.rank{rank}.error").write_text(str(error), encoding="utf-8")
        raise SystemExit(3) from error
    arrays = {f"w{l}": net.backend.to_numpy(w) for l, w in enumerate(net.weights)}
    arrays |= {f"b{l}": net.backend.to_numpy(b) for l, b in enumerate(net.biases)}
    np.savez(f"{args.out}.rank{rank}.npz", **arrays)


def train(net, X, labels, args, comm, callback, options) -> None:
    net.SGD(
        (X, labels),
        args.epochs,
        args.batch,
        0.5,
        lmbda=args.lmbda,
        momentum=args.momentum,
        comm=comm,
        callback=callback,
        **options,
    )


if __name__ == "__main__":
    main()
