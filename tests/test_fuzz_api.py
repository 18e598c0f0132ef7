"""Fuzzing the public API: random calls with bad (and sometimes good) arguments.

Every call either works or raises `ValueError`/`TypeError`; one that fails leaves every parameter
bit-identical and the shuffle stream where it was. No warning escapes (pytest turns warnings into
errors), and each call ends in bounded time and memory.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from fuzzing import MiB, bounded, fuzz_settings
from hypothesis import assume, event, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import bpgpu

SIZES = [3, 4, 2]
EXAMPLES = {"data": 250, "hyper": 250, "mixed": 60}
BACKENDS = [name for name in ("numpy", "array_api_strict") if name in bpgpu.available_backends()]

# Numbers that break things: NaN, infinities, the float limits, huge and negative integers.
NASTY_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1e-320, 3.5e38, 1e39, 1.8e308, -1e308]),
)
NASTY_NUMBERS = st.one_of(
    NASTY_FLOATS,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**400, -(10**400), 2**63, 2**63 - 1, True, False]),
    st.sampled_from(["3", None, [1.0], (), b"1", 1j, object()]),
)
REAL_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int64, np.uint8, np.uint64, np.bool_]
DTYPES = st.sampled_from([*REAL_DTYPES, np.complex64])


@st.composite
def arrays(draw, rows=None, columns=None, dtypes=DTYPES):
    """An array of random dtype, usually (rows, columns) but sometimes another shape, and values that
    are sometimes NaN, infinite or beyond float32."""
    rows = draw(st.integers(0, 6)) if rows is None else rows
    shape = draw(
        st.one_of(
            st.just((rows, columns)) if columns is not None else st.just((rows,)),
            hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
        )
    )
    dtype = np.dtype(draw(dtypes))
    if dtype.kind == "f":
        elements = st.floats(allow_nan=True, allow_infinity=True, width=8 * dtype.itemsize)
    elif dtype.kind == "c":
        elements = st.complex_numbers(max_magnitude=10, width=8 * dtype.itemsize)
    else:
        elements = None
    return draw(hnp.arrays(dtype, shape, elements=elements))


@st.composite
def good_or_bad_data(draw, arrays_only=False):
    """(X, Y, labels): each either right for SIZES or broken in one of many ways; with `arrays_only`,
    NumPy arrays of real dtypes only (drawn that way rather than filtered, which Hypothesis's health
    check refuses when most draws are thrown away)."""
    dtypes = st.sampled_from(REAL_DTYPES) if arrays_only else DTYPES
    rows = draw(st.integers(0, 6))
    X = draw(st.one_of(arrays(rows, SIZES[0], dtypes), hnp.arrays(np.float64, (rows, SIZES[0]))))
    labels = draw(st.one_of(st.just(np.arange(rows) % SIZES[-1]), arrays(rows, dtypes=dtypes)))
    Y = draw(
        st.one_of(
            st.just(labels),
            arrays(rows, SIZES[-1], dtypes),
            st.just(np.eye(SIZES[-1])[np.arange(rows) % 2]),
        )
    )
    if not arrays_only:
        X, Y, labels = (
            draw(st.one_of(st.just(a), st.sampled_from([None, "x", [[1, 2, 3]], 5]))) for a in (X, Y, labels)
        )
    return X, Y, labels


def _real(value):
    """A number a float can hold exactly as finite (not a bool, NaN, infinity or a 400-digit int)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return math.isfinite(value) if isinstance(value, float) else abs(value) < 1e300


def snapshot(net):
    return [net.backend.to_numpy(p).copy() for p in (*net.weights, *net.biases)], net._random.shuffle_state


def assert_unchanged(net, before):
    after = snapshot(net)
    for a, b in zip(after[0], before[0], strict=True):
        np.testing.assert_array_equal(a, b)
    assert after[1] == before[1], "the shuffle stream moved"


def call_checked(net, call):
    """Run `call(net)`; it works, or raises ValueError/TypeError and changes nothing."""
    before = snapshot(net)
    try:
        with bounded(seconds=20, memory=32 * MiB):
            call(net)
    except bpgpu.TrainingDivergedError as error:  # a valid call with a huge rate: the last finite epoch
        if error.epoch in (None, 0):
            assert_unchanged(net, before)
        assert all(np.all(np.isfinite(p)) for p in snapshot(net)[0])
        event("diverged")
        return "diverged"
    except (ValueError, TypeError) as error:
        assert str(error), "an error must say what was expected and what came"
        assert_unchanged(net, before)
        event("refused")
        return "refused"
    event("worked")
    return "worked"


