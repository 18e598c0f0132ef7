"""Run by tests/test_distributed.py under `mpiexec -n N`: train on synthetic data, save the parameters.

    mpiexec -n 3 python tests/mpi_train.py OUT [--rows 50] [--batch 7] [--lmbda L] [--momentum M]
        [--shard] [--seed-by-rank] [--perturb-rank R]

Every rank writes OUT.rank<R>.npz with its final weights and biases (w0, w1, ..., b0, b1, ...).
`--seed-by-rank` and `--perturb-rank` make the ranks disagree on purpose (the fingerprint check).
"""

from __future__ import annotations

import argparse

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
    args = parser.parse_args()

    world = MPI.COMM_WORLD
    rank = world.Get_rank()
    X, labels = data(args.rows)
    if args.perturb_rank == rank:
        X[3, 2] += 1e-3
    comm = distributed.Communicator(world, shard=args.shard)
    if args.shard:
        X, labels = distributed.shard(X, labels, comm)
    net = bpgpu.Network(SIZES, dtype="float64", seed=1 + rank if args.seed_by_rank else 1)
    net.SGD((X, labels), args.epochs, args.batch, 0.5, lmbda=args.lmbda, momentum=args.momentum, comm=comm)
    arrays = {f"w{l}": net.backend.to_numpy(w) for l, w in enumerate(net.weights)}
    arrays |= {f"b{l}": net.backend.to_numpy(b) for l, b in enumerate(net.biases)}
    np.savez(f"{args.out}.rank{rank}.npz", **arrays)


if __name__ == "__main__":
    main()
