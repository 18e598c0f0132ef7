"""CuPy on the CUDA device that is current when the backend is created.

Importing CuPy succeeds on machines without a GPU or driver; the failure comes at the first device
call. `load` therefore asks for the device count and runs a tiny product through the same libraries
training uses (an elementwise kernel and cuBLAS), turning any failure into the `RuntimeError` of
`unavailable` with the original error kept as its cause.

CuPy compiles each elementwise kernel the first time it runs (NVRTC) and keeps it in its kernel
cache (`$CUPY_CACHE_DIR`, by default `~/.cupy/kernel_cache`). On a machine whose cache is empty
that makes the first epoch 10 s or more longer, so the first training call says so, once, on the
"bpgpu" logger at WARNING level (shown on stderr unless logging is configured otherwise). `bpgpu
check` runs every kernel training needs and so leaves the cache warm.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._base import Backend, unavailable

PROBE_RESULT = [[2.0, 4.0], [4.0, 14.0]]  # [[0, 1], [2, 3]] @ its transpose, plus 1
COLD_CACHE_NOTE = "compiling GPU kernels, once per machine (CuPy's kernel cache in %s is empty)"
_log = logging.getLogger("bpgpu")


class CupyBackend(Backend):
    name = "cupy"

    def __init__(self, xp: Any, device: Any, cupy: Any) -> None:
        super().__init__(xp, device)
        self._cupy = cupy

    def _from_host(self, host: np.ndarray, dtype: Any) -> Any:
        with self.device:
            return self._cupy.asarray(host, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        return self._cupy.asnumpy(array)

    def synchronize(self) -> None:
        self.device.synchronize()

    def message_buffer(self, flat: Any, device_aware: bool) -> Any:
        if not device_aware:
            return super().message_buffer(flat, device_aware)
        self.synchronize()  # a CUDA-aware MPI reads the device buffer outside CuPy's stream
        return flat

    def memory_bytes(self) -> int | None:
        return int(self.device.mem_info[1])  # (free, total) bytes of the device

    def activate(self) -> Any:
        return self.device  # a cupy.cuda.Device is a context manager that makes it current

    def run_steps(self, step: Callable[..., Any], params: Any, *args: Any) -> Any:
        _announce_cold_cache()
        return super().run_steps(step, params, *args)


def kernel_cache() -> Path:
    """Where CuPy keeps the kernels it compiled."""
    return Path(os.environ.get("CUPY_CACHE_DIR") or Path.home() / ".cupy" / "kernel_cache")


@functools.lru_cache(maxsize=1)
def _announce_cold_cache() -> None:
    folder = kernel_cache()
    if not folder.is_dir() or not any(folder.iterdir()):
        _log.warning("bpgpu: " + COLD_CACHE_NOTE, folder)


def load() -> CupyBackend:
    try:
        cupy = importlib.import_module("cupy")
    except Exception as exc:  # ImportError, or a broken install raising anything else
        raise unavailable("cupy", "install it with pip install cupy-cuda12x (or cupy-cuda13x)", exc) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count > 0:
            device = cupy.cuda.Device()
            a = cupy.arange(4, dtype=cupy.float32).reshape(2, 2)
            probe = cupy.asnumpy(a @ a.T + 1).tolist()  # cuBLAS, then an elementwise kernel
            xp = importlib.import_module("array_api_compat.cupy")
    except Exception as exc:  # CUDARuntimeError without a driver, missing libraries, compiler...
        raise unavailable("cupy", "CuPy imports but no CUDA device works", exc) from exc
    if count < 1:
        raise unavailable("cupy", "CuPy imports but sees no CUDA device")
    if probe != PROBE_RESULT:
        raise unavailable("cupy", f"a test product on the GPU gave {probe} instead of {PROBE_RESULT}")
    return CupyBackend(xp, device, cupy)
