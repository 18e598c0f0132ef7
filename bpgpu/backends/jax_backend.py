"""JAX: `jax.numpy` (an array-API namespace of its own) on JAX's default device, with the training
step compiled by XLA.

`pip install jax` runs on the CPU; `pip install "jax[cuda12]"` (or `jax[cuda13]`) puts the default
device on an NVIDIA GPU. What this module adds to the other backends:

- **Compilation.** `compile` traces a pure step or metric (`bpgpu.step`) once per shape with
  `jax.jit`, donating the old parameters' buffers where asked; `run_steps` runs many mini-batches in
  one compiled call (the device-side gather of those mini-batches, then a `lax.scan` over them
  that skips the steps a short last call does not take). Compiled functions are cached by the
  step's settings, so a second `SGD` call with the same network shape, options, data shape and
  batch size compiles nothing.
- **Full float32.** Matrix products use `jax.default_matmul_precision("highest")`, also in bpgpu's
  scope: on Ampere and later GPUs JAX's default is TF32, which would not match the other backends.
- **float64, scoped.** JAX computes in 32 bits unless `jax_enable_x64` is set. This backend sets it
  only around bpgpu's own work (`activate`, and every array it makes), through `jax.enable_x64`,
  which is thread-local; the user's other JAX code keeps its mode (but `SGD`'s `callback` and
  `progress` run inside bpgpu's call, so in x64 mode). A float64 network's arrays are
  float64 jax arrays: compute on them inside `with net.backend.activate():` (or enable x64
  yourself), since JAX outside x64 mode truncates float64 results to float32.
- **Donated buffers.** During `SGD` the arrays a network holds mid-epoch (say, read by a
  `progress` callback) are consumed by the next compiled call: copy them to keep them. What it holds
  at the end of every epoch, and whatever it held before `SGD`, is never consumed.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ._base import Backend, unavailable
from .host import quiet_floating_point

CACHE_SIZE = 64  # compiled functions kept (each is a few settings and shapes of one network)


class JaxBackend(Backend):
    name = "jax"

    def __init__(self, xp: Any, device: Any, jax: Any) -> None:
        super().__init__(xp, device)
        self._jax = jax

    @contextlib.contextmanager
    def activate(self) -> Iterator[None]:
        # float32 products in full float32, as every other backend computes them: on Ampere and
        # later GPUs JAX would use TF32 (a 10-bit mantissa) by default. Python floats enter traced
        # code through NumPy casts, which warn on overflow.
        jax = self._jax
        with jax.enable_x64(True), jax.default_matmul_precision("highest"), quiet_floating_point():
            yield

    def asarray(self, array: Any, dtype: Any = None) -> Any:
        with self.activate():  # so that float64 and int64 stay 64-bit
            return super().asarray(array, dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.asarray(self._jax.device_get(array))

    def synchronize(self) -> None:
        # One device computes in order: a small computation finishing means all before it has.
        self._jax.effects_barrier()
        self._jax.block_until_ready(self.xp.zeros((), device=self.device) + 1)

    def memory_bytes(self) -> int | None:
        stats = self.device.memory_stats() if self.device.platform != "cpu" else None
        if stats and stats.get("bytes_limit"):
            return int(stats["bytes_limit"])
        return super().memory_bytes()

    def compile(self, fn: Callable[..., Any], *, donate: bool = False) -> Callable[..., Any]:
        owner = getattr(fn, "__self__", None)
        if owner is not None:  # a bound method (`step.gradient`): equal only to itself, so key it
            return self._scoped(_jit_method(owner, fn.__func__, donate))  # by its (hashable) owner
        return self._scoped(_jit(fn, donate))

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
        most: int,
    ) -> Any:
        with self.activate():
            new = _loop(step, batch, most)(params, x, y, order, start, count, eta)
            # JAX returns once the call is queued: wait for it, so that progress reports and Ctrl-C
            # come when the steps are done (ten waits an epoch cost nothing measurable)
            return self._jax.block_until_ready(new)

    def keep(self, arrays: Sequence[Any]) -> list[Any]:
        with self.activate():
            return [self.xp.asarray(a, copy=True) for a in arrays]

    def _from_host(self, host: np.ndarray, dtype: Any) -> Any:
        array = self._jax.device_put(host, self.device)  # a third faster than jnp.asarray on the CPU
        return array if dtype is None or array.dtype == dtype else self.xp.astype(array, dtype)

    def _scoped(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def call(*args: Any) -> Any:
            with self.activate():
                return fn(*args)

        return call


@functools.lru_cache(maxsize=CACHE_SIZE)
def _jit(fn: Callable[..., Any], donate: bool) -> Callable[..., Any]:
    """`jax.jit(fn)`, one per (hashable) `fn`, so that its compiled shapes are kept across calls."""
    jax = importlib.import_module("jax")
    return jax.jit(fn, donate_argnums=(0,) if donate else ())


@functools.lru_cache(maxsize=CACHE_SIZE)
def _jit_method(owner: Any, function: Callable[..., Any], donate: bool) -> Callable[..., Any]:
    """`jax.jit` of `function` bound to `owner`, one per equal owner and function."""
    return _jit(types.MethodType(function, owner), donate)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _loop(step: Callable[..., Any], batch: int, length: int) -> Callable[..., Any]:
    """One compiled call that runs `count` ≤ `length` steps of `batch` rows from row `start` of
    `order`: it gathers the `length` mini-batches at once, then scans over them, skipping the steps
    beyond `count` (so a short last chunk needs no second compilation)."""
    jax = importlib.import_module("jax")
    jnp = jax.numpy

    def run(params: Any, x: Any, y: Any, order: Any, start: Any, count: Any, eta: Any) -> Any:
        # rows past the end (in skipped steps only) are clipped to the last one: always in range
        rows = jnp.take(order, start + jnp.arange(length * batch), mode="clip")
        xs = jnp.reshape(jnp.take(x, rows, axis=0, mode="clip"), (length, batch, x.shape[1]))
        ys = jnp.reshape(jnp.take(y, rows, axis=0, mode="clip"), (length, batch, y.shape[1]))

        def body(p: Any, item: Any) -> Any:
            xb, yb, i = item
            return jax.lax.cond(i < count, lambda q: step(q, xb, yb, eta), lambda q: q, p), None

        return jax.lax.scan(body, params, (xs, ys, jnp.arange(length)))[0]

    return jax.jit(run, donate_argnums=(0,))


def load() -> JaxBackend:
    try:
        jax = importlib.import_module("jax")
        devices = jax.devices()  # the default backend's: GPUs when JAX sees one, else the CPU
    except Exception as exc:  # ImportError, or a broken install (CUDA plugin without a driver...)
        raise unavailable(
            "jax", 'install it with pip install jax (GPUs: pip install "jax[cuda12]")', exc
        ) from exc
    if not devices:
        raise unavailable("jax", "JAX imports but lists no device")
    return JaxBackend(jax.numpy, devices[0], jax)
