"""Data-parallel training over MPI: `mpiexec -n 2` and `-n 3` runs equal single-process training.

The MPI runs start `tests/mpi_train.py` (and `bpgpu train`) through `subprocess`, each with a
timeout so that a hang fails. Skipped, with the reason, when mpi4py or `mpiexec` is missing
(`pip install mpi4py mpich` brings both).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_close, params

import bpgpu
from bpgpu import distributed, launcher

TIMEOUT = 120  # seconds for one mpiexec run; they take about one
SCRIPT = Path(__file__).with_name("mpi_train.py")


def _mpiexec() -> str | None:
    beside = Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
missing = [
    *(["mpi4py is not installed"] if importlib.util.find_spec("mpi4py") is None else []),
    *(["mpiexec is not found (PATH or beside the Python)"] if MPIEXEC is None else []),
]
needs_mpi = pytest.mark.skipif(bool(missing), reason=f"{' and '.join(missing)}: pip install mpi4py mpich")


def _launch(ranks: int, *command: str, cwd: Path, backend: str = "numpy") -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in launcher.SIZE_VARIABLES}
    env["BPGPU_BACKEND"] = backend
    return subprocess.run(
        [MPIEXEC, "-n", str(ranks), *command],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env=env,
    )


def _train_under_mpi(
    tmp_path: Path, ranks: int, *options: str, backend: str = "numpy"
) -> list[dict[str, np.ndarray]]:
    out = tmp_path / "params"
    result = _launch(ranks, sys.executable, str(SCRIPT), str(out), *options, cwd=tmp_path, backend=backend)
    assert result.returncode == 0, result.stdout + result.stderr
    return [dict(np.load(f"{out}.rank{rank}.npz")) for rank in range(ranks)]


def _as_list(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    layers = len(arrays) // 2
    return [arrays[f"w{l}"] for l in range(layers)] + [arrays[f"b{l}"] for l in range(layers)]


class _FakeComm:
    """Just enough of a communicator for what needs no messages."""

    def __init__(self, rank: int, size: int) -> None:
        self.rank, self.size = rank, size

    def Get_rank(self) -> int:  # noqa: N802 - mpi4py's names
        return self.rank

    def Get_size(self) -> int:  # noqa: N802
        return self.size

    def Allreduce(self, *args: object, **kwargs: object) -> None:  # noqa: N802
        raise AssertionError("no messages expected")

    allreduce = allgather = Allreduce


@pytest.mark.parametrize(("rows", "size"), [(10, 1), (10, 2), (7, 3), (10, 4), (2, 3), (0, 2), (128, 5)])
def test_share_covers_every_row_once_in_order(rows: int, size: int) -> None:
    parts = [
        distributed.DataParallel(_FakeComm(rank, size), None, cuda_aware=False).share(rows)
        for rank in range(size)
    ]
    assert [i for start, stop in parts for i in range(start, stop)] == list(range(rows))
    counts = [stop - start for start, stop in parts]
    assert max(counts) - min(counts) <= 1 and counts == sorted(counts, reverse=True)


def test_comm_must_be_a_communicator() -> None:
    net = bpgpu.Network([3, 2], backend="numpy", seed=1)
    with pytest.raises(TypeError, match=r"mpi4py communicator.*got str"):
        net.SGD((np.zeros((4, 3)), np.zeros(4, dtype=int)), 1, 2, 1.0, comm="world")


def test_plain_runs_never_import_mpi(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (*launcher.SIZE_VARIABLES, "PMIX_RANK")}
    code = (
        "import sys, bpgpu, bpgpu.cli, bpgpu.distributed as d; "
        "assert d.world_if_launched() is None; assert 'mpi4py' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=TIMEOUT, env=env, cwd=tmp_path)


@needs_mpi
def test_one_rank_equals_plain_training(backend: bpgpu.Backend) -> None:
    """COMM_SELF exercises the whole path (share, pack, all-reduce, unpack) on every backend."""
    from mpi4py import MPI

    rng = np.random.default_rng(3)
    X, labels = rng.standard_normal((23, 4)), rng.integers(0, 3, size=23)
    nets = [bpgpu.Network([4, 5, 3], backend=backend, dtype="float64", seed=2) for _ in range(2)]
    nets[0].SGD((X, labels), 2, 5, 0.5, momentum=0.5, lmbda=0.1)
    nets[1].SGD((X, labels), 2, 5, 0.5, momentum=0.5, lmbda=0.1, comm=MPI.COMM_SELF)
    for got, expected in zip(params(nets[1]), params(nets[0]), strict=True):
        assert_close(got, expected, "float64")


@needs_mpi
def test_sharded_lmbda_regularises_with_the_whole_training_set_size() -> None:
    from mpi4py import MPI

    X, labels = np.random.default_rng(3).normal(size=(6, 4)), np.arange(6) % 3
    alone, sharded = (bpgpu.Network([4, 3], backend="numpy", dtype="float64", seed=1) for _ in range(2))
    alone.SGD((X, labels), 2, 2, 1.0, lmbda=0.5)
    sharded.SGD((X, labels), 2, 2, 1.0, lmbda=0.5, comm=distributed.Communicator(MPI.COMM_SELF, shard=True))
    for a, b in zip(alone.weights + alone.biases, sharded.weights + sharded.biases, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12)


CASES = {
    "2 ranks": (2, ["--rows", "53", "--batch", "10"], {}),
    "3 ranks, uneven split": (3, ["--rows", "50", "--batch", "7"], {}),
    "batch smaller than ranks": (3, ["--rows", "11", "--batch", "2"], {}),
    "lmbda and momentum": (3, ["--rows", "50", "--batch", "7", "--lmbda", "0.3", "--momentum", "0.6"], {}),
}


@needs_mpi
@pytest.mark.parametrize("case", list(CASES))
def test_mpi_training_equals_single_process(tmp_path: Path, case: str) -> None:
    import mpi_train

    ranks, options, _ = CASES[case]
    per_rank = [_as_list(arrays) for arrays in _train_under_mpi(tmp_path, ranks, *options)]
    for other in per_rank[1:]:  # replicas stay identical: every rank applies the same update
        for a, b in zip(per_rank[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    settings = dict(zip(options[::2], options[1::2], strict=True))
    X, labels = mpi_train.data(int(settings["--rows"]))
    net = bpgpu.Network(mpi_train.SIZES, backend="numpy", dtype="float64", seed=1)
    net.SGD(
        (X, labels),
        3,
        int(settings["--batch"]),
        0.5,
        lmbda=float(settings.get("--lmbda", 0)),
        momentum=float(settings.get("--momentum", 0)),
    )
    for got, expected in zip(per_rank[0], params(net), strict=True):
        assert_close(got, expected, "float64")


@needs_mpi
def test_one_data_parallel_step_equals_the_single_process_step_to_rounding(tmp_path: Path) -> None:
    """What holds exactly: each step is the single-process step up to the order of the gradient's sums
    (a few ulps). Over many steps SGD amplifies those differences, so long runs drift apart; the
    3-epoch runs above stay within 1e-10 only because they are short."""
    import mpi_train

    per_rank = [
        _as_list(a) for a in _train_under_mpi(tmp_path, 3, "--rows", "7", "--batch", "7", "--epochs", "1")
    ]
    X, labels = mpi_train.data(7)
    net = bpgpu.Network(mpi_train.SIZES, backend="numpy", dtype="float64", seed=1)
    net.SGD((X, labels), 1, 7, 0.5)  # one mini-batch of all 7 rows: one step
    for got, expected in zip(per_rank[0], params(net), strict=True):
        np.testing.assert_allclose(got, expected, rtol=4e-15, atol=4e-15 * float(np.max(np.abs(expected))))


@needs_mpi
def test_two_ranks_sharing_one_gpu_with_cupy_step_like_one_process(tmp_path: Path) -> None:
    """Both ranks hold CuPy arrays on the one GPU; the all-reduce goes through the host. One step of
    the pair equals the single-process CuPy step up to the order of the gradient's sums."""
    try:
        bpgpu.get_backend("cupy")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    import mpi_train

    per_rank = [
        _as_list(a)
        for a in _train_under_mpi(tmp_path, 2, "--rows", "8", "--batch", "8", "--epochs", "1", backend="cupy")
    ]
    X, labels = mpi_train.data(8)
    net = bpgpu.Network(mpi_train.SIZES, backend="cupy", dtype="float64", seed=1)
    net.SGD((X, labels), 1, 8, 0.5)
    for got, expected in zip(per_rank[0], params(net), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13 * float(np.max(np.abs(expected))))
    for a, b in zip(per_rank[0], per_rank[1], strict=True):
        np.testing.assert_array_equal(a, b)


