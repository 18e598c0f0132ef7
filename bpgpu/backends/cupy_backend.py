"""CuPy on the current CUDA device.

Importing CuPy succeeds on machines without a GPU or driver; the failure comes at the first device
call. `load` therefore asks for the device count and runs one tiny kernel, turning any failure into
the `RuntimeError` of `unavailable` with the original error kept as its cause.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from ._base import Backend, unavailable


class CupyBackend(Backend):
    name = "cupy"

    def __init__(self, xp: Any, device: Any, cupy: Any) -> None:
        super().__init__(xp, device)
        self._cupy = cupy

    def _from_host(self, host: np.ndarray, dtype: Any) -> Any:
        with self.device:
            return self._cupy.asarray(host, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        return array.get()

    def synchronize(self) -> None:
        self.device.synchronize()


def load() -> CupyBackend:
    try:
        cupy = importlib.import_module("cupy")
    except Exception as exc:  # ImportError, or a broken install raising anything else
        raise unavailable("cupy", 'install it with pip install "bpgpu[cuda12]"', exc) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count > 0:
            device = cupy.cuda.Device()
            probe = float((cupy.arange(4, dtype=cupy.float32) * 2).sum().get())  # one kernel
            xp = importlib.import_module("array_api_compat.cupy")
    except Exception as exc:  # CUDARuntimeError without a driver, missing libraries, compiler...
        raise unavailable("cupy", "CuPy imports but no CUDA device works", exc) from exc
    if count < 1:
        raise unavailable("cupy", "CuPy imports but sees no CUDA device")
    if probe != 12.0:
        raise unavailable("cupy", f"a test kernel on the GPU returned {probe} instead of 12.0")
    return CupyBackend(xp, device, cupy)
