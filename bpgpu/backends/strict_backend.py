"""`array_api_strict`: the standard and nothing more, on the CPU.

It exists to prove that bpgpu's math calls only what the array API standard defines: any other call
fails loudly here even when NumPy, CuPy and PyTorch would have accepted it.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._base import Backend, unavailable
from .host import quiet_floating_point


class StrictBackend(Backend):
    name = "array_api_strict"

    def activate(self) -> Any:
        return quiet_floating_point()


def load() -> StrictBackend:
    try:
        xp = importlib.import_module("array_api_strict")
    except Exception as exc:  # ImportError, or a broken install raising anything else
        raise unavailable("array_api_strict", "install it with pip install array-api-strict", exc) from exc
    return StrictBackend(xp, xp.Device("CPU_DEVICE"))
