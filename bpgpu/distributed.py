"""Data-parallel training over MPI (`mpi4py`): several processes train one network together.

Every process (rank) is started with the same program, arguments and seed, e.g.

    mpiexec -n 4 python train.py            # train.py calls net.SGD(..., comm=MPI.COMM_WORLD)
    mpiexec -n 4 bpgpu train --epochs 10    # the command line finds the launcher by itself

`pip install mpi4py mpich` (the `mpi` extra of a clone) brings mpi4py and the `mpich` wheel (which
provides `mpiexec`), so no system MPI is needed on one machine; on a cluster use mpi4py built
against the cluster's MPI (`srun` works too). Importing bpgpu never imports mpi4py: only an
`SGD(..., comm=...)` call or `world_if_launched()` under a launcher does.

What a step does: every rank shuffles the same way (same seed), takes its contiguous share of each
mini-batch's rows (`DataParallel.share`), computes that part's gradient already divided by the
whole batch size, and one all-reduce (sum) of all gradients packed into one flat buffer gives every
rank the batch's gradient; every rank then applies the same update, so the replicas stay identical.
With the whole data set on every rank this *is* single-process training with the same seed: the
parameters agree to rounding (float64: ~1e-16 relative after 3 epochs in the tests): only the order of the
gradient's sums differs. `SGD` compares a fingerprint of the network, data and settings
across ranks before the first step (`check_same`) and raises `ValueError` on every rank when they
differ, instead of diverging silently or hanging.

Sharded data: `comm=Communicator(MPI.COMM_WORLD, shard=True)` with `X, Y = shard(X, Y, comm)`. Each
rank then holds only rows `rank::size` (cut to the same count on every rank) and uses all rows of its
own mini-batch, so `mini_batch_size` is *per rank* and a step averages size × mini_batch_size rows.
Memory per rank falls by `size`, but the batches differ from single-process training, so the result
is not equal to it (it is to a single-process run over the same row groups; tested). Metrics over the
training data ("training_cost", and "layer_speeds" without evaluation data) are then the rank's own
shard's.

GPUs: one rank per GPU. Choose the device before building the network, by local rank: either
`cupy.cuda.Device(local_rank(comm)).use()`, or set `CUDA_VISIBLE_DEVICES` per process, e.g.
`mpiexec -n 4 sh -c 'CUDA_VISIBLE_DEVICES=$MPI_LOCALRANKID exec bpgpu train --backend cupy'`
(MPICH's variable; Open MPI's is `OMPI_COMM_WORLD_LOCAL_RANK`). Before the all-reduce the device is
synchronised. A CUDA-aware MPI (Open MPI or MVAPICH built with CUDA, MPICH `--with-cuda`) reads CuPy
buffers directly; any other MPI, and every other non-NumPy backend, is staged through host memory:
one device→host and one host→device copy of the flat buffer per step. `cuda_aware=None` asks mpi4py
(`MPI.Query_cuda_support`, where the installed mpi4py has it) and otherwise assumes False; pass
`Communicator(comm, cuda_aware=True)` when you know better.
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import array_api_compat

from .launcher import abort_if_launched, local_rank, world_if_launched

__all__ = [
    "Communicator",
    "DataParallel",
    "abort_if_launched",
    "local_rank",
    "shard",
    "split_rows",
    "world_if_launched",
]

SUM_RTOL = 1e-9  # data and parameter sums are accumulated in float64: equal data agrees far closer


@dataclass(frozen=True)
class Communicator:
    """An mpi4py communicator plus how bpgpu uses it; pass it as `SGD(..., comm=...)`.

    `shard`: every rank holds only its own rows (see `shard`); `cuda_aware`: whether MPI reads CUDA
    device buffers (None: detect).
    """

    comm: Any
    shard: bool = False
    cuda_aware: bool | None = None


def split_rows(rows: int, rank: int, size: int) -> tuple[int, int]:
    """`(start, stop)` of rank `rank`'s contiguous part of `rows` rows split among `size` ranks.

    As even as possible: the first `rows % size` ranks get one row more; ranks may get none.
    """
    base, extra = divmod(rows, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class DataParallel:
    """The collective side of `Network.SGD(..., comm=...)`: shares, all-reduces, checks ranks agree."""

    def __init__(self, comm: Any, backend: Any, *, shard: bool = False, cuda_aware: bool | None = None):
        if isinstance(comm, Communicator):
            shard = shard or comm.shard
            cuda_aware = comm.cuda_aware if cuda_aware is None else cuda_aware
            comm = comm.comm
        _require_communicator(comm)
        self.comm, self.backend, self.shard = comm, backend, bool(shard)
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.cuda_aware = _query_cuda_support() if cuda_aware is None else bool(cuda_aware)

    def share(self, batch_rows: int) -> tuple[int, int]:
        """`(start, stop)`: this rank's rows of a mini-batch (all of them when data is sharded)."""
        return (0, batch_rows) if self.shard else split_rows(batch_rows, self.rank, self.size)

    def total_rows(self, rows: int) -> int:
        """The training set's size: `rows` itself, or the sum over ranks when data is sharded."""
        return self.comm.allreduce(rows) if self.shard else rows

    def sum_across_ranks(self, nabla_b: Sequence[Any], nabla_w: Sequence[Any]) -> tuple[list, list]:
        """Every rank's `(nabla_b, nabla_w)` summed (sharded: averaged), by one all-reduce."""
        from mpi4py import MPI

        xp, arrays = self.backend.xp, [*nabla_b, *nabla_w]
        flat = xp.concat([xp.reshape(a, (-1,)) for a in arrays])  # one buffer, one message
        buffer = self.backend.message_buffer(flat, self.cuda_aware)  # host-staged unless CUDA-aware
        self.comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        flat = self.backend.from_message_buffer(buffer, flat)
        if self.shard and self.size > 1:
            flat = flat / self.size  # each part was a mean over its own rank's batch
        parts, offset = [], 0
        for a in arrays:
            count = math.prod(a.shape)
            parts.append(xp.reshape(flat[offset : offset + count], a.shape))
            offset += count
        return parts[: len(nabla_b)], parts[len(nabla_b) :]

    def step(self, step: Any, params: Any, x: Any, y: Any, rows: Any, eta: float) -> Any:
        """One data-parallel step of `step` (a `bpgpu.step.Step`) over the mini-batch `rows` (indices
        into `x` and `y`): this rank's share of the gradient, one all-reduce, the update."""
        xp, mine = step.xp, rows[slice(*self.share(rows.shape[0]))]
        gradient, apply = self.backend.compile(step.gradient), self.backend.compile(step.apply)
        count = rows.shape[0]
        nabla_b, nabla_w = gradient(params, xp.take(x, mine, axis=0), xp.take(y, mine, axis=0), eta, count)
        return apply(params, self.sum_across_ranks(nabla_b, nabla_w), eta)

    def check_same(self, net: Any, job: Any, shuffle_state: dict[str, Any]) -> None:
        """Raise `ValueError` on every rank unless all ranks train the same network on the same data.

        Compares, by one collective (an allgather of a small dict), the network's settings, seed,
        shuffle state and parameter sums; the data's shapes and (whole data only) sums; and the
        hyper-parameters of `job` (a `training.TrainingJob`), including the evaluation data that early
        stopping and the eta schedule judge. `shuffle_state` is the network's host shuffle stream's.
        """
        x, y, update, evaluation = job.x, job.y, job.update, job.evaluation
        exact: dict[str, Any] = {
            "sizes": list(net.sizes),
            "activation": (net.activation, net.output_activation),
            "cost": net.cost_name,
            "init": net.init,
            "backend": net.backend.name,
            "dtype": net.dtype,
            "seed": net.seed,
            "shuffle state": _digest(shuffle_state),
            "training data shape": (tuple(x.shape), tuple(y.shape)),
            "epochs": job.options.epochs,
            "mini_batch_size": job.options.mini_batch_size,
            "eta": job.options.eta,
            "lmbda, regularization, momentum": (update.lmbda, update.regularization, update.momentum),
            "monitor": tuple(job.monitor),
            "early_stopping": job.options.early_stopping,
            "eta_schedule, patience": (job.options.eta_schedule, job.options.patience),
            "shard": self.shard,
        }
        groups = {"parameters": [*net.weights, *net.biases]}
        if not self.shard:
            groups["training data"] = [x, y]
        if evaluation is not None:
            exact["evaluation data shape"] = tuple(evaluation[0].shape)
            groups["evaluation data"] = list(evaluation)
        xp = net.xp
        values = [[v for a in arrays for v in _sums(a, xp)] for arrays in groups.values()]
        host = net.backend.to_numpy(xp.stack([v for group in values for v in group])).tolist()  # one transfer
        approx, offset = {}, 0
        for name, group in zip(groups, values, strict=True):
            approx[name], offset = host[offset : offset + len(group)], offset + len(group)
        everyone = self.comm.allgather((exact, approx))  # the one collective
        problems = [_disagreement(name, [e[name] for e, _ in everyone], _same) for name in exact]
        problems += [
            _disagreement(f"{name} (sums)", [a[name] for _, a in everyone], _close) for name in approx
        ]
        problems = [p for p in problems if p]
        if problems:
            raise ValueError(
                "data-parallel training needs the same network, data and settings on every rank, "
                "but the ranks disagree on " + "; ".join(problems)
            )

    def abort(self, error: BaseException) -> None:
        """End every rank after an error on this one in the middle of training (a raising callback,
        say): the others would wait in the next all-reduce forever. Prints the error first."""
        if self.size > 1:
            import traceback

            traceback.print_exception(error, file=sys.stderr)
            print(
                f"bpgpu: rank {self.rank} failed during data-parallel training; ending all ranks",
                file=sys.stderr,
            )
            sys.stdout.flush()
            sys.stderr.flush()
            self.comm.Abort(1)

    def raise_together(self, error: BaseException | None) -> None:
        """One collective in which every rank reports whether its checks failed; if any did, raise.

        A rank that failed re-raises its own error; the others raise `ValueError` naming the rank
        and its message. So a mistake on one rank ends every rank instead of leaving them waiting.
        """
        reports = self.comm.allgather(None if error is None else f"{type(error).__name__}: {error}")
        if error is not None:
            raise error
        failed = [(rank, report) for rank, report in enumerate(reports) if report is not None]
        if failed:
            rank, report = failed[0]
            raise ValueError(f"data-parallel training stopped: rank {rank} failed its checks ({report})")