@needs_mpi
def test_sharded_training_averages_every_ranks_batch(tmp_path: Path) -> None:
    """Sharded: a step's gradient is the mean over every rank's own mini-batch, i.e. over 3 × 4 rows."""
    import mpi_train

    ranks, rows, batch = 3, 40, 4
    per_rank = [
        _as_list(a)
        for a in _train_under_mpi(tmp_path, ranks, "--rows", str(rows), "--batch", str(batch), "--shard")
    ]
    X, labels = mpi_train.data(rows)
    shards = [(X[r : r + 13 * ranks : ranks], labels[r : r + 13 * ranks : ranks]) for r in range(ranks)]
    net = bpgpu.Network(mpi_train.SIZES, backend="numpy", dtype="float64", seed=1)
    # The shuffle stream of seed 1, as bpgpu draws it (bpgpu.backends.host.HostRandom).
    shuffle = np.random.default_rng(np.random.SeedSequence(1).spawn(2)[1])
    for _ in range(3):
        order = shuffle.permutation(13)
        for k in range(0, 13, batch):
            mine = order[k : k + batch]
            net.update_mini_batch(
                np.concatenate([x[mine] for x, _ in shards]),
                np.concatenate([y[mine] for _, y in shards]),
                0.5,
            )
    for rank in range(ranks):
        for got, expected in zip(per_rank[rank], params(net), strict=True):
            assert_close(got, expected, "float64")


