"""`Network.confusion_matrix` on every backend, against a count made row by row on the host, and
`bpgpu evaluate`'s per-class table and picture on the embedded digits."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import params
from test_cli import PNG_MAGIC

import bpgpu
from bpgpu import step
from bpgpu.cli import main
from bpgpu.datasets import load_digits


def test_the_matrix_counts_each_row_once_where_its_label_and_prediction_meet(backend, monkeypatch):
    monkeypatch.setattr(step, "CHUNK_ROWS", 64)  # several chunks: the sum over them is exact too
    digits = load_digits()
    net = bpgpu.Network([64, 12, 10], backend=backend, seed=3)
    net.SGD((digits.train.X, digits.train.y), 2, 10, 3.0)
    matrix = net.confusion_matrix(digits.test.X, digits.test.y)
    predicted = np.argmax(net.backend.to_numpy(net.feedforward(digits.test.X)), axis=1)
    expected = np.zeros((10, 10), dtype=np.int64)
    for label, guess in zip(digits.test.y, predicted, strict=True):
        expected[label, guess] += 1
    assert matrix.dtype == np.int64 and isinstance(matrix, np.ndarray)
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.trace() == net.evaluate(digits.test.X, digits.test.y)
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(digits.test.y, minlength=10))


def test_bad_labels_are_refused_and_change_nothing(backend):
    net = bpgpu.Network([4, 3, 2], backend=backend, seed=1)
    before = params(net)
    X = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        net.confusion_matrix(X, [0, 1, 2])
    with pytest.raises(ValueError, match="X has 3 rows but labels has 2"):
        net.confusion_matrix(X, [0, 1])
    for got, want in zip(params(net), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_evaluate_prints_each_class_and_the_matrix_and_draws_it(tmp_path, capsys):
    model, picture = tmp_path / "m.npz", tmp_path / "confusion.png"
    assert main(["train", "--epochs", "3", "--backend", "numpy", "--quiet", "--save", str(model)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model), "--plot", str(picture)]) == 0
    out = capsys.readouterr().out
    net, digits = bpgpu.load(model), load_digits()
    matrix = net.confusion_matrix(digits.test.X, digits.test.y)
    lines = out.splitlines()
    start = lines.index("confusion matrix (row: true class, column: predicted class):")
    rows = [[int(v) for v in line.split()[1:]] for line in lines[start + 2 : start + 12]]
    np.testing.assert_array_equal(rows, matrix)
    assert f"   3  {matrix[3, 3] / matrix[3].sum():7.2%}  ({matrix[3, 3]} / {matrix[3].sum()})" in lines
    assert picture.read_bytes().startswith(PNG_MAGIC)


def test_evaluate_checks_the_picture_before_any_work(tmp_path, capsys):
    trained = tmp_path / "m.npz"
    bpgpu.Network([64, 30, 10], seed=1).save(trained)
    assert main(["evaluate", str(trained), "--plot", str(tmp_path / "c.nope")]) != 0
    assert "format 'nope'" in capsys.readouterr().err


def test_evaluate_never_draws_over_the_model_it_reads(tmp_path, capsys):
    model = tmp_path / "mymodel"  # no suffix: the picture would be a PNG of that name
    bpgpu.Network([64, 30, 10], seed=1).save(model)
    before = model.read_bytes()
    assert main(["evaluate", str(model), "--plot", str(model)]) == 1
    assert "would overwrite the model" in capsys.readouterr().err
    assert model.read_bytes() == before


def test_evaluate_scores_a_model_with_more_outputs_than_classes(tmp_path, capsys):
    model = tmp_path / "m12.npz"
    bpgpu.Network([64, 30, 12], seed=1).save(model)
    assert main(["evaluate", str(model)]) == 0
    out = capsys.readouterr().out
    assert "\n  11        -  (0 / 0)\n" in out  # the extra outputs get rows of their own