def shard(X: Any, Y: Any, comm: Any) -> tuple[Any, Any]:
    """This rank's rows of `(X, Y)`: rows `rank::size`, cut to `len(X) // size` on every rank.

    For `SGD(..., comm=Communicator(comm, shard=True))`: every rank holds the same number of rows
    (up to `size - 1` rows of the whole set are left out), so all ranks take the same number of
    steps. `X`, `Y`: host or device arrays; loading only the shard is better still.
    """
    world = comm.comm if isinstance(comm, Communicator) else comm
    _require_communicator(world)
    rank, size = world.Get_rank(), world.Get_size()
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X and Y must have the same number of rows; got {X.shape[0]} and {Y.shape[0]}")
    rows = X.shape[0] // size
    stop = rank + rows * size
    return X[rank:stop:size], Y[rank:stop:size]


def _require_communicator(comm: Any) -> None:
    needed = ("Get_rank", "Get_size", "Allreduce", "allreduce", "allgather")
    if not all(callable(getattr(comm, name, None)) for name in needed):
        raise TypeError(
            "comm must be an mpi4py communicator such as mpi4py.MPI.COMM_WORLD, or a "
            f"bpgpu.distributed.Communicator; got {type(comm).__name__}: {repr(comm)[:80]}"
        )


def _query_cuda_support() -> bool:
    from mpi4py import MPI

    query = getattr(MPI, "Query_cuda_support", None)
    try:
        return bool(query()) if query is not None else False
    except Exception:  # an MPI without the extension: stage through the host
        return False