@needs_mpi
@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("--seed-by-rank", "seed: rank 0 has 1, rank 1 has 2"),
        ("--perturb-rank=2", "training data (sums)"),
        ("--swap-labels-rank=1", "training data (sums)"),
        ("--patience-by-rank", "eta_schedule, patience: rank 0 has ('halve', 1), rank 1 has ('halve', 2)"),
    ],
)
def test_ranks_that_disagree_fail_fast_on_every_rank(tmp_path: Path, option: str, says: str) -> None:
    start = time.perf_counter()
    result = _launch(3, sys.executable, str(SCRIPT), str(tmp_path / "p"), option, cwd=tmp_path)
    assert time.perf_counter() - start < TIMEOUT / 4
    assert result.returncode != 0
    errors = [(tmp_path / f"p.rank{rank}.error").read_text(encoding="utf-8") for rank in range(3)]
    for error in errors:  # the same message on every rank
        assert error.startswith("data-parallel training needs the same network") and says in error, error
    assert not list(tmp_path.glob("p.rank*.npz"))


@needs_mpi
@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("--bad-features-rank=1", "rank 1 failed its checks (ValueError: training_data X has 4 features"),
        ("--raise-in-callback-rank=0", "rank 0 failed during data-parallel training; ending all ranks"),
    ],
)
def test_an_error_on_one_rank_ends_every_rank_instead_of_hanging(
    tmp_path: Path, option: str, says: str
) -> None:
    start = time.perf_counter()
    result = _launch(
        3, sys.executable, str(SCRIPT), str(tmp_path / "p"), option, "--epochs", "4", cwd=tmp_path
    )
    assert time.perf_counter() - start < TIMEOUT / 4
    assert result.returncode != 0
    if option.startswith("--bad-features"):  # rank 1 raises its own error, the others name rank 1
        errors = [(tmp_path / f"p.rank{rank}.error").read_text(encoding="utf-8") for rank in range(3)]
        assert errors[1].startswith("training_data X has 4 features")
        assert all(says in errors[rank] for rank in (0, 2)), errors
    else:  # aborted: the failing rank says why before MPI ends every rank
        assert says in result.stdout + result.stderr
    assert not list(tmp_path.glob("p.rank*.npz"))


@needs_mpi
def test_cli_trains_under_mpiexec_and_only_rank_0_speaks(tmp_path: Path) -> None:
    bpgpu_command = Path(sys.executable).with_name("bpgpu")
    model = tmp_path / "model.npz"
    result = _launch(
        2, str(bpgpu_command), "train", "--epochs", "2", "--quiet", "--save", str(model), cwd=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("test accuracy") == 1, result.stdout
    assert result.stderr == ""
    assert bpgpu.load(model).sizes == [64, 30, 10]
    loud = _launch(2, str(bpgpu_command), "train", "--epochs", "1", cwd=tmp_path)
    assert loud.returncode == 0 and loud.stdout.count("data parallel: 2 ranks under mpiexec") == 1, (
        loud.stdout
    )


@needs_mpi
def test_training_that_diverges_under_mpiexec_is_one_line_without_an_abort(tmp_path: Path) -> None:
    bpgpu_command = Path(sys.executable).with_name("bpgpu")
    model = tmp_path / "model.npz"
    command = [str(bpgpu_command), "train", "--epochs", "2", "--eta", "1e308", "--save", str(model)]
    result = _launch(2, *command, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith("bpgpu train: error: training diverged in epoch 0")
    assert result.stderr.count("\n") == 1, result.stderr  # no traceback, no MPI abort message
    assert not model.exists()


def test_message_buffers_are_writable_host_arrays_unless_the_mpi_reads_the_device(backend) -> None:
    """The all-reduce's buffer: a writable contiguous host array (NumPy's own array, no copy), whose
    new values come back as an array of the backend; MPI writes into it in place."""
    flat = backend.asarray(np.arange(6.0))
    buffer = backend.message_buffer(flat, device_aware=False)
    assert isinstance(buffer, np.ndarray) and buffer.flags.writeable and buffer.flags.c_contiguous
    assert (buffer is flat) == (backend.name == "numpy")
    buffer *= 2  # what Allreduce(IN_PLACE, buffer, SUM) over two equal ranks does
    back = backend.from_message_buffer(buffer, flat)
    assert backend.owns(back)
    np.testing.assert_array_equal(backend.to_numpy(back), 2 * np.arange(6.0))
