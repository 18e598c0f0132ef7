"""What the JAX backend compiles, and how it runs on a GPU: one loop per call with no host round
trip inside, no more compilations than the step calls and the metrics need, none at all in a second
`SGD` call or (through the persistent cache) in a second process, and XLA flags added only as its
docstring says. These run on JAX's CPU build; the same programs are what a GPU runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax", reason="needs jax (pip install jax)")

import bpgpu  # noqa: E402
from bpgpu import step as steps  # noqa: E402
from bpgpu.backends import jax_backend  # noqa: E402

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # one per program XLA builds or loads


class Compiles:
    """Counts XLA compilations while it is open."""

    def __enter__(self) -> Compiles:
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._heard)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self._heard)

    def _heard(self, event: str, duration: float, **kwargs) -> None:
        if event == COMPILE_EVENT:
            self.count += 1


def data(rows: int, n_in: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(rows, n_in)).astype(np.float32), rng.integers(0, 3, size=rows)


# Shapes no other test uses, so that the first call really compiles. 203 rows in batches of 4: 50
# whole steps, called 5 at a time (50 divides evenly), and a short batch of 3. 235 rows: 58 whole
# steps, called 5 at a time (58 has no divisor from 5 down to 3), the last call 3, and a batch of 3.
@pytest.mark.parametrize(
    ("sizes", "rows", "momentum", "loops"),
    [([6, 4, 3], 203, 0.0, 2), ([6, 5, 3], 235, 0.0, 3), ([6, 6, 3], 203, 0.5, 2)],
)
def test_the_first_sgd_call_compiles_the_step_loops_and_the_metrics_and_a_second_nothing(
    sizes, rows, momentum, loops
):
    X, labels = data(rows, sizes[0])
    options = {"momentum": momentum, "test_data": (X[:50], labels[:50]), "monitor": ("training_cost",)}
    with Compiles() as first:
        bpgpu.Network(sizes, backend="jax", seed=1).SGD((X, labels), 2, 4, 0.5, **options)
    velocities = 1 if momentum else 0  # the velocities start at zero: one small program
    assert first.count == loops + 1 + velocities, "loops, the metrics, the velocities' start"
    with Compiles() as second:
        bpgpu.Network(sizes, backend="jax", seed=2).SGD((X, labels), 3, 4, 0.25, **options)
    assert second.count == 0


def test_steps_per_call_divides_the_epoch_where_it_can():
    backend = bpgpu.get_backend("jax")
    assert backend.steps_per_call(5000) == 500  # W1: 10 calls
    assert backend.steps_per_call(390) == 39  # W2: 10 calls
    assert backend.steps_per_call(48) == 4  # W3's 102 400 rows in 1024s less the short batch: 12 calls
    assert backend.steps_per_call(57) == 3  # a tenth is 5; 19 calls of 3 run one loop
    assert backend.steps_per_call(58) == 5  # no divisor between 5 and 3: a shorter last call
    assert [backend.steps_per_call(n) for n in (1, 7, 19)] == [1, 1, 1]


def test_an_epoch_call_is_one_loop_with_a_known_trip_count_and_no_host_round_trip():
    """XLA's GPU runtime copies a conditional's predicate to the host and waits for the device, and
    a loop without a known trip count checks its condition on the host every step: the call has
    neither, nor a host callback."""
    net = bpgpu.Network([7, 5, 3], backend="jax", seed=1)
    step = steps.Step(net._model, steps.Update(0.0, 40), net.xp)
    backend = net.backend
    with backend.activate():
        params = steps.Params(list(net.weights), list(net.biases))
        x = backend.asarray(np.zeros((40, 7), np.float32))
        y = backend.asarray(np.zeros((40, 3), np.float32))
        order = backend.asarray(np.arange(40))
        lowered = jax_backend._loop(step, 4, 5).lower(params, x, y, order, 8, 0.5)
        compiled = lowered.compile().as_text()
    program = lowered.as_text()
    assert program.count("stablehlo.while") == 1
    for host_round_trip in ("stablehlo.case", "stablehlo.if", "custom_call", "callback"):
        assert host_round_trip not in program
    assert "conditional" not in compiled and "custom-call" not in compiled
    assert '"known_trip_count":{"n":"5"}' in compiled


CHILD = textwrap.dedent(
    """
    import collections, json, sys
    import jax, numpy as np
    import bpgpu
    heard = collections.Counter()
    jax.monitoring.register_event_listener(lambda event, **kw: heard.update([event]))
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(45, 4)), rng.integers(0, 2, size=45)
    bpgpu.Network([4, 3, 2], backend="jax", seed=1).SGD((X, labels), 1, 4, 0.5, test_data=(X, labels))
    print(json.dumps({
        "hits": heard["/jax/compilation_cache/cache_hits"],
        "misses": heard["/jax/compilation_cache/cache_misses"],
        "dir": jax.config.jax_compilation_cache_dir,
        "min_seconds": jax.config.jax_persistent_cache_min_compile_time_secs,
        "max_bytes": jax.config.jax_compilation_cache_max_size,
    }))
    """
)


def run_child(env: dict[str, str], prologue: str = "") -> dict:
    result = subprocess.run(
        [sys.executable, "-c", prologue + CHILD],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=Path(__file__).parent.parent,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_second_process_compiles_nothing(tmp_path):
    env = {"BPGPU_JAX_CACHE": str(tmp_path / "cache"), "JAX_COMPILATION_CACHE_DIR": ""}
    first = run_child(env)
    assert first["dir"] == str(tmp_path / "cache") and first["misses"] >= 2 and first["hits"] == 0
    assert first["max_bytes"] == -1  # unbounded: JAX's eviction races between processes
    second = run_child(env)
    assert second["misses"] == 0 and second["hits"] == first["misses"]


def test_the_cache_is_left_alone_when_turned_off_or_chosen_by_the_program(tmp_path):
    off = run_child({"BPGPU_JAX_CACHE": "0", "JAX_COMPILATION_CACHE_DIR": ""})
    assert not off["dir"] and off["min_seconds"] == 1.0 and off["hits"] == off["misses"] == 0
    mine = str(tmp_path / "mine")
    prologue = f"import jax; jax.config.update('jax_compilation_cache_dir', {mine!r})\n"
    chosen = run_child({"BPGPU_JAX_CACHE": str(tmp_path / "bpgpu")}, prologue)
    assert chosen["dir"] == mine and chosen["min_seconds"] == 1.0 and chosen["max_bytes"] == -1
    assert not (tmp_path / "bpgpu").exists()


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("BPGPU_JAX_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert jax_backend.cache_folder() == tmp_path / "bpgpu" / "jax"
    monkeypatch.setenv("BPGPU_JAX_CACHE", "0")
    assert jax_backend.cache_folder() is None


def test_command_buffers_for_loops_are_added_to_the_programs_own_xla_flags(monkeypatch):
    monkeypatch.setattr(jax_backend, "_has_cuda_plugin", lambda: True)
    flag = jax_backend.COMMAND_BUFFER_FLAG
    assert "+WHILE" in flag and "+CONDITIONAL" in flag
    assert jax_backend.xla_flags({}, started=False) == flag
    assert (
        jax_backend.xla_flags({"XLA_FLAGS": "--xla_dump_to=/tmp/d"}, False) == f"--xla_dump_to=/tmp/d {flag}"
    )
    assert jax_backend.xla_flags({"XLA_FLAGS": "--xla_gpu_enable_command_buffer="}, False) is None
    assert jax_backend.xla_flags({"BPGPU_XLA_COMMAND_BUFFERS": "0"}, False) is None
    assert jax_backend.xla_flags({}, started=True) is None  # too late: JAX read its flags already
    monkeypatch.setattr(jax_backend, "_has_cuda_plugin", lambda: False)
    assert jax_backend.xla_flags({}, started=False) is None  # JAX on the CPU: nothing to add
