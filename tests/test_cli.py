"""The `bpgpu` command: each subcommand's output, and one-line errors with exit codes on every bad path."""

from __future__ import annotations

import fcntl
import os
import pathlib
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import threading

import numpy as np
import pytest

import bpgpu
import bpgpu.datasets
from bpgpu import backprop
from bpgpu.cli import main

BPGPU = [sys.executable, "-m", "bpgpu"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args, timeout=120):
    return subprocess.run([*BPGPU, *args], capture_output=True, text=True, timeout=timeout)


def epoch_lines(out):
    return [line for line in out.splitlines() if line.startswith("Epoch ")]


def final_accuracy(out):
    last = out.strip().splitlines()[-1]
    assert last.startswith("test accuracy "), last
    return float(last.split()[2].rstrip("%")) / 100


def test_train_with_no_arguments_learns_the_embedded_digits():
    result = run("train", "--backend", "numpy")
    assert result.returncode == 0, result.stderr
    assert "backend numpy on cpu" in result.stdout
    lines = epoch_lines(result.stdout)
    assert len(lines) == 30
    assert lines[0].startswith("Epoch 0: test accuracy ") and ", training cost " in lines[0]
    assert final_accuracy(result.stdout) >= 0.95
    assert "Traceback" not in result.stderr


def test_train_saves_a_model_that_evaluate_scores_the_same_on_any_backend(tmp_path, capsys):
    model = tmp_path / "model.npz"
    assert main(["train", "--epochs", "4", "--backend", "numpy", "--save", str(model)]) == 0
    trained = final_accuracy(capsys.readouterr().out.split("\nsaved")[0])
    for backend in ("numpy", "array_api_strict"):
        assert main(["evaluate", str(model), "--backend", backend]) == 0
        out = capsys.readouterr().out
        assert out.startswith(f"{model}: test accuracy ")
        assert float(out.split()[3].rstrip("%")) / 100 == pytest.approx(trained)
        assert f"({backend} on " in out


def test_train_options_reach_the_network(tmp_path, capsys):
    model = tmp_path / "m.npz"
    argv = [
        "train",
        "--epochs",
        "2",
        "--sizes",
        "64",
        "20",
        "12",
        "10",
        "--activation",
        "tanh",
        "--output-activation",
        "sigmoid",
        "--cost",
        "cross_entropy",
        "--dtype",
        "float64",
        "--seed",
        "5",
        "--batch-size",
        "20",
        "--eta",
        "0.5",
        "--save",
        str(model),
    ]
    assert main(argv) == 0
    assert len(epoch_lines(capsys.readouterr().out)) == 2
    net = bpgpu.load(model)
    assert net.sizes == [64, 20, 12, 10] and net.activation == "tanh" and net.cost_name == "cross_entropy"
    assert (net.dtype, net.seed, net.output_activation) == ("float64", 5, "sigmoid")


