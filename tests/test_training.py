"""SGD: each step is the book's update, data stays on the device, and the network learns."""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pytest
from conftest import assert_close, host, params

import bpgpu
from bpgpu import interrupts, training
from bpgpu.datasets import load_digits
from bpgpu.training import MONITORS

SIZES = [5, 6, 3]


def data(n=30, seed=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, SIZES[0])), rng.integers(0, SIZES[-1], size=n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_update_mini_batch_is_one_gradient_step_on_every_backend(backend, dtype):
    # Proves the update really happens: an in-place `-=` on a loop variable would leave it unchanged.
    net = bpgpu.Network(SIZES, backend=backend, dtype=dtype, seed=2)
    X, labels = data()
    nabla_b, nabla_w = net.backprop(X, labels)
    eta = 0.7
    grads = host(net, nabla_w) + host(net, nabla_b)
    expected = [p - eta * g for p, g in zip(params(net), grads, strict=True)]
    before = params(net)
    net.update_mini_batch(X, labels, eta)
    after = params(net)
    for got, want, old in zip(after, expected, before, strict=True):
        assert got.dtype == np.dtype(dtype)
        assert not np.array_equal(got, old)
        assert_close(got, want, dtype)


def test_sgd_history_has_one_record_per_epoch():
    net = bpgpu.Network(SIZES, seed=1)
    X, labels = data()
    tX, tl = data(n=12, seed=9)
    history = net.SGD((X, labels), epochs=4, mini_batch_size=5, eta=1.0, test_data=(tX, tl))
    assert [r.epoch for r in history] == [0, 1, 2, 3]
    for r in history:
        assert r.total == 12 and 0 <= r.correct <= 12
        assert r.accuracy == r.correct / 12
        assert r.seconds > 0
    assert history[-1].correct == net.evaluate(tX, tl)
    no_test = net.SGD((X, labels), epochs=2, mini_batch_size=5, eta=1.0)
    assert [(r.correct, r.total, r.accuracy) for r in no_test] == [(None, None, None)] * 2


def test_sgd_is_silent_unless_asked_and_calls_back_every_epoch(capsys):
    net = bpgpu.Network(SIZES, seed=1)
    X, labels = data()
    net.SGD((X, labels), epochs=2, mini_batch_size=5, eta=1.0)
    assert capsys.readouterr().out == ""
    seen = []
    history = net.SGD((X, labels), 3, 5, 1.0, test_data=(X, labels), verbose=True, callback=seen.append)
    assert seen == history
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("Epoch 0: ") and "/ 30" in lines[0]


def test_same_seed_same_training_run_and_shuffles_differ_by_seed():
    X, labels = data()

    def train(seed):
        net = bpgpu.Network(SIZES, seed=seed, dtype="float64")
        net.SGD((X, labels), epochs=3, mini_batch_size=4, eta=1.0)
        return params(net)

    for a, b in zip(train(1), train(1), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(train(1)[0], train(2)[0])


def test_a_mini_batch_larger_than_the_data_is_one_full_batch_step():
    X, labels = data(n=8)
    a = bpgpu.Network(SIZES, seed=3, dtype="float64")
    b = bpgpu.Network(SIZES, seed=3, dtype="float64")
    a.SGD((X, labels), epochs=1, mini_batch_size=1000, eta=0.5)
    b.update_mini_batch(X, labels, 0.5)  # the mean gradient does not depend on row order
    for got, want in zip(params(a), params(b), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_the_last_partial_mini_batch_is_used():
    X, labels = data(n=7)
    a = bpgpu.Network(SIZES, seed=3, dtype="float64")
    b = bpgpu.Network(SIZES, seed=3, dtype="float64")
    a.SGD((X, labels), epochs=1, mini_batch_size=3, eta=0.5)  # batches of 3, 3 and 1 rows
    # The shuffle order SGD draws: the second stream spawned from the seed (backends/host_random.py).
    order = np.random.default_rng(np.random.SeedSequence(3).spawn(2)[1]).permutation(7)
    for rows in (order[:3], order[3:6], order[6:]):
        b.update_mini_batch(X[rows], labels[rows], 0.5)
    for got, want in zip(params(a), params(b), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)


SYNC_METHODS = (
    "__bool__",
    "__int__",
    "__float__",
    "__index__",
    "__complex__",
    "__array__",
    "__dlpack__",
    "__buffer__",
)


def test_no_transfer_or_sync_inside_the_mini_batch_loop(monkeypatch):
    """Count every host↔device crossing per epoch: it must not grow with the number of mini-batches."""
    strict = pytest.importorskip("array_api_strict", reason="array_api_strict is not installed")
    Array = type(strict.asarray(0.0))
    counts = collections.Counter()

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    for name in SYNC_METHODS:
        monkeypatch.setattr(Array, name, counting(name, getattr(Array, name)))
    backend = bpgpu.get_backend("array_api_strict")
    for name in ("asarray", "to_numpy", "synchronize"):
        monkeypatch.setattr(backend, name, counting(name, getattr(backend, name)))

    X, labels = data(n=40)
    per_epoch = {}
    for batch in (1, 20):
        net = bpgpu.Network(SIZES, backend=backend, seed=1)
        marks = []  # the counts at the end of every epoch
        net.SGD(
            (X, labels),
            3,
            batch,
            1.0,
            test_data=(X, labels),
            evaluation_data=(X[:10], labels[:10]),
            monitor=MONITORS,  # every metric there is: still one transfer per epoch
            callback=lambda r, m=marks: m.append(counts.copy()),
            progress=lambda done, n: None,
        )
        per_epoch[batch] = [dict(b - a) for a, b in itertools.pairwise(marks)]
    assert per_epoch[1] == per_epoch[20], "crossings grow with the number of mini-batches"
    for epoch in per_epoch[1]:
        assert epoch.get("asarray", 0) == 1, epoch  # the epoch's shuffle order, host to device
        assert epoch.get("to_numpy", 0) == 1, epoch  # all of the epoch's metrics, device to host
        assert sum(epoch.get(m, 0) for m in SYNC_METHODS) <= 1, epoch  # inside that one to_numpy
        assert epoch.get("synchronize", 0) == 0, epoch  # that to_numpy is the epoch's one wait


def test_learns_the_embedded_digits_with_the_books_chapter1_settings():
    # [64, 30, 10], sigmoid, quadratic cost, mini-batch 10, eta 3.0, seed 1: 97.0% here (290 / 299).
    digits = load_digits()
    net = bpgpu.Network([64, 30, 10], seed=1)
    history = net.SGD((digits.train.X, digits.train.y), 30, 10, 3.0, test_data=(digits.test.X, digits.test.y))
    assert history[0].accuracy < history[-1].accuracy
    assert history[-1].accuracy >= 0.95
    assert net.cost(digits.test.X, digits.test.y) < 0.05


def test_monitored_metrics_equal_cost_and_evaluate_after_the_epoch(monkeypatch):
    X, labels = data(n=40)
    eX, el = data(n=15, seed=8)
    net = bpgpu.Network(SIZES, seed=6, dtype="float64", cost="cross_entropy")
    history = net.SGD((X, labels), 2, 6, 0.8, evaluation_data=(eX, el), monitor=MONITORS)
    last = history[-1]  # measured with the parameters the network ends with
    assert last.training_cost == pytest.approx(net.cost(X, labels), rel=1e-12)
    assert last.training_accuracy == net.evaluate(X, labels) / 40
    assert last.evaluation_cost == pytest.approx(net.cost(eX, el), rel=1e-12)
    assert last.evaluation_accuracy == net.evaluate(eX, el) / 15
    assert (last.correct, last.total) == (None, None)
    assert history[0].training_cost != last.training_cost
    # Whole data sets are measured in chunks of rows: chunks of 7 rows give the same numbers.
    monkeypatch.setattr(bpgpu.step, "CHUNK_ROWS", 7)
    again = bpgpu.Network(SIZES, seed=6, dtype="float64", cost="cross_entropy")
    chunked = again.SGD((X, labels), 2, 6, 0.8, evaluation_data=(eX, el), monitor=MONITORS)
    for a, b in zip(history, chunked, strict=True):
        for name in MONITORS:
            assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-12), name


def test_only_the_metrics_asked_for_are_recorded_and_printed(capsys):
    X, labels = data()
    net = bpgpu.Network(SIZES, seed=1)
    (record,) = net.SGD(
        (X, labels), 1, 5, 1.0, test_data=(X, labels), monitor=("training_cost",), verbose=True
    )
    assert record.training_cost is not None and record.total == 30
    assert record.training_accuracy is record.evaluation_cost is record.evaluation_accuracy is None
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"Epoch 0: {record.correct} / 30, training cost ") and line.endswith(" s)")


def test_progress_reports_rows_done_after_every_mini_batch():
    X, labels = data(n=23)
    calls = []
    bpgpu.Network(SIZES, seed=1).SGD((X, labels), 2, 5, 1.0, progress=lambda done, n: calls.append((done, n)))
    assert calls == [(5, 23), (10, 23), (15, 23), (20, 23), (23, 23)] * 2
    assert all(type(done) is int for done, _ in calls)


def raising_at(call, error):
    """A progress callback that raises `error` at its `call`-th call."""
    calls = itertools.count(1)

    def progress(done, n):
        if next(calls) == call:
            raise error

    return progress


def test_an_error_from_a_callback_mid_epoch_leaves_the_last_whole_step_and_says_which(backend):
    X, labels = data()
    failed = bpgpu.Network(SIZES, backend=backend, seed=1)
    with pytest.raises(RuntimeError, match="the callback failed") as caught:
        failed.SGD((X, labels), 2, 5, 1.0, progress=raising_at(3, RuntimeError("the callback failed")))
    assert caught.value.__notes__ == [
        "bpgpu: training stopped in epoch 0; the network holds its parameters after "
        "15 of that epoch's 30 rows"
    ]
    interrupted = bpgpu.Network(SIZES, backend=backend, seed=1)  # Ctrl-C at the same point: 15 rows
    with pytest.raises(training.TrainingInterrupted, match="15 of the 30 rows of epoch 0"):
        interrupted.SGD((X, labels), 2, 5, 1.0, progress=raising_at(3, KeyboardInterrupt()))
    for got, want in zip(params(failed), params(interrupted), strict=True):
        np.testing.assert_array_equal(got, want)


def test_an_error_from_a_callback_after_a_diverged_step_goes_back_to_the_epochs_start(backend):
    X, labels = data()
    net = bpgpu.Network(SIZES, backend=backend, seed=1)
    before = params(net)
    with pytest.raises(RuntimeError) as caught:  # a step of this size leaves no finite parameter
        net.SGD((X, labels), 2, 5, 1e300, progress=raising_at(3, RuntimeError("the callback failed")))
    assert "after 0 of that epoch's 30 rows" in caught.value.__notes__[0]
    for got, want in zip(params(net), before, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"monitor": "training_cost"}, TypeError, "tuple of names"),
        ({"monitor": ("training_loss",)}, ValueError, "each of monitor must be one of"),
        ({"monitor": ("training_cost", "training_cost")}, ValueError, "names something twice"),
        (
            {"monitor": ("evaluation_accuracy",)},
            ValueError,
            r"evaluation_accuracy need evaluation_data=\(X, labels\)",
        ),
        ({"evaluation_data": (np.zeros((3, 5)), [0, 1, 3])}, ValueError, "evaluation_data labels"),
        ({"progress": 3}, TypeError, "progress"),
    ],
)
def test_bad_monitoring_options_raise_before_any_step(options, error, message):
    X, labels = data()
    net = bpgpu.Network(SIZES, seed=1)
    before = params(net)
    with pytest.raises(error, match=message):
        net.SGD((X, labels), 1, 5, 1.0, **options)
    for got, want in zip(params(net), before, strict=True):
        np.testing.assert_array_equal(got, want)


