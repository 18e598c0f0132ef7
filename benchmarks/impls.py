"""What is timed: one epoch of each implementation, on data already in host memory.

Each function returns the seconds of one training epoch (mini-batch SGD on the mean quadratic cost
with sigmoid neurons, the book's chapter-1 network) and is run in a fresh process by `run.py`.
"""

from __future__ import annotations

import itertools
import time

import numpy as np

from .workloads import Workload


def bpgpu_epoch(workload: Workload, X: np.ndarray, y: np.ndarray, backend: str) -> float:
    """`Network.SGD` for one epoch, as a user calls it: the time includes moving the data."""
    import bpgpu

    net = bpgpu.Network(list(workload.sizes), backend=backend, seed=1)
    net.backend.synchronize()
    start = time.perf_counter()
    net.SGD((X, y), 1, workload.batch, workload.eta)  # synchronises before it returns
    return time.perf_counter() - start


def bpgpu_epochs_memory(workload: Workload, X: np.ndarray, y: np.ndarray, epochs: int, rss) -> list[float]:
    """One `Network.SGD` call of `epochs` epochs on NumPy; `rss()` is read after every epoch."""
    import bpgpu

    after = []
    net = bpgpu.Network(list(workload.sizes), backend="numpy", seed=1)
    net.SGD((X, y), epochs, workload.batch, workload.eta, callback=lambda record: after.append(rss()))
    return after


def torch_epoch(workload: Workload, X: np.ndarray, y: np.ndarray, device: str = "cpu") -> float:
    """PyTorch eager with autograd: nn.Linear + Sigmoid, optim.SGD, ½‖a − y‖² averaged over the batch."""
    import torch

    torch.manual_seed(1)
    layers = []
    for n_in, n_out in zip(workload.sizes[:-1], workload.sizes[1:], strict=True):
        layers += [torch.nn.Linear(n_in, n_out), torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=workload.eta)
    _sync(torch, device)
    start = time.perf_counter()
    features = torch.from_numpy(X).to(device)
    targets = torch.nn.functional.one_hot(torch.from_numpy(y).to(device), workload.sizes[-1]).float()
    order = torch.randperm(len(y), device=device)
    for k in range(0, len(y), workload.batch):
        rows = order[k : k + workload.batch]
        optimizer.zero_grad(set_to_none=True)
        out = model(features[rows])
        loss = 0.5 * ((out - targets[rows]) ** 2).sum(dim=1).mean()
        loss.backward()
        optimizer.step()
    _sync(torch, device)
    return time.perf_counter() - start


def _sync(torch, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def book_loop_epoch(workload: Workload, X: np.ndarray, y: np.ndarray, batches: int = 1000) -> float:
    """The book's network.py: one example at a time as a column vector, gradients summed per batch.

    Times `batches` mini-batches and extrapolates to the epoch (the loop is ~100× slower).
    """
    rng = np.random.default_rng(1)
    sizes = workload.sizes
    biases = [rng.standard_normal((n, 1)).astype(np.float32) for n in sizes[1:]]
    weights = [rng.standard_normal((o, i)).astype(np.float32) for i, o in itertools.pairwise(sizes)]
    eye = np.eye(sizes[-1], dtype=np.float32)
    order = rng.permutation(len(y))
    sigmoid = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731 - the book's one-liner
    start = time.perf_counter()
    with np.errstate(over="ignore"):
        for k in range(0, min(batches, workload.steps) * workload.batch, workload.batch):
            nb = [np.zeros_like(b) for b in biases]
            nw = [np.zeros_like(w) for w in weights]
            for i in order[k : k + workload.batch]:
                activation, activations, zs = X[i][:, None], [X[i][:, None]], []
                for b, w in zip(biases, weights, strict=True):
                    z = w @ activation + b
                    zs.append(z)
                    activation = sigmoid(z)
                    activations.append(activation)
                delta = (activations[-1] - eye[:, y[i] : y[i] + 1]) * activation * (1 - activation)
                nb[-1] += delta
                nw[-1] += delta @ activations[-2].T
                for l in range(2, len(sizes)):
                    s = sigmoid(zs[-l])
                    delta = (weights[-l + 1].T @ delta) * s * (1 - s)
                    nb[-l] += delta
                    nw[-l] += delta @ activations[-l - 1].T
            scale = workload.eta / workload.batch
            weights = [w - scale * g for w, g in zip(weights, nw, strict=True)]
            biases = [b - scale * g for b, g in zip(biases, nb, strict=True)]
    seconds = time.perf_counter() - start
    return seconds * workload.steps / min(batches, workload.steps)


def gemm_floor_epoch(workload: Workload, X: np.ndarray, y: np.ndarray) -> float:
    """Only the matrix products one epoch of backprop needs, same shapes, nothing else.

    Per step and layer: the forward product, the weight-gradient product and (above the first layer)
    the error sent back through wᵀ. Operands are prepared before timing; results are discarded.
    """
    rng = np.random.default_rng(1)
    sizes, n = workload.sizes, workload.batch
    weights = [rng.standard_normal((o, i)).astype(np.float32) for i, o in itertools.pairwise(sizes)]
    acts = [rng.random((n, s), dtype=np.float32) for s in sizes]
    deltas = [rng.random((n, s), dtype=np.float32) for s in sizes[1:]]
    last = workload.rows - (workload.steps - 1) * n  # the last batch may be smaller
    start = time.perf_counter()
    for step in range(workload.steps):
        rows = n if step < workload.steps - 1 else last
        for l, w in enumerate(weights):
            _ = acts[l][:rows] @ w.T  # forward
            _ = deltas[l][:rows].T @ acts[l][:rows]  # ∂C/∂w
            if l > 0:
                _ = deltas[l][:rows] @ w  # δ back through wᵀ
    return time.perf_counter() - start
