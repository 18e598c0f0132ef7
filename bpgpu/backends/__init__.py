"""The one front door to array libraries: `available_backends`, `get_backend` and `Backend`.

Each backend is a thin module beside this one with a `load()` that returns a `Backend` or raises
`RuntimeError` saying why it cannot run here. Nothing else in bpgpu knows a backend by name.
"""

from __future__ import annotations

import importlib
import logging
import os

from . import routes
from ._base import Backend

__all__ = ["BACKEND_NAMES", "Backend", "available_backends", "get_backend"]

_MODULES = {
    "numpy": "numpy_backend",
    "cupy": "cupy_backend",
    "torch": "torch_backend",
    "jax": "jax_backend",
    "array_api_strict": "strict_backend",
}
BACKEND_NAMES: tuple[str, ...] = tuple(_MODULES)
ENV_VAR = "BPGPU_BACKEND"

_log = logging.getLogger("bpgpu")
_auto_announced = False


def _load(name: str) -> Backend:
    module = importlib.import_module(f"{__name__}.{_MODULES[name]}")
    return module.load()


def available_backends() -> list[str]:
    """Names of the backends that work on this machine right now, in `BACKEND_NAMES` order.

    `"cupy"` is listed only when CuPy imports *and* a CUDA device runs a test kernel.
    """
    names = []
    for name in BACKEND_NAMES:
        try:
            _load(name)
        except RuntimeError:
            continue
        names.append(name)
    return names


def get_backend(name: str | Backend | None = None) -> Backend:
    """The backend called `name`.

    `None` reads the environment variable `BPGPU_BACKEND`, else means `"auto"`: CuPy when a CUDA
    device works, NumPy otherwise (the choice is logged once on the `"bpgpu"` logger). A `Backend`
    is returned as it is.

    Raises:
        ValueError: `name` is not one of `BACKEND_NAMES` or `"auto"`.
        RuntimeError: the backend is known but cannot run here; the cause holds the original error.
    """
    if isinstance(name, Backend):
        return name
    source = "argument"
    if name is None:
        name, source = os.environ.get(ENV_VAR) or "auto", f"environment variable {ENV_VAR}"
    if not isinstance(name, str):
        raise TypeError(f"backend must be a name (str), a Backend or None, got {type(name).__name__}")
    key = name.strip().lower()
    if key == "auto":
        return _auto()
    if key not in _MODULES:
        known = ", ".join(repr(n) for n in ("auto", *BACKEND_NAMES))
        raise ValueError(f"unknown backend {name!r} (from {source}); expected one of {known}")
    return _load(key)


def _auto() -> Backend:
    """CuPy when a CUDA device works, else NumPy; said once, in one short line at INFO, with the
    reason CuPy could not run at DEBUG (`bpgpu info` and `--debug` show it)."""
    global _auto_announced
    try:
        backend, why = _load("cupy"), None
    except RuntimeError as exc:
        backend, why = _load("numpy"), exc
    if not _auto_announced:
        if why is None:
            _log.info("bpgpu: backend 'auto' chose cupy on %s (a CUDA device works)", backend.device)
        else:
            _log.info("bpgpu: no CUDA GPU: training on the CPU with NumPy")
            _log.debug("bpgpu: why not CuPy: %s", why)
        advice = routes.faster_route(backend.name, routes.torch_installed())
        if advice:
            _log.info("bpgpu: if PyTorch sees this GPU, %s", advice)
        _auto_announced = True
    return backend