# ---- ending early: divergence and Ctrl-C ------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{"eta": 1e308}, {"eta": 1.0, "lmbda": 1e308}, {"eta": 1e30, "activation": "identity"}],
    ids=["eta", "lmbda", "identity"],
)
def test_training_that_diverges_says_so_and_keeps_the_last_finite_parameters(backend, options, tmp_path):
    """Without warnings (pytest turns them into errors), and with a network that saves and loads."""
    options = dict(options)
    activation = options.pop("activation", "sigmoid")
    net = bpgpu.Network(SIZES, activation=activation, backend=backend, seed=3)
    X, labels = data()
    before, stream = params(net), net._random.shuffle_state
    with pytest.raises(
        training.TrainingDivergedError, match=r"training diverged in epoch 0: .*before training"
    ):
        net.SGD((X, labels), 3, 5, options.pop("eta"), **options)
    for got, want in zip(params(net), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert net._random.shuffle_state == stream  # the network is exactly as it was
    net.save(tmp_path / "m.npz")
    assert bpgpu.load(tmp_path / "m.npz", backend="numpy").sizes == SIZES


def test_divergence_after_good_epochs_keeps_the_last_good_epoch_and_its_history(backend):
    net = bpgpu.Network(SIZES, activation="identity", backend=backend, seed=3, dtype="float64")
    X, labels = data()
    kept = [params(net)]
    # identity neurons, with a rate that makes the weights grow every step: finite for an epoch
    with pytest.raises(training.TrainingDivergedError) as info:
        net.SGD((X, labels), 40, 5, 0.2, callback=lambda r: kept.append(params(net)))
    error = info.value
    assert error.epoch is not None and error.epoch >= 1, "diverged at once: the test needs finite epochs"
    assert [r.epoch for r in error.history] == list(range(error.epoch))
    assert f"after epoch {error.epoch - 1}" in str(error)
    for got, want in zip(params(net), kept[-1], strict=True):
        np.testing.assert_array_equal(got, want)
        assert np.all(np.isfinite(got))


def test_a_step_that_would_diverge_leaves_the_network_unchanged(backend):
    net = bpgpu.Network(SIZES, backend=backend, seed=3)
    X, labels = data()
    before = params(net)
    with pytest.raises(training.TrainingDivergedError, match="the network is unchanged"):
        net.update_mini_batch(X, labels, 1e308)
    for got, want in zip(params(net), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_ctrl_c_leaves_exactly_the_steps_it_reports(backend):
    """KeyboardInterrupt from the progress callback, after 20 rows of epoch 1: the network holds one
    whole epoch and two steps of ten rows, as replaying those steps with update_mini_batch shows."""
    X, labels = data()
    net = bpgpu.Network(SIZES, backend=backend, seed=5, dtype="float64")

    def progress(done, rows):
        if len(seen) == 1 and done == 20:
            raise KeyboardInterrupt

    seen = []
    with pytest.raises(training.TrainingInterrupted) as info:
        net.SGD((X, labels), 5, 10, 0.5, callback=seen.append, progress=progress)
    stop = info.value
    assert isinstance(stop, KeyboardInterrupt)
    assert (stop.epoch, stop.rows_done, stop.rows, len(stop.history)) == (1, 20, 30, 1)
    assert (
        str(stop)
        == "interrupted in epoch 1; the network holds 1 whole epoch and 20 of the 30 rows of epoch 1"
    )

    replay = bpgpu.Network(SIZES, backend="numpy", seed=5, dtype="float64")
    replay.SGD((X, labels), 1, 10, 0.5)
    order = replay._random.permutation(30)
    for k in (0, 10):
        rows = order[k : k + 10]
        replay.update_mini_batch(X[rows], labels[rows], 0.5)
    for got, want in zip(params(net), params(replay), strict=True):
        assert_close(got, want, "float64")


def test_ctrl_c_while_diverging_puts_the_network_back_where_the_epoch_began(backend):
    X, labels = data()
    net = bpgpu.Network(SIZES, backend=backend, seed=5)
    before, stream = params(net), net._random.shuffle_state

    def progress(done, rows):
        if done == 10:
            raise KeyboardInterrupt

    with pytest.raises(training.TrainingInterrupted) as info:
        net.SGD((X, labels), 3, 5, 1e308, progress=progress)
    assert (info.value.diverged, info.value.epoch, info.value.rows_done) == (True, 0, 0)
    assert "it had diverged" in str(info.value)
    for got, want in zip(params(net), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert net._random.shuffle_state == stream


class StopError(Exception):
    """A user's progress callback failing."""


@pytest.mark.parametrize("eta", [0.5, 1e38])
def test_an_error_from_a_callback_mid_epoch_leaves_the_last_finite_step_and_says_which(backend, eta):
    """With eta 1e38 in float32 the steps before the failing report have made the parameters infinite or NaN:
    the network goes back to where the epoch began. With eta 0.5 it keeps the steps reported."""
    X, labels = data(n=200)
    net = bpgpu.Network([SIZES[0], 6, SIZES[-1]], activation="relu", backend=backend, seed=3)
    reports = []

    def progress(done, rows):
        reports.append(done)
        if len(reports) == 4:  # in the first epoch, after 80 of its 200 rows
            raise StopError

    before = params(net)
    with pytest.raises(StopError) as info:
        net.SGD((X, labels), 3, 5, eta, progress=progress)
    after = params(net)
    assert all(np.isfinite(a).all() for a in after)
    notes = getattr(info.value, "__notes__", None)
    if eta > 1:
        assert all(np.array_equal(a, b) for a, b in zip(after, before, strict=True))
        expected = "after 0 of that epoch's 200 rows"
    else:
        expected = f"after {reports[-1]} of that epoch's 200 rows"
        assert not all(np.array_equal(a, b) for a, b in zip(after, before, strict=True))
    if notes is not None:  # Python 3.11 and later
        assert any(expected in note for note in notes), notes


def test_an_interruption_says_what_the_network_holds_at_an_epochs_end_start_and_middle():
    """At the end of epoch 6 the network holds 7 whole epochs (it said "6 whole epochs and 50000 of
    the 50000 rows of epoch 6")."""
    assert (
        interrupts.held(6, 50000, 50000)
        == "interrupted at the end of epoch 6; the network holds 7 whole epochs"
    )
    assert (
        interrupts.held(0, 0, 10)
        == "interrupted before epoch 0 took a step; the network holds 0 whole epochs"
    )
    assert interrupts.held(2, 30, 50) == (
        "interrupted in epoch 2; the network holds 2 whole epochs and 30 of the 50 rows of epoch 2"
    )
    assert str(training.TrainingInterrupted(0, 10, 10, [])).endswith("holds 1 whole epoch")
