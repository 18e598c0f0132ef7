"""The `Backend` interface: what the rest of bpgpu may ask of an array library.

A backend is an array-API namespace `xp` bound to one device, plus the few things the standard leaves
out: moving host data onto the device, bringing an array back to a host `numpy.ndarray`, waiting
for queued device work (for honest timings), and running the training step (`bpgpu.step`), which
a backend may compile. Subclasses live one per module beside this one.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

from .host import host_memory_bytes

_NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, floating: what can be cast to a float dtype


class Backend:
    """One array library on one device. Create them with `bpgpu.get_backend`, not directly."""

    name: str = ""

    def __init__(self, xp: ModuleType, device: Any) -> None:
        self.xp = xp
        self.device = device

    def __repr__(self) -> str:
        return f"Backend(name={self.name!r}, device={self.device!r})"

    @property
    def library_version(self) -> str:
        """The version of the array library behind this backend (for `bpgpu info` and reports)."""
        module = sys.modules.get(self.name)
        return str(getattr(module, "__version__", "unknown"))

    def dtype(self, name: str) -> Any:
        """The namespace's dtype object for `name` ("float32", "float64", "int64", ...)."""
        return getattr(self.xp, name)

    def owns(self, array: Any) -> bool:
        """True when `array` is an array of this backend's library (on any device)."""
        return array_api_compat.is_array_api_obj(array) and (
            array_api_compat.array_namespace(array) is self.xp
        )

    def asarray(self, array: Any, dtype: Any = None) -> Any:
        """`array` as an array of this backend on its device, optionally cast to `dtype`.

        Accepts an array of this backend on the same device (no copy when nothing changes) or host
        data: a `numpy.ndarray`, or anything `numpy.asarray` takes (lists, scalars). An array of
        another library raises `TypeError`; one on another device raises `ValueError`.
        """
        array = self.prepare(array)
        if array_api_compat.is_numpy_array(array):
            return self._from_host(array, dtype)
        return array if dtype is None else self.xp.astype(array, dtype, copy=False)

    def prepare(self, array: Any) -> Any:
        """`array` itself when it is an array of this backend on its device; else host data as a
        `numpy.ndarray` of real numbers in native byte order, ready to move (what `asarray` moves).

        So a caller can check host data on the host, before it moves, and device data where it is.
        Raises as `asarray` does.
        """
        if self.owns(array) and not array_api_compat.is_numpy_array(array):
            here = array_api_compat.device(array)
            if here != self.device:
                raise ValueError(
                    f"array is on device {here!r} but this {self.name} backend uses {self.device!r}"
                )
            return array
        if array_api_compat.is_array_api_obj(array) and not array_api_compat.is_numpy_array(array):
            other = array_api_compat.array_namespace(array).__name__
            accepted = (
                "a numpy array" if self.name == "numpy" else f"a host numpy array or a {self.name} array"
            )
            raise TypeError(
                f"expected {accepted}, got an array of {other}: "
                f"move it to the host first or use a network with that backend (mixed backends)"
            )
        host = np.asarray(array)
        if host.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"expected real numbers (bool, int or float), got dtype {host.dtype}")
        if not host.dtype.isnative:
            host = host.astype(host.dtype.newbyteorder("="))
        if host.dtype == np.float16:
            host = host.astype(np.float32)  # float16 is not in the array API standard; exact
        return host

    def to_numpy(self, array: Any) -> np.ndarray:
        """A host `numpy.ndarray` holding the values of `array` (the only way back to the host)."""
        return np.asarray(array)

    def synchronize(self) -> None:
        """Wait until all queued work on the device has finished (a no-op on the CPU)."""

    def message_buffer(self, flat: Any, device_aware: bool) -> Any:
        """A contiguous, writable buffer holding the 1-d `flat` that MPI reads and writes in place.

        By default a host copy (staged through host memory; `flat` itself when it is a writable host
        array already); a backend whose devices an MPI built for them reads directly
        (`device_aware`) returns the device array. `from_message_buffer` turns it back."""
        host = self.to_numpy(flat)
        return host if host.flags.writeable and host.flags.c_contiguous else host.copy()

    def from_message_buffer(self, buffer: Any, flat: Any) -> Any:
        """The array of this backend that `buffer` (from `message_buffer(flat, ...)`) now holds."""
        return flat if buffer is flat else self.asarray(buffer)

    def memory_bytes(self) -> int | None:
        """The most memory this backend's arrays could ever use: the device's total (the host's for
        CPU backends), or None when unknown. `Network` refuses sizes whose parameters exceed it."""
        return host_memory_bytes()

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        """A context in which new arrays and kernels go to this backend's device, and in which
        floating-point overflow is silent (bpgpu checks results for NaN and infinity itself).

        A no-op where the library places work by its arrays alone and never warns; CuPy follows a
        *current* device; NumPy warns unless told not to.
        """
        return contextlib.nullcontext()

    # ---- running the training step: eager by default, one Python call per mini-batch -----------

    def compile(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn`, a pure function of arrays (a `bpgpu.step.Step`, one of its methods, or `Metrics`),
        ready to call many times. It never consumes or changes its arguments.

        The default returns `fn` itself: it then runs eagerly, one library call per operation.
        """
        return fn

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
        """`count` steps of `step` from `params`, on the mini-batches of `batch` rows of `x` and `y`
        that begin at row `start` of the shuffled `order` (device indices): the new parameters.
        Every mini-batch is whole (`start + count * batch <= len(order)`); an epoch's short last
        mini-batch is a call of its own (`count` 1, `batch` its rows). `params` is left as it was.

        The default gathers the call's rows on the device once (`xp.take`, two launches instead of
        two a step), then loops in Python over their mini-batches, which are slices of that.
        """
        rows = order[start : start + count * batch]
        xs, ys = self.xp.take(x, rows, axis=0), self.xp.take(y, rows, axis=0)
        for k in range(0, count * batch, batch):
            params = step(params, xs[k : k + batch, ...], ys[k : k + batch, ...], eta)
        return params

    def steps_per_call(self, steps: int) -> int:
        """How many of an epoch's `steps` whole mini-batches one `run_steps` call should take; the
        training loop reports progress (and acts on Ctrl-C) between calls. The default is a tenth
        of them: 10 to 20 calls an epoch (one per step when there are fewer than 20, and one
        more for a short last batch), and little Python between steps."""
        return max(1, steps // 10)

    def _from_host(self, host: np.ndarray, dtype: Any) -> Any:
        return self.xp.asarray(host, dtype=dtype, device=self.device)


def namespace_with(namespace: ModuleType, **overrides: Callable[..., Any]) -> ModuleType:
    """A copy of the array-API `namespace` module with some functions replaced: the thin shims a
    backend needs where its library does something the step cannot afford."""
    copy = ModuleType(namespace.__name__, namespace.__doc__)
    copy.__dict__.update({k: v for k, v in vars(namespace).items() if k not in ("__name__", "__doc__")})
    copy.__dict__.update(overrides)
    return copy


def unavailable(name: str, why: str, cause: BaseException | None = None) -> RuntimeError:
    """The error raised when backend `name` is known but cannot run here."""
    detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
    return RuntimeError(f"backend {name!r} is not available on this machine: {why}{detail}")
