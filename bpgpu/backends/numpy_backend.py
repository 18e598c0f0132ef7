"""NumPy on the CPU: always available, and the fallback of `"auto"`."""

from __future__ import annotations

import array_api_compat.numpy as xp

from ._base import Backend


class NumpyBackend(Backend):
    name = "numpy"


def load() -> NumpyBackend:
    return NumpyBackend(xp, "cpu")
