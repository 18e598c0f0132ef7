"""What is timed: one epoch of each implementation, on data already in host memory.

Each function returns the seconds of one training epoch (mini-batch SGD on the mean quadratic cost
with sigmoid neurons, the book's chapter-1 network) and is run in a fresh process by `run.py`. All
start from the same parameters (`initial_parameters`); the floors use those weights too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .workloads import Workload


def initial_parameters(workload: Workload) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """bpgpu's starting `(weights, biases)` for the workload (seed 1, its `init`), float32 on the host."""
    import bpgpu

    net = bpgpu.Network(list(workload.sizes), backend="numpy", seed=1, init=workload.init)
    return [np.array(w) for w in net.weights], [np.array(b) for b in net.biases]


def bpgpu_epochs(workload: Workload, X: np.ndarray, y: np.ndarray, backend: str) -> Callable[[], float]:
    """A function that times one `Network.SGD` epoch, as a user calls it, from bpgpu's parameters for
    seed 1 each time: the time includes moving and checking the data. Its first call in a process
    also compiles (JAX) or builds GPU kernels (CuPy); later calls reuse them."""
    import bpgpu

    def once() -> float:
        net = bpgpu.Network(list(workload.sizes), backend=backend, seed=1, init=workload.init)
        net.backend.synchronize()
        start = time.perf_counter()
        net.SGD((X, y), 1, workload.batch, workload.eta)  # its last transfer waits for the device
        return time.perf_counter() - start

    return once


def bpgpu_epoch(workload: Workload, X: np.ndarray, y: np.ndarray, backend: str) -> tuple[float, float | None]:
    """One epoch of `bpgpu_epochs`: `(seconds, compile seconds or None)`.

    A compiling backend (JAX) is run twice: the first call compiles (its functions are cached by
    settings and shapes), the second is the epoch's time, and the difference is the compile time.
    """
    once = bpgpu_epochs(workload, X, y, backend)
    if backend != "jax":
        return once(), None
    first = once()
    seconds = once()
    return seconds, first - seconds


def bpgpu_epochs_memory(workload: Workload, X: np.ndarray, y: np.ndarray, epochs: int, rss) -> list[float]:
    """One `Network.SGD` call of `epochs` epochs on NumPy; `rss()` is read after every epoch."""
    import bpgpu

    after = []
    net = bpgpu.Network(list(workload.sizes), backend="numpy", seed=1, init=workload.init)
    net.SGD((X, y), epochs, workload.batch, workload.eta, callback=lambda record: after.append(rss()))
    return after


def torch_epoch(workload: Workload, X: np.ndarray, y: np.ndarray, device: str = "cpu") -> float:
    """PyTorch eager with autograd: nn.Linear + Sigmoid, optim.SGD, ½‖a − y‖² averaged over the batch,
    starting from bpgpu's parameters (`nn.Linear.weight` is (n_out, n_in), as bpgpu's weights)."""
    import torch

    torch.manual_seed(1)
    layers = []
    for w, b in zip(*initial_parameters(workload), strict=True):
        linear = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.Sigmoid()]
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


def torch_graph_epochs(
    workload: Workload, X: np.ndarray, y: np.ndarray, device: str = "cuda"
) -> Callable[[], float]:
    """PyTorch as a performance-minded user writes it on a GPU: `torch_epoch`'s model, cost and
    optimizer, with the whole step (gather, forward, backward, update) captured once as a CUDA graph
    and replayed for every whole mini-batch; the short last one runs eagerly. Returns a function
    that times one epoch from bpgpu's parameters each time (moving the data included); its first
    call also warms up and captures the graph."""
    import torch

    weights, biases = initial_parameters(workload)
    layers = []
    for w in weights:
        layers += [torch.nn.Linear(w.shape[1], w.shape[0]), torch.nn.Sigmoid()]
    model = torch.nn.Sequential(*layers).to(device)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    optimizer = torch.optim.SGD(model.parameters(), lr=workload.eta)
    rows = torch.zeros(workload.batch, dtype=torch.int64, device=device)  # the graph's gather indices
    data: dict[str, torch.Tensor] = {}
    graph = None

    def start_from_bpgpu() -> None:
        with torch.no_grad():
            for linear, w, b in zip(linears, weights, biases, strict=True):
                linear.weight.copy_(torch.from_numpy(w))  # in place: the graph keeps its addresses
                linear.bias.copy_(torch.from_numpy(b))

    def step(index: torch.Tensor) -> None:
        out = model(data["x"][index])
        loss = 0.5 * ((out - data["y"][index]) ** 2).sum(dim=1).mean()
        loss.backward()
        optimizer.step()

    def capture() -> torch.cuda.CUDAGraph:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up steps on a side stream, as PyTorch's recipe says
            for _ in range(3):
                optimizer.zero_grad(set_to_none=True)
                step(rows)
        torch.cuda.current_stream().wait_stream(side)
        captured = torch.cuda.CUDAGraph()
        optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(captured):
            step(rows)
        return captured

    def once() -> float:
        nonlocal graph
        torch.cuda.synchronize()
        begin = time.perf_counter()
        features = torch.from_numpy(X).to(device)
        targets = torch.nn.functional.one_hot(torch.from_numpy(y).to(device), workload.sizes[-1]).float()
        if data:  # the graph reads these buffers: refill them, never replace them
            data["x"].copy_(features)
            data["y"].copy_(targets)
        else:
            data.update(x=features, y=targets)
        if graph is None:
            graph = capture()
        start_from_bpgpu()
        n, batch = len(y), workload.batch
        order = torch.randperm(n, device=device)
        full = n // batch
        batches = order[: full * batch].reshape(full, batch)
        for k in range(full):
            rows.copy_(batches[k])
            graph.replay()
        if n % batch:
            optimizer.zero_grad(set_to_none=False)  # the graph's own gradient buffers, zeroed
            step(order[full * batch :])
        torch.cuda.synchronize()
        return time.perf_counter() - begin

    return once


