"""Finding the MPI launcher a process was started by (`mpiexec`, `srun`), without importing mpi4py
when there is none, and ending every rank at once when one of them fails. `bpgpu.distributed`
re-exports these three for programs that train data-parallel."""

from __future__ import annotations

import os
import sys
from typing import Any

# Set by launchers for each process: MPICH/Intel MPI/srun --mpi=pmi2, Open MPI, MVAPICH.
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def world_if_launched() -> Any | None:
    """`MPI.COMM_WORLD` when this process was started by an MPI launcher with more than one process.

    Reads the launcher's environment variables first, so a plain run never imports mpi4py; returns
    None without a launcher or with one process. Raises `RuntimeError` when launched but mpi4py is
    missing.
    """
    found = next((f"{n}={os.environ[n]}" for n in SIZE_VARIABLES if n in os.environ), None)
    if found is None and "PMIX_RANK" not in os.environ:  # PMIx (Open MPI 5, srun) gives no size
        return None
    if found is not None and found.split("=", 1)[1].strip() in ("0", "1"):
        return None
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise RuntimeError(
            f"started by an MPI launcher ({found or 'PMIX_RANK'}) but mpi4py is not installed: "
            "pip install mpi4py mpich"
        ) from exc
    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


def abort_if_launched(code: int, show: BaseException | None = None) -> None:
    """End every rank with exit code `code`, when MPI is running with more than one process.

    For an error that not every rank may have hit: the others would wait in a collective forever.
    `show`: an error whose traceback to print first (it would otherwise be lost with the process).
    """
    MPI = sys.modules.get("mpi4py.MPI")
    if MPI is not None and MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1:
        if show is not None:
            import traceback

            traceback.print_exception(show, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(code)


def local_rank(comm: Any) -> int:
    """This process's rank among those of `comm` on the same machine: the GPU it should use."""
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_rank()
    finally:
        node.Free()