def _sums(a: Any, xp: Any) -> list[Any]:
    """Four float64 scalars on the device: Σ rows, Σ rows weighted by position, Σ |rows|, and
    Σ_ij a_ij · (i+1)/n · (j+1)/m, which also changes when values move between columns (one-hot
    labels that differ keep every row sum at 1)."""
    n, device = a.shape[0], array_api_compat.device(a)
    table = xp.reshape(a, (n, 1)) if a.ndim == 1 else xp.reshape(a, (n, math.prod(a.shape[1:])))
    rows = xp.sum(table, axis=1, dtype=xp.float64)
    ramp = xp.arange(1, n + 1, dtype=xp.float64, device=device) / max(n, 1)
    m = table.shape[1]
    column_ramp = xp.arange(1, m + 1, dtype=xp.float64, device=device) / max(m, 1)
    by_column = xp.astype(xp.astype(ramp, table.dtype) @ table, xp.float64)  # one pass, in a's dtype
    return [xp.sum(rows), xp.sum(rows * ramp), xp.sum(xp.abs(rows)), xp.sum(by_column * column_ramp)]


def _same(a: Any, b: Any) -> bool:
    return a == b


def _close(a: list[float], b: list[float]) -> bool:
    scale = max(map(abs, a), default=0.0) or 1.0
    return len(a) == len(b) and all(abs(u - v) <= SUM_RTOL * scale for u, v in zip(a, b, strict=True))


def _disagreement(name: str, values: list[Any], same: Any) -> str:
    """'' when every rank's value matches rank 0's, else what rank 0 and the first other rank have."""
    odd = next((r for r, value in enumerate(values) if not same(values[0], value)), None)
    if odd is None:
        return ""
    first, other = values[0], values[odd]
    if isinstance(first, list) and len(first) == len(other):  # sums: show the one that differs most
        worst = max(range(len(first)), key=lambda i: abs(first[i] - other[i]))
        return f"{name}: rank 0 has {first[worst]:.10g}, rank {odd} has {other[worst]:.10g}"
    return f"{name}: rank 0 has {first!r}, rank {odd} has {other!r}"


def _digest(state: Any) -> str:
    """A short hash of plain data (the shuffle stream's state)."""
    return hashlib.sha256(repr(state).encode()).hexdigest()[:16]
