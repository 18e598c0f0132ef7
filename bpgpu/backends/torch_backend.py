"""PyTorch tensors through `array_api_compat.torch`, on the current CUDA device when there is one.

On a CUDA device, `run_steps` captures the training step once as a CUDA graph and replays it for
every whole mini-batch (`torch_graph`); a call of one step with no graph for its shape (the
epoch's short last mini-batch) runs eagerly. `BPGPU_TORCH_CUDA_GRAPHS=0` runs every step eagerly,
and so does a backend whose capture failed (logged on the "bpgpu" logger).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ._base import Backend, namespace_with, unavailable
from .torch_graph import Replayer

GRAPHS_VARIABLE = "BPGPU_TORCH_CUDA_GRAPHS"
_log = logging.getLogger("bpgpu")


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, xp: Any, device: Any, torch: Any) -> None:
        super().__init__(xp, device)
        self._torch = torch
        self.graphs = device.type == "cuda" and os.environ.get(GRAPHS_VARIABLE) != "0"
        self._replayer: Replayer | None = None

    def dtype(self, name: str) -> Any:
        return getattr(self._torch, name)

    def owns(self, array: Any) -> bool:
        return isinstance(array, self._torch.Tensor)  # the namespace is a copy (`capturable`): not `is`

    def asarray(self, array: Any, dtype: Any = None) -> Any:
        if isinstance(array, self._torch.Tensor) and array.requires_grad:
            array = array.detach()  # bpgpu computes its own gradients: never extend an autograd graph
        return super().asarray(array, dtype)

    def _from_host(self, host: np.ndarray, dtype: Any) -> Any:
        # torch wraps only writable arrays with positive strides, and not every numpy dtype
        # (uint16, for one): copy or widen those on the host first.
        if host.dtype.kind == "u" and host.dtype.itemsize > 1:
            host = host.astype(np.int64)
        host = np.require(host, requirements=["C", "W"])
        return self._torch.as_tensor(host, dtype=dtype, device=self.device)

    def to_numpy(self, array: Any) -> np.ndarray:
        return array.detach().cpu().numpy()

    def memory_bytes(self) -> int | None:
        if self.device.type == "cuda":
            return int(self._torch.cuda.get_device_properties(self.device).total_memory)
        return super().memory_bytes()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self._torch.cuda.synchronize(self.device)

    def run_steps(
        self,
        step: Callable[..., Any],
        params: Any,
        x: Any,
        y: Any,
        order: Any,
        start: int,
        count: int,
        batch: int,
        eta: float,
    ) -> Any:
        replayer = self._replayer
        if self.graphs and (replayer is None or not replayer.matches(step, x, y, batch, params)):
            replayer = None
            if count > 1:  # worth a capture: the calls to come take this many steps each
                replayer = self._capture(step, params, x, y, order, batch)
        if replayer is None:
            return super().run_steps(step, params, x, y, order, start, count, batch, eta)
        with self._torch.cuda.device(self.device):
            return replayer.run(params, order, start, count, eta)

    def _capture(self, step: Any, params: Any, x: Any, y: Any, order: Any, batch: int) -> Replayer | None:
        self._replayer = None  # the old graph and the data it holds go first
        try:
            with self._torch.cuda.device(self.device):
                self._replayer = Replayer(self._torch, step, params, x, y, order, batch)
        except Exception as exc:  # an operation that cannot be captured: eager from now on
            _log.info("bpgpu: could not capture the step as a CUDA graph; running it eagerly: %s", exc)
            self.graphs = False
        return self._replayer


def capturable(compat: Any, torch: Any) -> Any:
    """`array_api_compat.torch`, except that `maximum` and `minimum` of a floating tensor and a
    Python number clamp it (`torch.clamp`: the same values, NaN included). The compat functions
    first make the number a tensor on the device, a copy from the host that a CUDA graph capture
    refuses, and sigmoid (`minimum(z, 88.0)`) and ReLU (`maximum(z, 0.0)`) are in every step."""

    def bound(name: str, keyword: str) -> Callable[..., Any]:
        general = getattr(compat, name)

        def clamped(x1: Any, x2: Any, /) -> Any:
            number = isinstance(x2, (int, float)) and not isinstance(x2, bool)
            if number and isinstance(x1, torch.Tensor) and x1.dtype.is_floating_point:
                return torch.clamp(x1, **{keyword: x2})
            return general(x1, x2)

        clamped.__name__ = clamped.__qualname__ = name
        return clamped

    return namespace_with(compat, maximum=bound("maximum", "min"), minimum=bound("minimum", "max"))


def load() -> TorchBackend:
    try:
        torch = importlib.import_module("torch")
        xp = capturable(importlib.import_module("array_api_compat.torch"), torch)
    except Exception as exc:  # ImportError, or a broken install (missing CUDA libraries: OSError)
        hint = (
            "install its CPU build with pip install torch --index-url https://download.pytorch.org/whl/cpu "
            "(plain pip install torch brings the multi-GB CUDA build)"
        )
        raise unavailable("torch", hint, exc) from exc
    if torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        device = torch.device("cpu")
    return TorchBackend(xp, device, torch)
