"""Same seed, same network, same numbers on every backend, compared with the NumPy backend."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import RTOL, assert_close, params

import bpgpu

SIZES = [6, 8, 5, 3]


def pair(backend, dtype, **options):
    kw = {"dtype": dtype, "seed": 11, **options}
    return bpgpu.Network(SIZES, backend="numpy", **kw), bpgpu.Network(SIZES, backend=backend, **kw)


def data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, SIZES[0])), rng.integers(0, SIZES[-1], size=n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_bit_identical_initial_parameters(backend, dtype):
    ref, net = pair(backend, dtype)
    for got, want in zip(params(net), params(ref), strict=True):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, want)


def test_different_seeds_give_different_parameters():
    a, b = bpgpu.Network(SIZES, seed=1), bpgpu.Network(SIZES, seed=2)
    assert not np.array_equal(params(a)[0], params(b)[0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"activation": "tanh", "output_activation": "sigmoid", "cost": "cross_entropy"},
        {"activation": "relu"},
    ],
    ids=["sigmoid-quadratic", "tanh-cross_entropy", "relu-quadratic"],
)
def test_gradients_agree_across_backends(backend, dtype, options):
    ref, net = pair(backend, dtype, **options)
    X, labels = data()
    got, want = net.backprop(X, labels), ref.backprop(X, labels)
    for g, w in zip(got[0] + got[1], want[0] + want[1], strict=True):
        assert_close(net.backend.to_numpy(g), ref.backend.to_numpy(w), dtype)
    assert net.cost(X, labels) == pytest.approx(ref.cost(X, labels), rel=RTOL[dtype])
    out, ref_out = net.feedforward(X), ref.feedforward(X)
    assert_close(net.backend.to_numpy(out), ref.backend.to_numpy(ref_out), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_three_epoch_training_run_agrees_across_backends(backend, dtype):
    ref, net = pair(backend, dtype)
    X, labels = data(n=60)
    test = data(n=30, seed=2)
    history = net.SGD((X, labels), epochs=3, mini_batch_size=7, eta=0.5, test_data=test)
    ref_history = ref.SGD((X, labels), epochs=3, mini_batch_size=7, eta=0.5, test_data=test)
    assert [r.correct for r in history] == [r.correct for r in ref_history]
    for got, want in zip(params(net), params(ref), strict=True):
        assert_close(got, want, dtype)
