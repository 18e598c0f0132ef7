"""Seeing backprop work: the demon of chapter 2 and each layer's speed of learning (chapter 5)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close, params

import bpgpu
from bpgpu import backprop, selfcheck
from bpgpu.cli import main
from bpgpu.datasets import load_digits

SIZES = [5, 7, 6, 3]


def data(n=25, seed=2):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, SIZES[0])), rng.integers(0, SIZES[-1], n)


def test_layer_speeds_are_the_norms_of_backprops_bias_gradients(backend):
    X, labels = data()
    net = bpgpu.Network(SIZES, backend=backend, dtype="float64", seed=3, activation="tanh")
    nabla_b, _ = net.backprop(X, labels)
    expected = [float(np.linalg.norm(net.backend.to_numpy(g))) for g in nabla_b]
    speeds = net.layer_speeds(X, labels)
    assert isinstance(speeds, list) and all(isinstance(s, float) for s in speeds)
    assert_close(np.array(speeds), np.array(expected), "float64")


@pytest.mark.parametrize("init", ["normal", "scaled"])
@pytest.mark.parametrize("hidden", [2, 3, 4])
def test_at_initialisation_the_first_sigmoid_layer_is_the_slowest_on_most_seeds(init, hidden):
    """Chapter 5 on the embedded digits (1000 rows): measured here, the first hidden layer is the
    slowest of the hidden layers on all of seeds 1-10, for both inits and 2-4 hidden layers."""
    digits = load_digits()
    X, labels = digits.train.X[:1000], digits.train.y[:1000]
    cost = "cross_entropy" if init == "scaled" else "quadratic"
    slowest_first = 0
    for seed in range(1, 11):
        net = bpgpu.Network([64, *[30] * hidden, 10], seed=seed, dtype="float64", init=init, cost=cost)
        speeds = net.layer_speeds(X, labels)[:-1]
        slowest_first += speeds[0] == min(speeds)
    assert slowest_first >= 8


def test_the_demon_changes_the_cost_by_delta_dz_in_every_layer(backend):
    X, labels = data(n=1)
    net = bpgpu.Network(SIZES, backend=backend, dtype="float64", seed=4)
    nabla_b, _ = net.backprop(X, labels)
    dz = 1e-6
    for l, b in enumerate(nabla_b):
        for j in range(SIZES[l + 1]):
            change = (net.cost(X, labels, demon=(l, j, dz)) - net.cost(X, labels, demon=(l, j, -dz))) / 2
            assert change == pytest.approx(float(net.backend.to_numpy(b)[j]) * dz, rel=1e-6, abs=1e-15)
    assert net.cost(X, labels, demon=(0, 0, 0.0)) == net.cost(X, labels)


def test_the_demon_check_passes_and_fails_once_bp2_is_broken(backend, monkeypatch):
    assert selfcheck.demon_check(backend).passed
    # BP2 without σ'(z^l): the formulas still run, but δ is no longer ∂C/∂z
    monkeypatch.setattr(backprop, "backpropagate_error", lambda delta, w, sigma, z, a, xp: delta @ w)
    check = selfcheck.demon_check(backend)
    assert not check.passed and check.error > 1e-2, check


@pytest.mark.parametrize(
    ("demon", "error", "message"),
    [
        ((3, 0, 1e-6), ValueError, r"demon layer must be in \[0, 3\); got 3"),
        ((0, 7, 1e-6), ValueError, r"demon neuron \(layer 0 has 7\) must be in \[0, 7\); got 7"),
        ((0, 0, float("nan")), ValueError, "demon dz must be a finite number"),
        ((0.5, 0, 1e-6), TypeError, "demon layer must be an integer"),
        ((0, 0), TypeError, r"demon must be \(layer, neuron, dz\)"),
    ],
)
def test_a_bad_demon_is_refused(demon, error, message):
    net = bpgpu.Network(SIZES, seed=1)
    before = params(net)
    with pytest.raises(error, match=message):
        net.cost(*data(), demon=demon)
    for got, want in zip(params(net), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_monitored_layer_speeds_are_those_of_the_epochs_end(backend):
    X, labels = data(n=1500)
    eX, el = data(n=30, seed=5)
    for evaluation, rows in (((eX, el), (eX, el)), (None, (X[:1000], labels[:1000]))):
        net = bpgpu.Network(SIZES, backend=backend, dtype="float64", seed=6)
        seen = []
        history = net.SGD(
            (X, labels),
            2,
            50,
            0.5,
            evaluation_data=evaluation,
            monitor=("layer_speeds",),
            callback=lambda r, n=net, d=rows, s=seen: s.append(n.layer_speeds(*d)),
        )
        for record, speeds in zip(history, seen, strict=True):
            assert len(record.layer_speeds) == len(SIZES) - 1
            assert_close(np.array(record.layer_speeds), np.array(speeds), "float64")
        assert "layer speeds " in str(history[0])


def test_the_cli_prints_layer_speeds_with_every_epoch(capsys):
    sizes = ["--sizes", "64", "30", "30", "10"]
    assert main(["train", "--epochs", "2", "--backend", "numpy", "--layer-speeds", *sizes]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch ")]
    assert len(lines) == 2
    for line in lines:
        speeds = line.split("layer speeds ")[1].split(",")[0].split()
        assert len(speeds) == 3 and all(float(s) > 0 for s in speeds)


def test_a_huge_demon_in_float32_changes_only_its_neuron():
    X, labels = data(n=3)
    net = bpgpu.Network(SIZES, seed=1)  # float32: 1e39 is infinite there
    assert np.isfinite(net.cost(X, labels, demon=(0, 0, 1e39)))
