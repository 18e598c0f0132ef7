"""`predict`, `score` and `SGD(..., progress=True)`: what users of scikit-learn, Keras and PyTorch
expect, against independent references (argmax on the host, evaluate / n)."""

from __future__ import annotations

import numpy as np
import pytest

import bpgpu

RNG = np.random.default_rng(3)
X = RNG.normal(size=(23, 4))
LABELS = RNG.integers(0, 3, size=23)


def test_predict_is_the_argmax_of_the_output_as_host_int64(backend):
    net = bpgpu.Network([4, 5, 3], backend=backend, dtype="float64", seed=2)
    got = net.predict(X)
    out = net.backend.to_numpy(net.feedforward(X))
    assert isinstance(got, np.ndarray) and got.dtype == np.int64 and got.shape == (23,)
    np.testing.assert_array_equal(got, np.argmax(out, axis=1))


def test_a_one_output_network_predicts_one_where_its_output_reaches_a_half():
    net = bpgpu.Network([4, 1], backend="numpy", dtype="float64", seed=2)
    out = net.feedforward(X)[:, 0]
    assert 0 < (out >= 0.5).sum() < 23  # both classes occur, so the test can fail
    np.testing.assert_array_equal(net.predict(X), (out >= 0.5).astype(np.int64))


def test_score_is_the_accuracy_as_a_float(backend):
    net = bpgpu.Network([4, 5, 3], backend=backend, dtype="float64", seed=2)
    net.SGD((X, LABELS), 3, 5, 1.0)
    score = net.score(X, LABELS)
    assert type(score) is float
    assert score == net.evaluate(X, LABELS) / 23 == np.mean(net.predict(X) == LABELS)


def test_score_refuses_what_evaluate_refuses():
    net = bpgpu.Network([4, 5, 3], backend="numpy", seed=2)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        net.score(X, LABELS + 1)
    with pytest.raises(ValueError, match="rows"):
        net.score(X, LABELS[:5])


def test_progress_true_shows_the_bar_with_each_epoch_and_leaves_training_unchanged(capsys):
    shown, plain = (bpgpu.Network([4, 5, 3], backend="numpy", seed=2) for _ in range(2))
    shown.SGD((X, LABELS), 2, 5, 1.0, progress=True)
    err = capsys.readouterr().err
    assert "epoch 0 (1/2)" in err and "epoch 1 (2/2)" in err and "/23.0 [" in err
    plain.SGD((X, LABELS), 2, 5, 1.0, progress=False)
    assert capsys.readouterr().err == ""
    for a, b in zip(shown.weights + shown.biases, plain.weights + plain.biases, strict=True):
        np.testing.assert_array_equal(a, b)


def test_progress_must_be_a_bool_or_a_callable():
    net = bpgpu.Network([4, 5, 3], backend="numpy", seed=2)
    with pytest.raises(TypeError, match="progress"):
        net.SGD((X, LABELS), 1, 5, 1.0, progress="yes")


def test_a_one_output_network_given_class_labels_is_told_to_pass_float_targets():
    net = bpgpu.Network([4, 1], backend="numpy", seed=2)
    with pytest.raises(ValueError, match=r"one output takes float targets of shape \(23, 1\)"):
        net.SGD((X, LABELS % 2), 1, 5, 1.0)
