"""Fashion-MNIST end to end, on the real files of Debian's `dataset-fashion-mnist` (.ci/run installs
it; without it these tests skip, saying so), and `load_fashion_mnist`'s search and messages, which
need no data."""

from __future__ import annotations

import numpy as np
import pytest
from test_cli import PNG_MAGIC

import bpgpu
from bpgpu import datasets
from bpgpu.cli import main
from bpgpu.datasets import FASHION_CLASSES, load_fashion_mnist


def installed() -> bool:
    return datasets.fashion_mnist_directory() is not None


needs_data = pytest.mark.skipif(
    not installed(),
    reason="Fashion-MNIST is not installed here: apt-get install dataset-fashion-mnist "
    "(or set BPGPU_DATA to a folder with fashion-mnist/ in it)",
)


@pytest.fixture(scope="module")
def fashion():
    return load_fashion_mnist()


@needs_data
def test_the_real_files_have_the_books_split_and_ten_balanced_test_classes(fashion):
    assert [len(split.y) for split in fashion] == [50_000, 10_000, 10_000]
    for split in fashion:
        assert split.X.dtype == np.float32 and split.X.shape[1] == 784
        assert split.y.dtype == np.int64 and set(np.unique(split.y)) == set(range(10))
        assert split.X.min() >= 0.0 and split.X.max() <= 1.0
    assert np.bincount(fashion.test.y).tolist() == [1000] * 10
    assert fashion.classes == FASHION_CLASSES and fashion.classes[9] == "Ankle boot"


@needs_data
def test_a_chapter_3_network_reaches_85_percent(fashion):
    """[784, 100, 10], cross-entropy, scaled init, λ 5, η 0.5, mini-batches of 10 (the book's
    chapter-3 settings), 12 epochs, keeping the epoch best on the validation split: about 8 s of
    NumPy on 2 cores. Measured here: 85.59%, 86.05%, 86.26% on the test split for seeds 1-3."""
    net = bpgpu.Network([784, 100, 10], cost="cross_entropy", init="scaled", seed=1, backend="numpy")
    validation = (fashion.validation.X, fashion.validation.y)
    net.SGD(
        (fashion.train.X, fashion.train.y),
        12,
        10,
        0.5,
        lmbda=5.0,
        evaluation_data=validation,
        early_stopping=12,
    )
    assert net.evaluate(fashion.test.X, fashion.test.y) >= 8500


@needs_data
def test_the_cli_trains_saves_evaluates_per_class_and_draws_the_matrix(tmp_path, capsys):
    model, picture = tmp_path / "fashion.safetensors", tmp_path / "confusion.png"
    argv = ["train", "--data", "fashion-mnist", "--epochs", "1", "--backend", "numpy", "--quiet"]
    assert main([*argv, "--save", str(model)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(model), "--data", "fashion-mnist", "--plot", str(picture)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{model}: test accuracy ") and "fashion-mnist" in out[0]
    per_class = [line for line in out if line.strip().split(" ")[0].isdigit() and "%" in line]
    assert [line.split()[1] for line in per_class] == [name.split()[0] for name in FASHION_CLASSES]
    assert sum(int(line.rsplit("/", 1)[1].rstrip(")")) for line in per_class) == 10_000
    assert picture.read_bytes().startswith(PNG_MAGIC)
    assert out[-1] == f"drew the confusion matrix into {picture}"


def test_absent_data_says_where_it_looked_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    monkeypatch.setenv("BPGPU_DATA", str(tmp_path / "mine"))
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist()
    message = str(info.value)
    assert f"{tmp_path / 'mine' / 'fashion-mnist'} or {tmp_path / 'debian'}" in message
    assert "apt-get install dataset-fashion-mnist" in message and "train-images-idx3-ubyte" in message
    with pytest.raises(FileNotFoundError, match=f"not found in {tmp_path / 'given'}: install it"):
        load_fashion_mnist(tmp_path / "given")


def test_bpgpu_data_comes_first_and_a_folder_missing_a_file_names_it(tmp_path, monkeypatch):
    (tmp_path / "fashion-mnist").mkdir()
    monkeypatch.setenv("BPGPU_DATA", str(tmp_path))
    assert datasets.fashion_mnist_directories()[0] == tmp_path / "fashion-mnist"
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_fashion_mnist()


def test_the_cli_without_the_data_ends_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "none")
    monkeypatch.delenv("BPGPU_DATA", raising=False)
    assert main(["train", "--data", "fashion-mnist"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "apt-get install dataset-fashion-mnist" in err


def test_class_names_survive_replace_and_are_checked():
    digits = datasets.load_digits().with_classes(FASHION_CLASSES)
    assert digits._replace(test=digits.train).classes == FASHION_CLASSES
    assert [len(split.y) for split in digits] == [1199, 299, 299]  # still three splits
    with pytest.raises(TypeError, match="classes must be a sequence of names"):
        digits.with_classes("abc")


def test_a_bpgpu_data_that_is_not_a_folder_is_said_so(tmp_path, monkeypatch):
    (tmp_path / "fashion-mnist").write_text("not a folder")
    monkeypatch.setenv("BPGPU_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="fashion-mnist is not a directory"):
        load_fashion_mnist()
