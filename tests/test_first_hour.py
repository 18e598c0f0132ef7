"""What a newcomer meets in the first hour: options named as other tools name them, a model that
remembers its data, weights from PyTorch, a Ctrl-C or an error after the save, aligned check
columns, and learning curves with whole epochs and a title in any format matplotlib writes."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import warnings

import numpy as np
import pytest

import bpgpu
from bpgpu import selfcheck
from bpgpu.cli import main, train
from bpgpu.training import EpochRecord


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("--lr", "--eta"),
        ("--learning-rate", "--eta"),
        ("--mini-batch-size", "--batch-size"),
        ("--etta", "--eta"),
    ],
)
def test_an_option_from_another_tool_is_answered_with_ours(given, meant, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["train", given, "0.1"])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.count("\n") == 1
    assert err.startswith(f"bpgpu train: error: unrecognized arguments: {given} 0.1; ")
    assert f"did you mean {meant} instead of {given}?" in err and "(see bpgpu train --help)" in err


def test_an_unknown_option_without_a_near_name_gets_no_guess(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "m.npz", "--zzz"])
    err = capsys.readouterr().err
    assert err.startswith("bpgpu evaluate: error: unrecognized arguments: --zzz (see") and "mean" not in err


def test_a_model_remembers_its_data_and_evaluate_reads_it(tmp_path, capsys):
    model = tmp_path / "m.npz"
    assert main(["train", "--epochs", "1", "--quiet", "--save", str(model)]) == 0
    assert bpgpu.load(model).trained_on == "digits"
    capsys.readouterr()
    assert main(["evaluate", str(model)]) == 0
    assert "test accuracy" in capsys.readouterr().out
    net = bpgpu.Network([784, 10], seed=1)
    net.trained_on = "fashion-mnist"
    for name in ("f.npz", "f.safetensors"):
        net.save(tmp_path / name)
        assert bpgpu.load(tmp_path / name).trained_on == "fashion-mnist"


def test_a_model_that_does_not_say_its_data_is_told_to_pass_data(tmp_path, capsys):
    bpgpu.Network([784, 10], seed=1).save(tmp_path / "m.npz")
    assert main(["evaluate", str(tmp_path / "m.npz")]) == 1
    err = capsys.readouterr().err
    assert "takes 784 input features; digits (embedded UCI digits) has 64" in err and "pass --data" in err


def test_weights_from_pytorch_need_their_activation_named(tmp_path, capsys):
    safetensors = pytest.importorskip("safetensors.numpy", reason="needs the safetensors package")
    rng = np.random.default_rng(0)
    layers = {"layers.0.weight": rng.normal(size=(30, 64)), "layers.0.bias": rng.normal(size=30)}
    layers |= {"layers.1.weight": rng.normal(size=(10, 30)), "layers.1.bias": rng.normal(size=10)}
    safetensors.save_file(layers, tmp_path / "torch.safetensors")
    assert main(["evaluate", str(tmp_path / "torch.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "without bpgpu's settings" in err and "--activation NAME" in err and err.count("\n") == 1
    assert main(["evaluate", str(tmp_path / "torch.safetensors"), "--activation", "relu"]) == 0
    assert "test accuracy" in capsys.readouterr().out


def test_an_error_after_the_save_says_the_model_was_saved(tmp_path, capsys, monkeypatch):
    model = tmp_path / "m.npz"

    def broken_plot(*args):
        raise ValueError("the plot failed")

    monkeypatch.setattr(train, "_plot", broken_plot)
    argv = ["train", "--epochs", "1", "--quiet", "--save", str(model), "--plot", str(tmp_path / "c.png")]
    assert main(argv) == 1
    assert (
        capsys.readouterr().err == f"bpgpu train: error: the plot failed (the model was saved to {model})\n"
    )
    assert bpgpu.load(model).sizes == [64, 30, 10]


def test_saved_to_asks_the_file_so_a_ctrl_c_just_after_the_rename_is_told_right(tmp_path):
    model = tmp_path / "m.npz"
    model.write_bytes(b"an older model")
    args = argparse.Namespace(save=str(model))
    assert train.saved_to(args) is None  # not yet at the save
    args.save_before = train._identity(str(model))
    assert train.saved_to(args) is None  # at the save, the file not yet replaced
    bpgpu.Network([3, 2], seed=1).save(model)  # the rename happened; the line after it did not run
    assert train.saved_to(args) == str(model)


def test_the_check_columns_stay_in_line():
    checks = list(selfcheck.run_checks(["numpy", "array_api_strict"]))  # the longest backend name
    lines = [str(check) for check in checks]
    assert len(lines) >= 6 and len({line.index(" error ") for line in lines}) == 1, "\n".join(lines)
    assert all(len(check.what) <= selfcheck.WHAT_WIDTH for check in checks)


def records(epochs, speeds=(0.1, 0.01)):
    return [
        EpochRecord(
            epoch=e, seconds=0.1, correct=5 + e, total=10, training_cost=1 / (e + 1), layer_speeds=speeds
        )
        for e in range(epochs)
    ]


def svg_texts(path, group=""):
    """The texts of an SVG drawn with text kept as text; with `group`, those of groups so named."""
    text = path.read_text()
    if group:
        return re.findall(rf'<g id="{group}_\d+">.*?<text[^>]*>([^<]*)</text>', text, flags=re.S)
    return re.findall(r"<text[^>]*>([^<]*)</text>", text)


def test_learning_curves_have_whole_epoch_ticks_and_a_title(tmp_path):
    matplotlib = pytest.importorskip("matplotlib", reason="needs matplotlib to draw")
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text kept as text, to be read back
        bpgpu.plots.plot_history(records(3), tmp_path / "c.svg")
        bpgpu.plots.plot_history(records(3), tmp_path / "t.svg", title="mine")
    texts = svg_texts(tmp_path / "c.svg")
    assert "learning curves, epochs 0 to 2" in texts and "mine" in svg_texts(tmp_path / "t.svg")
    ticks = svg_texts(tmp_path / "c.svg", "xtick")
    assert ticks and set(ticks) == {"0", "1", "2"}, ticks


@pytest.mark.parametrize("suffix", ["png", "eps", "ps", "svg", "pdf"])
def test_curves_with_every_layer_still_draw_without_a_warning(tmp_path, suffix):
    pytest.importorskip("matplotlib", reason="needs matplotlib to draw")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bpgpu.plots.plot_history(records(3, speeds=(0.0, 0.0)), tmp_path / f"c.{suffix}")
    assert (tmp_path / f"c.{suffix}").stat().st_size > 0


def test_a_format_matplotlib_cannot_write_here_is_refused_before_training(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="needs matplotlib to draw")
    picture = tmp_path / "c.pgf"
    code = main(["train", "--epochs", "1", "--quiet", "--plot", str(picture)])
    err = capsys.readouterr().err
    if shutil.which("xelatex") is None:  # matplotlib's pgf backend runs LaTeX to measure text
        assert code == 1 and err.startswith(
            f"bpgpu train: error: cannot draw {picture}: matplotlib cannot write pgf"
        )
        assert "accuracy" not in err and not os.path.exists(picture)
    else:
        assert code == 0 and picture.exists(), err


# ---- found in review: each of these failed before its fix ------------------------------------------


def test_evaluate_never_draws_over_the_data_the_model_remembers(tmp_path, capsys):
    from test_mnist import IDX_NAMES, idx_arrays, write_idx_dir

    directory = write_idx_dir(tmp_path / "idx", idx_arrays())
    model = tmp_path / "m.npz"
    argv = ["train", "--data", str(directory), "--sizes", "784", "10", "--epochs", "1", "--quiet"]
    assert main([*argv, "--save", str(model)]) == 0
    labels = directory / IDX_NAMES["test_labels"]
    before = labels.read_bytes()
    assert main(["evaluate", str(model), "--plot", str(labels)]) == 1  # no --data: the model says
    assert "would overwrite the data" in capsys.readouterr().err
    assert labels.read_bytes() == before


def test_evaluate_says_when_the_data_the_model_remembers_is_gone(tmp_path, capsys):
    from test_mnist import idx_arrays, write_idx_dir

    directory = write_idx_dir(tmp_path / "idx", idx_arrays())
    model = tmp_path / "m.npz"
    assert (
        main(
            [
                "train",
                "--data",
                str(directory),
                "--sizes",
                "784",
                "10",
                "--epochs",
                "1",
                "--quiet",
                "--save",
                str(model),
            ]
        )
        == 0
    )
    directory.rename(tmp_path / "moved")
    capsys.readouterr()
    assert main(["evaluate", str(model)]) == 1
    err = capsys.readouterr().err
    assert f"{model} was trained on {directory}, which cannot be read now; pass --data" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["train", "--activation", "relu", "--cost", "cross_entropy"],
            "got --activation 'relu', which the output",
        ),
        (
            ["train", "--patience", "3"],
            "--patience 3 applies only with --eta-schedule 'halve', and none was given",
        ),
        (["evaluate", "m.safetensors", "--activation", "softmax"], "argument --activation: invalid choice"),
        (
            ["evaluate", "m.safetensors", "--activation", "relu", "--cost", "cross_entropy"],
            "--cost 'cross_entropy'",
        ),
    ],
)
def test_option_mistakes_are_usage_errors_in_the_commands_terms(argv, message, capsys):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and message in err and err.count("\n") == 1 and "None" not in err


def test_learning_curves_of_a_slice_say_which_epochs(tmp_path):
    matplotlib = pytest.importorskip("matplotlib", reason="needs matplotlib to draw")
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        bpgpu.plots.plot_history(records(6)[3:], tmp_path / "c.svg")
        bpgpu.plots.plot_history(records(6)[4:5], tmp_path / "one.svg")
    assert "learning curves, epochs 3 to 5" in svg_texts(tmp_path / "c.svg")
    assert "learning curves, epoch 4" in svg_texts(tmp_path / "one.svg")


def test_training_errors_survive_pickling_as_from_a_worker_process():
    import pickle

    from bpgpu.training import TrainingDivergedError, TrainingInterrupted

    diverged = TrainingDivergedError(2, "eta=3", "the network keeps its parameters from after epoch 1", [])
    stopped = TrainingInterrupted(1, 30, 50, [], diverged=False)
    for error in (diverged, stopped):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error) and str(again) == str(error) and again.__dict__ == error.__dict__