@pytest.fixture(params=BACKENDS)
def fresh(request):
    """A new network for every example: what one example did never changes the next."""
    return lambda: bpgpu.Network(SIZES, backend=request.param, dtype="float64", seed=3)


@given(
    data=good_or_bad_data(),
    method=st.sampled_from(["feedforward", "backprop", "cost", "evaluate", "total_cost", "update", "sgd"]),
)
@fuzz_settings(EXAMPLES["data"])
def test_random_data_works_or_is_refused_without_changing_anything(fresh, data, method):
    X, Y, labels = data
    calls = {
        "feedforward": lambda n: n.feedforward(X),
        "backprop": lambda n: n.backprop(X, Y),
        "cost": lambda n: n.cost(X, Y),
        "evaluate": lambda n: n.evaluate(X, labels),
        "total_cost": lambda n: n.total_cost(X, Y, 0.1),
        "update": lambda n: n.update_mini_batch(X, Y, 0.5),
        "sgd": lambda n: n.SGD((X, Y), 1, 2, 0.5, test_data=(X, labels)),
    }
    call_checked(fresh(), calls[method])


@given(
    epochs=st.one_of(NASTY_NUMBERS, st.integers(1, 2)),
    batch=st.one_of(NASTY_NUMBERS, st.integers(1, 4)),
    eta=st.one_of(NASTY_NUMBERS, st.floats(0.01, 2)),
    lmbda=st.one_of(NASTY_NUMBERS, st.just(0.0)),
    momentum=st.one_of(NASTY_NUMBERS, st.just(0.0)),
    n=st.one_of(NASTY_NUMBERS, st.just(None)),
    regularization=st.sampled_from(["l2", "l1", "l3", "", None, 2]),
    extra=st.sampled_from(
        [
            {},
            {"patience": 3},
            {"monitor": ("training_cost",)},
            {"monitor": "training_cost"},
            {"early_stopping": 2},
        ]
    ),
    which=st.sampled_from(["sgd", "update", "total_cost"]),
)
@fuzz_settings(EXAMPLES["hyper"])
def test_random_hyper_parameters_work_or_are_refused(
    fresh, epochs, batch, eta, lmbda, momentum, n, regularization, extra, which
):
    if which == "sgd" and isinstance(epochs, int) and not isinstance(epochs, bool):
        assume(epochs <= 3)  # a valid call for 2**62 epochs would run for ever, as asked
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(5, SIZES[0])), np.arange(5) % SIZES[-1]
    calls = {
        "sgd": lambda net: net.SGD(
            (X, labels),
            epochs,
            batch,
            eta,
            lmbda=lmbda,
            momentum=momentum,
            regularization=regularization,
            **extra,
        ),
        "update": lambda net: net.update_mini_batch(
            X, labels, eta, lmbda=lmbda, n=n, regularization=regularization
        ),
        "total_cost": lambda net: net.total_cost(X, labels, lmbda, regularization),
    }
    outcome = call_checked(fresh(), calls[which])
    counts = lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v < 2**63  # noqa: E731
    bad = {
        "lmbda": not (_real(lmbda) and lmbda >= 0),
        "regularization": regularization not in ("l2", "l1"),
        "eta": which != "total_cost" and not (_real(eta) and eta > 0),
        "n": which == "update" and n is not None and not counts(n),
        "epochs": which == "sgd" and not counts(epochs),
        "batch": which == "sgd" and not counts(batch),
        "momentum": which == "sgd" and not (_real(momentum) and 0 <= momentum < 1),
        "extra": which == "sgd"
        and ("patience" in extra or "early_stopping" in extra or extra.get("monitor") == "training_cost"),
    }
    if any(bad.values()):
        assert outcome == "refused", f"accepted, though {[k for k, v in bad.items() if v]} are wrong"
    else:
        assert outcome in ("worked", "diverged")


@pytest.mark.skipif(
    "torch" not in bpgpu.available_backends(), reason="PyTorch is not installed: no other backend's arrays"
)
@given(
    data=good_or_bad_data(arrays_only=True),
    method=st.sampled_from(["feedforward", "backprop", "evaluate", "sgd"]),
)
@fuzz_settings(EXAMPLES["mixed"])
def test_arrays_of_another_backend_are_refused(data, method):
    import torch

    X, Y, labels = data
    net = bpgpu.Network(SIZES, backend="numpy", dtype="float64", seed=3)
    X = torch.as_tensor(np.array(X, dtype=np.float64))
    calls = {
        "feedforward": lambda n: n.feedforward(X),
        "backprop": lambda n: n.backprop(X, Y),
        "evaluate": lambda n: n.evaluate(X, labels),
        "sgd": lambda n: n.SGD((X, Y), 1, 2, 0.5),
    }
    assert call_checked(net, calls[method]) == "refused"
