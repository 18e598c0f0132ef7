"""The torch backend's CUDA-graph path (`bpgpu.backends.torch_graph`).

Its buffer logic (the gather by a device offset, the step written back in place, parameters copied
in and out) runs here on the CPU, with a "capture" that just calls the step. The capture itself, and
equality of graphs and eager steps on a GPU, need CUDA and skip without it.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, params

import bpgpu
from bpgpu import step as steps
from bpgpu.backends import torch_graph

torch = pytest.importorskip("torch", reason="needs PyTorch (pip install torch)")

SIZES, ROWS, BATCH = [5, 7, 3], 64, 4


def setting(update: steps.Update, dtype: str = "float64"):
    net = bpgpu.Network(SIZES, backend="torch", dtype=dtype, seed=4)
    backend = net.backend
    rng = np.random.default_rng(1)
    x = backend.asarray(rng.normal(size=(ROWS, SIZES[0])), backend.dtype(dtype))
    y = backend.asarray(np.eye(3)[rng.integers(0, 3, ROWS)], backend.dtype(dtype))
    step = steps.Step(net._model, update, net.xp)
    return backend, step, step.start(net.weights, net.biases), x, y


def orders(backend, epochs=2):
    rng = np.random.default_rng(7)
    return [backend.asarray(rng.permutation(ROWS)) for _ in range(epochs)]


@pytest.mark.parametrize(
    "update",
    [steps.Update(), steps.Update(lmbda=0.3, n=ROWS), steps.Update(lmbda=0.2, n=ROWS, momentum=0.6)],
    ids=["plain", "l2", "momentum"],
)
def test_replayed_steps_equal_eager_steps_and_leave_the_callers_arrays_alone(update):
    backend, step, start, x, y = setting(update)
    replayer = torch_graph.Replayer(torch, step, start, x, y, orders(backend)[0], BATCH, lambda body: body)
    held = [a.clone() for a in torch_graph.leaves(start)]
    eager, replayed = start, start
    for order in orders(backend):  # a new epoch's order is copied in once
        for first in range(0, ROWS, 5 * BATCH):
            count = min(5, (ROWS - first) // BATCH)
            eager = bpgpu.Backend.run_steps(backend, step, eager, x, y, order, first, count, BATCH, 0.4)
            replayed = replayer.run(replayed, order, first, count, 0.4)
    for got, want in zip(torch_graph.leaves(replayed), torch_graph.leaves(eager), strict=True):
        assert torch.equal(got, want)
    for before, now in zip(held, torch_graph.leaves(start), strict=True):
        assert torch.equal(before, now)  # what the caller held is never changed in place
    assert replayer.matches(step, x, y, BATCH, replayed)
    assert not replayer.matches(step, x, y, BATCH + 1, replayed)
    assert not replayer.matches(step, x.clone(), y, BATCH, replayed)  # other data: another capture


def test_leaves_and_rebuild_are_inverse_with_and_without_velocities():
    for update in (steps.Update(), steps.Update(momentum=0.5)):
        start = setting(update)[2]
        rebuilt = torch_graph.rebuild(start, torch_graph.leaves(start))
        pairs = zip(torch_graph.leaves(rebuilt), torch_graph.leaves(start), strict=True)
        assert all(a is b for a, b in pairs)
        assert len(rebuilt.velocities) == len(start.velocities) == (2 if update.momentum else 0)


NETWORKS = [  # (activation, output activation, cost): every activation and cost in some step
    ("sigmoid", "sigmoid", "quadratic"),
    ("sigmoid", "sigmoid", "cross_entropy"),
    ("relu", "softmax", "log_likelihood"),
    ("tanh", "identity", "quadratic"),
    ("leaky_relu", "sigmoid", "quadratic"),
]


@pytest.mark.parametrize(("activation", "output", "cost"), NETWORKS)
@pytest.mark.parametrize(
    "update",
    [steps.Update(), steps.Update(lmbda=0.3, n=ROWS, regularization="l1"), steps.Update(momentum=0.6)],
    ids=["plain", "l1", "momentum"],
)
def test_the_step_makes_no_tensor_from_a_host_number(monkeypatch, activation, output, cost, update):
    """A CUDA graph capture refuses copies from the host, and array_api_compat.torch's maximum and
    minimum turn a Python number into a device tensor (a copy): the backend's namespace must not,
    for any activation, cost or rule. Checked here by making those constructors fail."""
    net = bpgpu.Network(
        SIZES, activation=activation, output_activation=output, cost=cost, backend="torch", seed=4
    )
    backend = net.backend
    rng = np.random.default_rng(1)
    x = backend.asarray(rng.normal(size=(ROWS, SIZES[0])), backend.dtype("float32"))
    y = backend.asarray(np.eye(3)[rng.integers(0, 3, ROWS)], backend.dtype("float32"))
    step = steps.Step(net._model, update, net.xp)
    start, eta = step.start(net.weights, net.biases), torch.tensor(0.5)

    def refused(*args, **kwargs):
        raise AssertionError(f"a tensor made from the host inside the step: {args!r}")

    for name in ("asarray", "as_tensor", "tensor"):
        monkeypatch.setattr(torch, name, refused)
    new = step(start, x[:BATCH], y[:BATCH], eta)
    monkeypatch.undo()
    assert all(bool(torch.isfinite(p).all()) for p in torch_graph.leaves(new))


def test_the_namespace_clamps_with_the_values_of_maximum_and_minimum():
    xp = bpgpu.get_backend("torch").xp
    z = torch.tensor([float("nan"), -1.0, 2.0, -0.0, float("inf"), float("-inf"), 100.0])
    assert torch.equal(
        xp.maximum(z, 0.0).nan_to_num(7.0), torch.maximum(z, torch.tensor(0.0)).nan_to_num(7.0)
    )
    assert torch.equal(
        xp.minimum(z, 88.0).nan_to_num(7.0), torch.minimum(z, torch.tensor(88.0)).nan_to_num(7.0)
    )
    assert xp.maximum(torch.tensor([1, -2]), 0).tolist() == [1, 0]  # integers: the compat function
    assert xp.maximum(z, z).shape == z.shape


def test_without_cuda_the_torch_backend_runs_every_step_eagerly():
    backend = bpgpu.get_backend("torch")
    if backend.device.type == "cuda":
        pytest.skip("this machine's torch sees a CUDA device: the GPU tests below apply")
    assert backend.graphs is False


def cuda_backend() -> bpgpu.Backend:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU that PyTorch sees (torch.cuda.is_available() is False)")
    return bpgpu.get_backend("torch")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("momentum", [0.0, 0.7])
def test_on_a_gpu_graphs_train_as_eager_steps_do(monkeypatch, dtype, momentum):
    """Whole SGD runs, captured against eager: float64 equal to rounding, float32 within its own."""
    cuda_backend()
    rng = np.random.default_rng(3)
    X, labels = rng.normal(size=(233, SIZES[0])), rng.integers(0, 3, size=233)
    nets = []
    for graphs in ("1", "0"):
        monkeypatch.setenv("BPGPU_TORCH_CUDA_GRAPHS", graphs)
        net = bpgpu.Network(SIZES, backend="torch", dtype=dtype, seed=2)
        assert net.backend.graphs is (graphs == "1")
        net.SGD((X, labels), 3, BATCH, 0.3, momentum=momentum, lmbda=0.1)
        nets.append(net)
    assert nets[0].backend._replayer is not None, "the step was not captured"
    for got, want in zip(params(nets[0]), params(nets[1]), strict=True):
        assert_close(got, want, dtype)
