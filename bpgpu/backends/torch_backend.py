"""PyTorch tensors through `array_api_compat.torch`, on the current CUDA device when there is one."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ._base import Backend, unavailable


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, xp: Any, device: Any, torch: Any) -> None:
        super().__init__(xp, device)
        self._torch = torch

    def dtype(self, name: str) -> Any:
        return getattr(self._torch, name)

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


def load() -> TorchBackend:
    try:
        torch = importlib.import_module("torch")
        xp = importlib.import_module("array_api_compat.torch")
    except Exception as exc:  # ImportError, or a broken install (missing CUDA libraries: OSError)
        raise unavailable("torch", "install it with pip install torch", exc) from exc
    if torch.cuda.is_available():
        device = torch.device("cuda", torch.cuda.current_device())
    else:
        device = torch.device("cpu")
    return TorchBackend(xp, device, torch)
