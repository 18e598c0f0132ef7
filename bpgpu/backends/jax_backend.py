"""JAX: `jax.numpy` (an array-API namespace of its own) on JAX's default device, with the training
step compiled by XLA.

`pip install jax` runs on the CPU; `pip install "jax[cuda12]"` (or `jax[cuda13]`) puts the default
device on an NVIDIA GPU. What this module adds to the other backends:

- **One device program per call.** `run_steps` runs a tenth of an epoch's mini-batches as one
  compiled call: the device-side gather of those mini-batches, then a `lax.scan` of exactly that
  many steps. Nothing inside the loop goes back to the host (no conditional, no callback), so on a
  GPU the steps queue back to back. An epoch compiles at most three loops (the usual call, a
  shorter last call where the steps do not divide evenly, and the short last mini-batch), and
  `steps_per_call` picks a call length that divides the steps where it can. Compiled functions are
  cached by the step's settings and the shapes, so a second `SGD` call compiles nothing.
- **Compiled once per machine.** Unless the program configured JAX's persistent compilation cache
  itself, bpgpu turns it on in `~/.cache/bpgpu/jax` (or `$XDG_CACHE_HOME/bpgpu/jax`), with every
  compilation cached (XLA's GPU autotuning results go there too), so a second process compiles
  nothing. It is not bounded: JAX's eviction (`jax_compilation_cache_max_size`) races between
  processes that share the folder (MPI ranks, parallel tests) and fails their writes, and the
  programs are small (about 7 kB each on the CPU); delete the folder to empty it.
  `BPGPU_JAX_CACHE=0` leaves JAX's cache alone; `BPGPU_JAX_CACHE=/some/folder` picks the folder.
- **CUDA graphs for the loops.** On a CUDA GPU, XLA's command buffers (CUDA graphs) leave out
  loops by default; before JAX starts its GPU backend, bpgpu adds `WHILE` and `CONDITIONAL` to
  them by appending `--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL` to `XLA_FLAGS` (after the
  program's own flags, which it never changes; one that already names the option wins).
  `BPGPU_XLA_COMMAND_BUFFERS=0` turns this off. Once JAX's backend has started, it is too late and
  nothing is changed.
- **Full float32.** Matrix products use `jax.default_matmul_precision("highest")`, also in bpgpu's
  scope: on Ampere and later GPUs JAX's default is TF32, which would not match the other backends.
- **float64, scoped.** JAX computes in 32 bits unless `jax_enable_x64` is set. This backend sets it
  only around bpgpu's own work (`activate`, and every array it makes), through `jax.enable_x64`,
  which is thread-local; the user's other JAX code keeps its mode (but `SGD`'s `callback` and
  `progress` run inside bpgpu's call, so in x64 mode). A float64 network's arrays are
  float64 jax arrays: compute on them inside `with net.backend.activate():` (or enable x64
  yourself), since JAX outside x64 mode truncates float64 results to float32.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import logging
import os
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._base import Backend, unavailable
from .host import quiet_floating_point

CACHE_SIZE = 64  # compiled functions kept (each is a few settings and shapes of one network)
CACHE_VARIABLE = "BPGPU_JAX_CACHE"  # "0": leave JAX's persistent cache alone; a path: use that folder
COMMAND_BUFFER_VARIABLE = "BPGPU_XLA_COMMAND_BUFFERS"  # "0": leave XLA_FLAGS alone
COMMAND_BUFFER_FLAG = "--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL"
CUDA_PLUGINS = ("jax_cuda13_plugin", "jax_cuda12_plugin")  # what `jax[cuda13]`/`jax[cuda12]` install

_log = logging.getLogger("bpgpu")


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
        self._jax.block_until_ready(_tick()(self._jax.device_put(0, self.device)))

    def memory_bytes(self) -> int | None:
        stats = self.device.memory_stats() if self.device.platform != "cpu" else None
        if stats and stats.get("bytes_limit"):
            return int(stats["bytes_limit"])
        return super().memory_bytes()

    def compile(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        owner = getattr(fn, "__self__", None)
        if owner is not None:  # a bound method (`step.gradient`): equal only to itself, so key it
            return self._scoped(_jit_method(owner, fn.__func__))  # by its (hashable) owner
        return self._scoped(_jit(fn))

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
        with self.activate():
            new = _loop(step, batch, count)(params, x, y, order, start, eta)
            # JAX returns once the call is queued: wait for it, so that progress reports and Ctrl-C
            # come when the steps are done (ten waits an epoch cost nothing measurable)
            return self._jax.block_until_ready(new)

    def steps_per_call(self, steps: int) -> int:
        """A tenth of `steps` as the base class gives it, or, where one exists, a call length from
        there up to a twentieth of the steps that divides them, so that every call of the epoch
        runs the same compiled loop."""
        tenth = super().steps_per_call(steps)
        fits = [k for k in range(tenth, max(1, -(-steps // 20)) - 1, -1) if steps % k == 0]
        return fits[0] if fits else tenth

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
def _jit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`jax.jit(fn)`, one per (hashable) `fn`, so that its compiled shapes are kept across calls."""
    return importlib.import_module("jax").jit(fn)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _jit_method(owner: Any, function: Callable[..., Any]) -> Callable[..., Any]:
    """`jax.jit` of `function` bound to `owner`, one per equal owner and function."""
    return _jit(types.MethodType(function, owner))