def test_quiet_prints_only_the_result(capsys):
    assert main(["train", "--epochs", "2", "--quiet", "--backend", "numpy"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("test accuracy ") and captured.out.count("\n") == 1
    assert captured.err == ""


def test_plot_draws_a_png_of_the_learning_curves(tmp_path, capsys):
    plot = tmp_path / "curves.png"
    assert main(["train", "--epochs", "3", "--plot", str(plot)]) == 0
    assert f"drew the learning curves in {plot}" in capsys.readouterr().out
    image = plot.read_bytes()
    assert image.startswith(PNG_MAGIC) and len(image) > 5000


def test_plot_without_matplotlib_says_how_to_install_it_before_training(monkeypatch, tmp_path, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert main(["train", "--plot", str(tmp_path / "c.png")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing trained
    assert "pip install matplotlib" in captured.err and captured.err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["train", "--epochs", "0"], 2, "argument --epochs: expected a positive int, got '0'"),
        (["train", "--eta", "-1"], 2, "argument --eta: expected a positive finite number"),
        (["train", "--batch-size", "ten"], 2, "expected a positive int, got 'ten'"),
        (["train", "--activation", "swish"], 2, "invalid choice: 'swish'"),
        (["train", "--activation", "softmax"], 2, "invalid choice: 'softmax'"),
        (["train", "--cost", "cross_entropy", "--activation", "relu"], 2, "--cost 'cross_entropy' needs"),
        (
            ["train", "--cost", "log_likelihood"],
            2,
            "--cost 'log_likelihood' needs an output activation in ('softmax',)",
        ),
        (["train", "--backend", "tpu"], 2, "argument --backend: expected one of auto, numpy"),
        (["train", "--backend", "nope"], 2, "argument --backend: expected one of auto, numpy"),
        (["train", "--data", "no/such/mnist.pkl.gz"], 1, "no such file or directory"),
        (["train", "--sizes", "784", "30", "10"], 1, "must start with the data's 64 input features"),
        (["train", "--sizes", "64", "0", "10"], 2, "argument --sizes: expected a positive int, got '0'"),
        (["train", "--sizes", "64", "30", "5"], 1, "must end with at least 10 outputs"),
        (["train", "--seed", "-1"], 2, "argument --seed: expected an integer in [0, 2**128)"),
        (["train", "--save", "no/such/dir/m.npz"], 1, "does not exist"),
        (["train", "--save", ""], 2, "argument --save: expected a file name, got ''"),
        (["train", "--plot", ""], 2, "argument --plot: expected a file name, got ''"),
        (["train", "--plot", "curves.txt"], 1, "cannot draw curves.txt: format 'txt'"),
        (["train", "--save", "m.png", "--plot", "m.png"], 1, "--save and --plot name the same file"),
        (["train", "--momentum", "1.5"], 2, "argument --momentum: expected a number in [0, 1), got '1.5'"),
        (["train", "--momentum", "1"], 2, "argument --momentum: expected a number in [0, 1), got '1'"),
        (["train", "--lmbda", "-1"], 2, "argument --lmbda: expected a finite number ≥ 0"),
        (["train", "--eta", "1e400"], 2, "argument --eta: expected a positive finite number"),
        (["train", "--eta-schedule", "cosine"], 2, "invalid choice: 'cosine'"),
        (["train", "--patience", "3"], 2, "--patience 3 applies only with --eta-schedule 'halve'"),
        (["evaluate", "missing.npz"], 1, "missing.npz: no such model file"),
        (["check", "--backend", "gpu"], 2, "invalid choice: 'gpu'"),
        (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
        ([], 2, "required: command"),
    ],
)
def test_bad_commands_end_with_one_line_on_stderr_and_an_exit_code(argv, code, message, capsys, tmp_path):
    monkey_cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        try:
            got = main(argv)
        except SystemExit as exit:  # argparse's own errors
            got = exit.code
    finally:
        os.chdir(monkey_cwd)
    captured = capsys.readouterr()
    assert got == code
    assert message in captured.err
    assert captured.err.strip().count("\n") == 0 and "Traceback" not in captured.err
    assert not list(tmp_path.iterdir())  # no stray files
    if code == 2:  # a usage error comes before anything else is printed
        assert captured.out == ""
    assert "output_activation=" not in captured.err  # CLI messages name CLI options


def test_a_corrupt_model_is_one_line_in_a_real_process_and_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    result = run("evaluate", str(bad))
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"bpgpu evaluate: error: {bad}: not a bpgpu model file (neither an .npz archive nor safetensors"
    )
    assert result.stderr.count("\n") == 1  # without --backend too: the backend log stays off stderr
    debug = run("evaluate", str(bad), "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "ValueError" in debug.stderr


def test_an_unavailable_backend_gives_its_reason():
    names = bpgpu.available_backends()
    missing = [name for name in bpgpu.BACKEND_NAMES if name not in names]
    if not missing:
        pytest.skip("every backend works on this machine: none to report as unavailable")
    result = run("train", "--backend", missing[0])
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"bpgpu train: error: backend '{missing[0]}' is not available")


def test_info_lists_every_backend_and_why_one_is_missing(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"bpgpu {bpgpu.__version__} on Python ")
    available = bpgpu.available_backends()
    for name in bpgpu.BACKEND_NAMES:
        (line,) = [line for line in out.splitlines() if line.strip().startswith(name + " ")]
        assert line.split()[1] == ("available" if name in available else "unavailable:"), line
    assert f"auto chooses {bpgpu.get_backend('auto').name}" in out


def test_check_passes_on_this_installation(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    available = bpgpu.available_backends()
    for name in available:
        assert f"PASS  {name} " in out
        assert any(
            line.startswith(f"PASS  {name} ") and "the demon: ΔC = δ Δz" in line for line in out.splitlines()
        )
    assert "FAIL" not in out and out.strip().splitlines()[-1].startswith("all ")
    if len(available) > 1:
        assert "2 epochs of SGD = numpy's (float64)" in out


def test_check_fails_with_exit_code_1_when_backprop_is_wrong(monkeypatch, capsys):
    right = backprop.weight_gradient
    monkeypatch.setattr(backprop, "weight_gradient", lambda delta, a_in, xp: 1.001 * right(delta, a_in, xp))
    assert main(["check", "--backend", "numpy"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  numpy" in out and "checks FAILED" in out


def _run_on_a_terminal(argv, timeout=60):
    """Run the command with stderr on a pseudo-terminal (100 columns); returns (code, stdout, stderr)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen([*BPGPU, *argv], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    err = b""
    while select.select([master], [], [], timeout)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the command has exited
            break
        if not chunk:
            break
        err += chunk
    os.close(master)
    with process.stdout:
        out = process.stdout.read().decode()
    return process.wait(timeout), out, err.decode(errors="replace")


def test_a_progress_bar_is_shown_on_a_terminal_and_not_in_a_pipe():
    code, out, err = _run_on_a_terminal(["train", "--epochs", "2", "--backend", "numpy"])
    assert code == 0 and len(epoch_lines(out)) == 2
    assert "row/s" in err and "/1.20k" in err  # tqdm's bar over the 1199 training rows
    piped = run("train", "--epochs", "2", "--backend", "numpy")
    assert "row/s" not in piped.stderr


def test_ctrl_c_stops_training_and_saves_exactly_what_it_says(tmp_path):
    model = tmp_path / "model.npz"
    process = subprocess.Popen(
        [*BPGPU, "train", "--epochs", "100000", "--backend", "numpy", "--save", str(model)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(120, process.kill)  # a hang fails the test instead of the suite
    watchdog.start()
    try:
        for line in process.stdout:  # wait until training has really started
            if line.startswith("Epoch 1:"):
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        watchdog.cancel()
        process.kill()
    assert process.returncode == 130, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    match = re.fullmatch(
        r"bpgpu train: interrupted (in|at the end of|before) epoch (\d+)(?: took a step)?; the network "
        r"holds (\d+) whole epochs?(?: and (\d+) of the 1199 rows of epoch \d+)?; "
        r"saved it as it stands to (.+)\n",
        err,
    )
    assert match, err
    where, epoch, whole, rows, saved = match[1], int(match[2]), int(match[3]), int(match[4] or 0), match[5]
    assert saved == str(model) and epoch >= 1
    assert whole == (epoch + 1 if where == "at the end of" else epoch)
    # Replay: `whole` epochs, then the first `rows` rows of the next epoch's shuffle in steps of 10.
    digits = bpgpu.datasets.load_digits()
    replay = bpgpu.Network([64, 30, 10], seed=1, backend="numpy")
    replay.SGD((digits.train.X, digits.train.y), whole, 10, 3.0)
    order = replay._random.permutation(1199)
    for k in range(0, rows, 10):
        part = order[k : min(k + 10, rows)]
        replay.update_mini_batch(digits.train.X[part], digits.train.y[part], 3.0)
    net = bpgpu.load(model)
    for got, want in zip(net.weights + net.biases, replay.weights + replay.biases, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


def test_the_console_script_is_installed_and_python_m_works():
    script = pathlib.Path(sys.executable).with_name("bpgpu")
    if not script.exists():
        pytest.skip(f"no console script at {script}: bpgpu is not pip-installed in this environment")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == f"bpgpu {bpgpu.__version__}"
    assert run("--version").stdout.strip() == f"bpgpu {bpgpu.__version__}"


def test_save_refuses_to_overwrite_the_training_data(tmp_path, capsys):
    pickle_file = tmp_path / "mnist.pkl.gz"
    pickle_file.write_bytes(b"the user's only copy")
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / "train-images-idx3-ubyte").write_bytes(b"images")
    for data, target in ((pickle_file, pickle_file), (idx, idx / "train-images-idx3-ubyte")):
        assert main(["train", "--data", str(data), "--save", str(target)]) == 1
        assert "would overwrite the training data" in capsys.readouterr().err
    assert pickle_file.read_bytes() == b"the user's only copy"
    assert (idx / "train-images-idx3-ubyte").read_bytes() == b"images"


def test_chapter3_options_train_with_early_stopping_on_the_validation_split(tmp_path, capsys):
    model = tmp_path / "m.npz"
    options = ["--cost", "cross_entropy", "--init", "scaled", "--eta", "1.0", "--lmbda", "0.5"]
    options += ["--momentum", "0.2", "--early-stopping", "2", "--epochs", "40"]
    assert main(["train", *options, "--backend", "numpy", "--save", str(model)]) == 0
    out = capsys.readouterr().out
    lines = epoch_lines(out)
    assert "validation accuracy" in lines[0] and "1199 training, 299 validation, 299 test rows" in out
    final = out.strip().splitlines()[-2]
    kept = int(final.split("kept epoch ")[1].split(")")[0])
    validation = [float(line.split("validation accuracy ")[1].split("%")[0]) for line in lines]
    assert validation[kept] == max(validation) and len(lines) == kept + 3
    net = bpgpu.load(model)
    assert (net.cost_name, net.init) == ("cross_entropy", "scaled")
    test = bpgpu.datasets.load_digits().test
    assert final.startswith(f"test accuracy {net.evaluate(test.X, test.y) / 299:.2%}")


def test_debug_is_accepted_before_and_after_the_subcommand(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    for argv in (["--debug", "evaluate", str(bad)], ["evaluate", str(bad), "--debug"]):
        result = run(*argv)
        assert result.returncode == 1 and "Traceback" in result.stderr, argv
    assert "Traceback" not in run("evaluate", str(bad)).stderr


@pytest.mark.parametrize(
    "options",
    [["--eta", "1e308"], ["--lmbda", "1e308"], ["--activation", "identity", "--eta", "1e30"]],
    ids=["eta", "lmbda", "identity"],
)
def test_training_that_diverges_is_one_line_without_warnings_and_saves_nothing(tmp_path, options):
    model = tmp_path / "model.npz"
    result = run("train", "--epochs", "3", "--backend", "numpy", "--save", str(model), *options)
    assert result.returncode == 1
    assert result.stderr.startswith("bpgpu train: error: training diverged in epoch ")
    assert result.stderr.count("\n") == 1 and "Warning" not in result.stderr, result.stderr
    assert f"--{options[-2].lstrip('-')} {float(options[-1]):g}" in result.stderr  # names the CLI option
    assert not model.exists()


def test_one_epoch_is_said_in_the_singular(capsys):
    assert main(["train", "--epochs", "1", "--quiet"]) == 0
    assert " after 1 epoch, " in capsys.readouterr().out


def test_patience_takes_effect_with_the_schedule(capsys):
    argv = ["train", "--epochs", "40", "--eta-schedule", "halve", "--patience", "1", "--eta", "8"]
    assert main(argv) == 0
    assert "eta 4" in capsys.readouterr().out  # halved after one epoch without improvement


def _help(argv):
    result = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def options_without_a_default(text):
    """Options in a --help text whose description does not give a default."""
    entries = re.split(r"\n  (?=-)", "\n" + text.split("options:", 1)[1].strip("\n"))
    options = [entry.split()[0].rstrip(",") for entry in entries if entry.strip()]
    described = dict(zip(options, [e for e in entries if e.strip()], strict=True))
    return [o for o in options if "default" not in described[o] and o not in ("-h", "--version")]


@pytest.mark.parametrize("command", ["train", "evaluate", "info", "check", None])
def test_every_option_of_every_subcommand_shows_its_default(command):
    text = _help([*BPGPU, *([command] if command else [])])
    assert options_without_a_default(text) == []


def test_save_and_plot_never_replace_what_is_not_a_regular_file_and_fail_before_training(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo) if hasattr(os, "mkfifo") else fifo.mkdir()
    for argv in (["--save", str(fifo)], ["--plot", str(fifo)], ["--save", f"{tmp_path}/m.npz/"]):
        assert main(["train", *argv]) == 1, argv
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1, captured  # nothing trained
        assert "refusing to replace it" in captured.err or "not a file name" in captured.err
    assert not (fifo.is_file() or (tmp_path / "m.npz").exists())


def test_a_model_may_be_saved_beside_the_idx_files_but_not_over_one(tmp_path, capsys):
    from test_mnist import IDX_NAMES, idx_arrays, write_idx_dir  # the IDX writers of the loader's tests

    directory = write_idx_dir(tmp_path / "idx", idx_arrays())
    argv = ["train", "--data", str(directory), "--sizes", "784", "10", "--epochs", "1", "--quiet"]
    assert main([*argv, "--save", str(directory / "model.npz")]) == 0
    assert main([*argv, "--save", str(directory / IDX_NAMES["train_labels"])]) == 1
    assert "would overwrite the training data" in capsys.readouterr().err


def test_ctrl_c_before_training_says_nothing_was_saved(monkeypatch, tmp_path, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(bpgpu.datasets, "load_digits", interrupted)
    assert main(["train", "--save", str(tmp_path / "m.npz")]) == 130
    assert capsys.readouterr().err == "bpgpu train: interrupted; nothing was saved\n"
    assert not list(tmp_path.iterdir())


def test_train_on_the_cpu_says_so_in_one_short_line_and_the_reason_only_with_debug(capsys, monkeypatch):
    from bpgpu import backends

    monkeypatch.delenv("BPGPU_BACKEND", raising=False)
    monkeypatch.setitem(sys.modules, "cupy", None)  # no CuPy here, whatever the machine has
    monkeypatch.setattr(backends, "_auto_announced", False)
    assert main(["train", "--epochs", "1"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == "bpgpu: no CUDA GPU: training on the CPU with NumPy"
    monkeypatch.setattr(backends, "_auto_announced", False)
    assert main(["train", "--epochs", "1", "--debug"]) == 0
    out = capsys.readouterr().out
    assert "why not CuPy: backend 'cupy' is not available" in out