def _sync(torch, device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def book_loop_epoch(workload: Workload, X: np.ndarray, y: np.ndarray, batches: int = 1000) -> float:
    """The book's network.py: one example at a time as a column vector, gradients summed per batch.

    Times `batches` mini-batches and extrapolates to the epoch (the loop is ~100× slower).
    """
    rng = np.random.default_rng(1)
    sizes = workload.sizes
    weights, biases = initial_parameters(workload)
    biases = [b[:, None] for b in biases]  # the book's column vectors
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


def gemm_floor_epoch(workload: Workload, X: np.ndarray, y: np.ndarray, xp=np) -> float:
    """Only the matrix products one epoch of backprop needs, same shapes, nothing else.

    Per step and layer: the forward product, the weight-gradient product and (above the first layer)
    the error sent back through wᵀ. Operands are prepared before timing; results are discarded.
    `xp=cupy` times cuBLAS instead of NumPy's BLAS (synchronised before and after).
    """
    rng = np.random.default_rng(1)
    sizes, n = workload.sizes, workload.batch
    weights = [xp.asarray(w) for w in initial_parameters(workload)[0]]
    acts = [xp.asarray(rng.random((n, s), dtype=np.float32)) for s in sizes]
    deltas = [xp.asarray(rng.random((n, s), dtype=np.float32)) for s in sizes[1:]]
    last = workload.rows - (workload.steps - 1) * n  # the last batch may be smaller
    sync = xp.cuda.Device().synchronize if xp is not np else (lambda: None)
    sync()
    start = time.perf_counter()
    for step in range(workload.steps):
        rows = n if step < workload.steps - 1 else last
        for l, w in enumerate(weights):
            _ = acts[l][:rows] @ w.T  # forward
            _ = deltas[l][:rows].T @ acts[l][:rows]  # ∂C/∂w
            if l > 0:
                _ = deltas[l][:rows] @ w  # δ back through wᵀ
    sync()
    return time.perf_counter() - start


def cupy_gemm_floor_epoch(workload: Workload, X: np.ndarray, y: np.ndarray) -> float:
    """The GEMM floor on the current CUDA device, with cuBLAS (after one untimed warm-up epoch)."""
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 1:
        raise RuntimeError("cupy-gemm-floor is not available on this machine: CuPy sees no CUDA device")
    gemm_floor_epoch(workload, X, y, cupy)  # cuBLAS picks its kernels on first use
    return gemm_floor_epoch(workload, X, y, cupy)


def xla_gemm_floor_epoch(workload: Workload, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The GEMM floor's products compiled by XLA (`jax.jit`), on JAX's default device.

    XLA would hoist products of the same operands out of the loop and drop unused ones, so each
    step takes its operands from one of four prepared blocks by the step's index and folds every
    product into the loop's carry with a max (a small extra pass over each product). Returns
    `(seconds, compile seconds)`: the epoch is timed on a second run of the compiled loops.
    """
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(1)
    sizes, n, blocks = workload.sizes, workload.batch, 4
    weights = [jnp.asarray(w) for w in initial_parameters(workload)[0]]
    acts = [jnp.asarray(rng.random((blocks, n, s), dtype=np.float32)) for s in sizes]
    deltas = [jnp.asarray(rng.random((blocks, n, s), dtype=np.float32)) for s in sizes[1:]]
    last = workload.rows - (workload.steps - 1) * n

    def products(rows: int):
        def body(i, total):
            for l, w in enumerate(weights):
                a, d = acts[l][i % blocks, :rows], deltas[l][i % blocks, :rows]
                total = jnp.maximum(total, jnp.max(a @ w.T))
                total = jnp.maximum(total, jnp.max(d.T @ a))
                if l > 0:
                    total = jnp.maximum(total, jnp.max(d @ w))
            return total

        return jax.jit(lambda count: jax.lax.fori_loop(0, count, body, jnp.float32(0)))

    full, short = products(n), products(last)

    def epoch() -> float:
        start = time.perf_counter()
        total = jnp.maximum(full(workload.steps - 1), short(1))
        total.block_until_ready()
        return time.perf_counter() - start

    first = epoch()
    seconds = epoch()
    return seconds, first - seconds
