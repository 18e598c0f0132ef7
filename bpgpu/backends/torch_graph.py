"""The training step captured once as a CUDA graph and replayed, for the torch backend on a GPU.

At the book's mini-batch of 10 an eager step is about 30 kernel launches of 15-20 µs each, and the
GPU does almost no arithmetic; a replayed graph launches them all at once. What is captured is
`bpgpu.step.Step` itself, the same array-API calls as the eager path, on fixed buffers:

    params  <- the step's own result, copied back in place at the end of the graph
    rows    <- order[offset : offset + batch], gathered inside the graph; offset += batch

so one replay is one whole step, and `count` replays run a call's mini-batches with no work from
Python between them. At a call's start the parameters, the epoch's order (once an epoch), the
offset and η are written into the buffers; at its end the parameters are copied out, so nothing the
caller holds is ever changed in place.

A `Replayer` is built for one step, one batch size and one data set, and is kept while those stay
the same (a second `SGD` call with new data captures again); it holds those data until then, or
until its network is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Params = Any  # bpgpu.step.Params: (weights, biases, velocities), a NamedTuple


def leaves(params: Params) -> list[Any]:
    """Every array of `params`, in a fixed order: weights, biases, then velocities."""
    return [*params.weights, *params.biases, *(v for group in params.velocities for v in group)]


def rebuild(like: Params, arrays: list[Any]) -> Params:
    """`Params` shaped like `like`, from `arrays` in the order `leaves` gives."""
    L = len(like.weights)
    weights, biases, rest = arrays[:L], arrays[L : 2 * L], arrays[2 * L :]
    velocities = (rest[:L], rest[L:]) if like.velocities else ()
    return like._replace(weights=list(weights), biases=list(biases), velocities=velocities)


class Replayer:
    """One captured step of `batch` rows of `x` and `y` (see the module docstring).

    `capture(body)` records `body()` once; the default is a CUDA graph on `torch`'s current stream
    (after one warm-up run on a side stream, as PyTorch's recipe says). Tests pass one that just
    calls `body`, which checks the buffer logic on the CPU.
    """

    def __init__(
        self,
        torch: Any,
        step: Callable[..., Params],
        params: Params,
        x: Any,
        y: Any,
        order: Any,
        batch: int,
        capture: Callable[[Callable[[], None]], Callable[[], None]] | None = None,
    ) -> None:
        self.torch, self.step, self.x, self.y, self.batch = torch, step, x, y, batch
        device = x.device
        self.like = params
        self.buffers = [p.clone() for p in leaves(params)]
        self.order = order.clone()
        self.seen_order = order
        self.offset = torch.zeros((), dtype=torch.int64, device=device)
        self.eta = torch.zeros((), dtype=params.weights[0].dtype, device=device)
        self.span = torch.arange(batch, dtype=torch.int64, device=device)
        self.replay = (capture or self._cuda_graph)(self._body)

    def matches(self, step: Any, x: Any, y: Any, batch: int, params: Params) -> bool:
        """Whether this capture can run `step` on these data, batch and parameter shapes."""
        shapes = [(tuple(p.shape), p.dtype) for p in leaves(params)]
        same_data = x is self.x and y is self.y  # `is`: the graph reads these very buffers
        return (
            same_data
            and (step, batch) == (self.step, self.batch)
            and shapes == [(tuple(b.shape), b.dtype) for b in self.buffers]
        )

    def run(self, params: Params, order: Any, start: int, count: int, eta: float) -> Params:
        """`count` steps from `params` on the mini-batches from row `start` of `order`."""
        for buffer, value in zip(self.buffers, leaves(params), strict=True):
            buffer.copy_(value)
        if order is not self.seen_order:  # a new epoch's shuffle: copied once
            self.order.copy_(order)
            self.seen_order = order
        self.offset.fill_(start)
        self.eta.fill_(eta)
        for _ in range(count):
            self.replay()
        return rebuild(self.like, [b.clone() for b in self.buffers])

    def _body(self) -> None:
        """One step on the buffers, in place: what the graph records."""
        torch = self.torch
        rows = torch.index_select(self.order, 0, self.offset + self.span)
        x, y = torch.index_select(self.x, 0, rows), torch.index_select(self.y, 0, rows)
        new = self.step(rebuild(self.like, self.buffers), x, y, self.eta)
        for buffer, value in zip(self.buffers, leaves(new), strict=True):
            buffer.copy_(value)
        self.offset.add_(self.batch)

    def _cuda_graph(self, body: Callable[[], None]) -> Callable[[], None]:
        torch = self.torch
        saved = [b.clone() for b in self.buffers]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            body()  # warm-up: cuBLAS handles and workspaces exist before the capture
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            body()
        for buffer, value in zip(self.buffers, saved, strict=True):  # undo the warm-up step
            buffer.copy_(value)
        return graph.replay