@functools.lru_cache(maxsize=1)
def _tick() -> Callable[..., Any]:
    """A compiled `n + 1`: `synchronize` waits for it, and so for everything queued before it."""
    return importlib.import_module("jax").jit(lambda n: n + 1)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _loop(step: Callable[..., Any], batch: int, length: int) -> Callable[..., Any]:
    """One compiled call that runs `length` steps of `batch` rows from row `start` of `order`: it
    gathers the `length` mini-batches at once, then scans over them. The trip count is known when
    XLA compiles, so the loop needs no host round trip (`tests/test_compiled.py` reads its HLO)."""
    jax = importlib.import_module("jax")
    jnp = jax.numpy

    def run(params: Any, x: Any, y: Any, order: Any, start: Any, eta: Any) -> Any:
        rows = jax.lax.dynamic_slice_in_dim(order, start, length * batch)
        xs = jnp.reshape(jnp.take(x, rows, axis=0), (length, batch, x.shape[1]))
        ys = jnp.reshape(jnp.take(y, rows, axis=0), (length, batch, y.shape[1]))

        def body(p: Any, item: Any) -> Any:
            return step(p, item[0], item[1], eta), None

        return jax.lax.scan(body, params, (xs, ys))[0]

    return jax.jit(run)


def cache_folder() -> Path | None:
    """Where bpgpu keeps JAX's persistent compilation cache, or None when `BPGPU_JAX_CACHE=0`."""
    chosen = os.environ.get(CACHE_VARIABLE, "")
    if chosen == "0":
        return None
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bpgpu" / "jax"


@functools.lru_cache(maxsize=1)
def _configure() -> None:
    """What this module's docstring promises, done once per process before JAX starts a device:
    the persistent compilation cache, and CUDA graphs for loops on a CUDA GPU."""
    jax = importlib.import_module("jax")
    started = importlib.import_module("jax._src.xla_bridge").backends_are_initialized()
    flags = xla_flags(os.environ, started)
    if flags is not None:
        os.environ["XLA_FLAGS"] = flags
    folder = cache_folder()
    if folder is None or jax.config.jax_compilation_cache_dir:
        return  # turned off, or the program chose its own cache
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _log.debug("bpgpu: no persistent JAX cache in %s: %s", folder, exc)
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def xla_flags(environ: Mapping[str, str], started: bool) -> str | None:
    """The `XLA_FLAGS` that bpgpu's JAX backend runs with, or None to leave them as they are: the
    program's own, then `COMMAND_BUFFER_FLAG` when JAX has a CUDA plugin, has not `started` its
    backend, the program's flags do not name the option, and `BPGPU_XLA_COMMAND_BUFFERS` is not 0."""
    flags = environ.get("XLA_FLAGS", "")
    if environ.get(COMMAND_BUFFER_VARIABLE) == "0" or "xla_gpu_enable_command_buffer" in flags:
        return None
    if not _has_cuda_plugin():
        return None
    if started:
        _log.debug("bpgpu: JAX had started its backend; XLA_FLAGS left as they were")
        return None
    return f"{flags} {COMMAND_BUFFER_FLAG}".strip()


def _has_cuda_plugin() -> bool:
    return any(_importable(name) for name in CUDA_PLUGINS)


def _importable(name: str) -> bool:
    """Whether `import name` would find a module, without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent that is not a package; a module set to None
        return False


def load() -> JaxBackend:
    try:
        jax = importlib.import_module("jax")
        _configure()
        devices = jax.devices()  # the default backend's: GPUs when JAX sees one, else the CPU
    except Exception as exc:  # ImportError, or a broken install (CUDA plugin without a driver...)
        raise unavailable(
            "jax", 'install it with pip install jax (GPUs: pip install "jax[cuda12]")', exc
        ) from exc
    if not devices:
        raise unavailable("jax", "JAX imports but lists no device")
    return JaxBackend(jax.numpy, devices[0], jax)
