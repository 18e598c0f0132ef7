"""The training loop as a compiling backend runs it: several steps per call, progress and Ctrl-C
between calls, compiled functions reused, float64 scoped to bpgpu. Every backend runs these tests;
those that compile (JAX) take the paths that the others take trivially (one step per call)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from conftest import assert_close, params

import bpgpu
from bpgpu import step as steps
from bpgpu import training

SIZES = [5, 7, 3]
# 233 rows in batches of 4: 58 whole ones and a short one of 1. A compiling backend takes 5 steps per
# call, so its last call of each epoch takes 3 of its 5 and skips the rest.
ROWS, BATCH = 233, 4


def data(n=ROWS, seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, SIZES[0])), rng.integers(0, SIZES[-1], size=n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_long_runs_with_every_option_agree_with_numpy(backend, dtype):
    X, labels = data()
    eX, el = data(40, seed=4)
    options = {
        "lmbda": 0.5,
        "momentum": 0.7,
        "evaluation_data": (eX, el),
        "monitor": ("training_cost", "evaluation_cost", "evaluation_accuracy"),
        "early_stopping": 2,
        "eta_schedule": "halve",
        "patience": 1,
    }
    nets = [bpgpu.Network(SIZES, backend=b, dtype=dtype, seed=2, init="scaled") for b in ("numpy", backend)]
    ref, got = (net.SGD((X, labels), 6, BATCH, 0.3, **options) for net in nets)
    assert [r.evaluation_accuracy for r in got] == [r.evaluation_accuracy for r in ref]
    assert [r.eta for r in got] == [r.eta for r in ref]
    np.testing.assert_allclose([r.training_cost for r in got], [r.training_cost for r in ref], rtol=1e-5)
    for mine, want in zip(params(nets[1]), params(nets[0]), strict=True):
        assert_close(mine, want, dtype)


def test_each_epoch_record_says_how_long_that_epoch_took(backend):
    net = bpgpu.Network(SIZES, backend=backend, seed=1)
    began = time.perf_counter()
    history = net.SGD(data(), 3, BATCH, 0.5)
    took = time.perf_counter() - began
    assert all(record.seconds > 0 for record in history)
    assert sum(record.seconds for record in history) <= took


def test_progress_comes_at_least_ten_times_an_epoch_and_ends_at_the_rows(backend):
    net = bpgpu.Network(SIZES, backend=backend, seed=1)
    calls = []
    net.SGD(data(), 2, BATCH, 0.5, progress=lambda done, rows: calls.append((done, rows)))
    epochs = [[]]
    for done, rows in calls:
        assert rows == ROWS
        epochs[-1].append(done)
        if done == ROWS:
            epochs.append([])
    assert epochs.pop() == []
    assert len(epochs) == 2
    for dones in epochs:
        assert len(dones) >= 10 and dones == sorted(set(dones)) and dones[-1] == ROWS
        assert all(done % BATCH == 0 for done in dones[:-1])  # whole steps only


def test_progress_comes_when_the_steps_are_done_and_a_ctrl_c_in_the_last_epoch_counts(backend):
    """JAX queues work and returns: the loop waits for each call, so at every report the network's
    arrays are computed (`is_ready`, where the library has it). And early stopping ending the run
    does not swallow a Ctrl-C noted during that epoch."""
    X, labels = data()
    net = bpgpu.Network(SIZES, backend=backend, seed=5)
    ready = []

    def progress(done, rows):
        ready.extend(getattr(a, "is_ready", lambda: True)() for a in [*net.weights, *net.biases])

    net.SGD((X, labels), 1, BATCH, 0.5, progress=progress)
    assert ready and all(ready)

    def callback(record):
        if record.epoch == 1:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(training.TrainingInterrupted) as info:
        net.SGD((X, labels), 5, BATCH, 0.5, evaluation_data=data(20, 7), early_stopping=1, callback=callback)
    assert (info.value.epoch, info.value.rows_done, len(info.value.history)) == (1, ROWS, 2)


def test_a_real_ctrl_c_stops_at_the_next_whole_call_with_the_steps_it_reports(backend):
    """SIGINT itself (not a KeyboardInterrupt raised by a callback) during epoch 1: it is acted on
    once the running call is done, and the network then holds exactly the steps reported."""
    X, labels = data()
    net = bpgpu.Network(SIZES, backend=backend, seed=5, dtype="float64")
    seen = []

    def progress(done, rows):
        seen.append(done)
        if len(seen) == 15:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(training.TrainingInterrupted) as info:
        net.SGD((X, labels), 3, BATCH, 0.5, progress=progress)
    stop = info.value
    assert stop.rows_done == seen[-1] and len(seen) == 15  # stopped right after that report
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # and put back

    replay = bpgpu.Network(SIZES, backend="numpy", seed=5, dtype="float64")
    if stop.epoch:
        replay.SGD((X, labels), stop.epoch, BATCH, 0.5)
    order = replay._random.permutation(ROWS)
    for k in range(0, stop.rows_done, BATCH):
        rows = order[k : k + BATCH]
        replay.update_mini_batch(X[rows], labels[rows], 0.5)
    for got, want in zip(params(net), params(replay), strict=True):
        assert_close(got, want, "float64")


def test_arrays_held_before_training_stay_usable(backend):
    """A compiling backend may donate buffers to its calls: never those the caller holds."""
    net = bpgpu.Network(SIZES, backend=backend, seed=1)
    held, before = list(net.weights), params(net)
    history = []
    net.SGD(data(), 2, BATCH, 0.5, callback=lambda record: history.append(list(net.weights)))
    np.testing.assert_array_equal(net.backend.to_numpy(held[0]), before[0])
    for kept in history:  # what the network held at the end of each epoch, too
        assert np.isfinite(net.backend.to_numpy(kept[0])).all()


def test_a_second_sgd_call_with_the_same_settings_traces_nothing(monkeypatch):
    """On JAX the step's Python code runs only while it is traced: a few times in the first call
    (the chunked scan, the short last batch), never again for the same settings and shapes, also
    when the step runs in two parts around an all-reduce (MPI, here over COMM_SELF)."""
    pytest.importorskip("jax", reason="needs jax (pip install jax)")
    calls = []
    original = steps.Step.__call__

    def counted(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(steps.Step, "__call__", counted)
    X, labels = data(n=ROWS + 1)  # a shape no other test uses, so the first call compiles
    first = bpgpu.Network(SIZES, backend="jax", seed=8)
    first.SGD((X, labels), 3, BATCH, 0.5, test_data=(X, labels))
    traced = len(calls)
    assert 1 <= traced <= 4, f"the step ran {traced} times in Python over 3 epochs of 59 steps"
    second = bpgpu.Network(SIZES, backend="jax", seed=9)
    second.SGD((X, labels), 2, BATCH, 0.5, test_data=(X, labels))
    assert len(calls) == traced
    mpi = pytest.importorskip("mpi4py.MPI", reason="the MPI part needs mpi4py (the mpi extra)")
    gradients = []
    original_gradient = steps.Step.gradient

    def counted_gradient(self, *args):
        gradients.append(1)
        return original_gradient(self, *args)

    monkeypatch.setattr(steps.Step, "gradient", counted_gradient)
    for seed in (10, 11, 12):
        net = bpgpu.Network(SIZES, backend="jax", seed=seed)
        net.SGD((X, labels), 1, BATCH, 0.5, comm=mpi.COMM_SELF)
        if seed == 10:
            first_call = len(gradients)
    assert 1 <= first_call <= 2 and len(gradients) == first_call  # two shapes: whole and short batch


def test_float64_on_jax_leaves_the_users_jax_in_32_bit_mode():
    jax = pytest.importorskip("jax", reason="needs jax (pip install jax)")
    X, labels = data()
    net = bpgpu.Network(SIZES, backend="jax", dtype="float64", seed=1)
    net.SGD((X, labels), 1, BATCH, 0.5)
    assert net.weights[0].dtype == jax.numpy.float64
    assert not jax.config.jax_enable_x64
    assert jax.numpy.asarray(np.ones(2)).dtype == jax.numpy.float32  # the user's code: unchanged
    ref = bpgpu.Network(SIZES, backend="numpy", dtype="float64", seed=1)
    ref.SGD((X, labels), 1, BATCH, 0.5)
    for got, want in zip(params(net), params(ref), strict=True):
        assert_close(got, want, "float64")
