"""`bpgpu train`: a network trained by mini-batch SGD on the embedded digits or on MNIST, one line
per epoch; optionally saved (`--save`) and its learning curves drawn (`--plot`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .. import __version__, datasets, launcher
from ..activations import ACTIVATIONS
from ..costs import COSTS
from ..interrupts import plural
from ..io.files import check_writable, try_writable
from ..network import Network
from ..options import INITS, PATIENCE, REGULARIZATIONS, SCHEDULES, Layers, Training
from ..progress import ProgressBar
from ..training import EpochRecord, TrainingDivergedError, TrainingInterrupted
from . import shared
from .shared import EXIT_INTERRUPTED

DATA_HELP = (
    "digits (embedded), fashion-mnist (Debian's dataset-fashion-mnist, or $BPGPU_DATA/fashion-mnist), "
    "Nielsen's mnist.pkl.gz, or a directory of the four MNIST IDX files"
)
HIDDEN_ACTIVATIONS = tuple(name for name, a in ACTIVATIONS.items() if not a.output_only)


def add_arguments(train: argparse.ArgumentParser) -> None:
    train.add_argument("--data", default="digits", help=DATA_HELP)
    train.add_argument(
        "--sizes",
        type=shared.positive_int,
        nargs="+",
        metavar="N",
        help="layer widths, input first (default: FEATURES 30 10)",
    )
    train.add_argument("--epochs", type=shared.positive_int, default=30, help="passes over the training rows")
    train.add_argument("--batch-size", type=shared.positive_int, default=10, help="mini-batch size")
    train.add_argument("--eta", type=shared.positive_float, default=3.0, help="learning rate")
    train.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="sigmoid", help="hidden layers")
    train.add_argument(
        "--output-activation", choices=tuple(ACTIVATIONS), help="the output layer's (default: --activation)"
    )
    train.add_argument("--cost", choices=tuple(COSTS), default="quadratic", help="the cost C to minimise")
    train.add_argument(
        "--backend",
        type=shared.backend_name,
        help=f"{shared.BACKEND_HELP} (default: $BPGPU_BACKEND, else auto)",
    )
    train.add_argument("--init", choices=INITS, default="normal", help="weights N(0, 1) or N(0, 1/n_in)")
    train.add_argument("--lmbda", type=shared.at_least_zero, default=0.0, help="regularisation λ")
    train.add_argument(
        "--regularization", choices=REGULARIZATIONS, default="l2", help="the penalty that --lmbda weighs"
    )
    train.add_argument("--momentum", type=shared.fraction, default=0.0, help="μ in [0, 1)")
    train.add_argument(
        "--early-stopping",
        type=shared.positive_int,
        metavar="N",
        help="stop after N epochs without better validation accuracy and keep the best (default: off)",
    )
    train.add_argument(
        "--eta-schedule",
        choices=SCHEDULES,
        help="halve eta after --patience epochs without better validation accuracy; stop below eta/128 "
        "(default: off)",
    )
    train.add_argument(
        "--patience", type=shared.positive_int, metavar="N", help=f"for --eta-schedule (default {PATIENCE})"
    )
    train.add_argument(
        "--dtype", choices=("float32", "float64"), default="float32", help="of parameters and arithmetic"
    )
    train.add_argument("--seed", type=shared.seed, default=1, help="seeds the parameters and the shuffles")
    train.add_argument(
        "--layer-speeds",
        action="store_true",
        help="print each layer's speed of learning ‖∂C/∂b‖ with every epoch (over the validation split "
        "with --early-stopping or --eta-schedule, else 1000 training rows); --plot draws them",
    )
    train.add_argument(
        "--save", type=shared.file_name, metavar="MODEL", help="write the model here (default: not saved)"
    )
    train.add_argument(
        "--plot",
        type=shared.file_name,
        metavar="PNG",
        help="draw the learning curves here (default: not drawn)",
    )
    train.add_argument("--quiet", action="store_true", help="print only the final result")


def check(args: argparse.Namespace) -> None:
    """Options that are each well-formed but do not go together: the library's own rules (its
    `ValueError` becomes a usage error), before anything runs."""
    Layers(args.activation, args.output_activation, args.cost)
    Training(
        args.epochs,
        args.batch_size,
        args.eta,
        args.lmbda,
        args.regularization,
        args.momentum,
        early_stopping=args.early_stopping,
        eta_schedule=args.eta_schedule,
        patience=args.patience,
    )


def run(args: argparse.Namespace) -> int:
    comm = launcher.world_if_launched()  # under mpiexec: every rank trains, rank 0 reports and saves
    lead = comm is None or comm.Get_rank() == 0
    say = print if lead and not args.quiet else (lambda *_, **__: None)
    if lead:
        _check_outputs(args)  # fail now, not after an hour of training
    data, source = load_data(args.data)
    features = data.train.X.shape[1]
    sizes = args.sizes or [features, 30, 10]
    if sizes[0] != features:
        raise ValueError(f"--sizes must start with the data's {features} input features; got {sizes}")
    classes = int(data.train.y.max()) + 1
    if sizes[-1] < classes:
        raise ValueError(
            f"--sizes must end with at least {classes} outputs for the data's classes; got {sizes}"
        )
    net = Network(
        sizes,
        activation=args.activation,
        output_activation=args.output_activation,
        cost=args.cost,
        init=args.init,
        backend=args.backend,
        dtype=args.dtype,
        seed=args.seed,
    )
    net.trained_on = args.data if args.data in ("digits", "fashion-mnist") else os.path.abspath(args.data)
    for note in args.notes.messages:
        say(note)
    say(f"bpgpu {__version__}: {net!r}")
    say(f"backend {net.backend.name} on {net.backend.device}")
    if comm is not None:
        say(
            f"data parallel: {comm.Get_size()} ranks under mpiexec, each computing the gradient of its "
            "share of every mini-batch; rank 0 reports and saves"
        )
    watching = args.early_stopping is not None or args.eta_schedule is not None
    rows = [f"{len(data.train.y)} training", f"{len(data.test.y)} test"]
    if watching:
        rows.insert(1, f"{len(data.validation.y)} validation")
    say(f"data {source}: {', '.join(rows)} rows")

    history: list[EpochRecord] = []
    bar = ProgressBar(args.epochs, enabled=lead and not args.quiet and sys.stderr.isatty())

    def report(record: EpochRecord) -> None:
        bar.close()
        history.append(record)
        parts = [f"test accuracy {record.accuracy:.2%} ({record.correct} / {record.total})"]
        if record.evaluation_accuracy is not None:
            parts.append(f"validation accuracy {record.evaluation_accuracy:.2%}")
        parts.append(f"training cost {record.training_cost:.4f}")
        if record.eta != args.eta:
            parts.append(f"eta {record.eta:g}")
        if record.layer_speeds is not None:
            parts.append("layer speeds " + " ".join(f"{speed:.3g}" for speed in record.layer_speeds))
        say(f"Epoch {record.epoch}: {', '.join(parts)}, {record.seconds:.2f} s", flush=True)

    try:
        net.SGD(
            (data.train.X, data.train.y),
            args.epochs,
            args.batch_size,
            args.eta,
            test_data=(data.test.X, data.test.y),
            lmbda=args.lmbda,
            regularization=args.regularization,
            momentum=args.momentum,
            evaluation_data=(data.validation.X, data.validation.y) if watching else None,
            monitor=("training_cost", "layer_speeds") if args.layer_speeds else ("training_cost",),
            early_stopping=args.early_stopping,
            eta_schedule=args.eta_schedule,
            patience=args.patience if args.eta_schedule else None,
            callback=report,
            progress=bar,
            comm=comm,
        )
    except TrainingInterrupted as stop:
        bar.close()
        return _interrupted(args, stop, lead, net, sizes, source)
    except TrainingDivergedError as error:
        settings = shared.in_option_terms(error.settings, args.subparser)
        message = f"{error.what}; {settings} is too large for this network (nothing was saved)"
        if comm is None:
            raise ValueError(message) from error
        if lead:  # under mpiexec every rank diverged in the same epoch: one line, and no abort
            print(f"bpgpu train: error: {message}", file=sys.stderr)
        return shared.EXIT_ERROR
    finally:
        bar.close()
    if not lead:
        return 0
    seconds = sum(r.seconds for r in history)
    correct, total = net.evaluate(data.test.X, data.test.y), len(data.test.y)  # the parameters kept
    stopped = f" (stopped early; kept epoch {_best_epoch(history)})" if args.early_stopping else ""
    print(
        f"test accuracy {correct / total:.2%} ({correct} / {total}) after {plural(len(history), 'epoch')}"
        f"{stopped}, {seconds:.2f} s of training"
    )
    if args.save is not None:
        args.save_before = _identity(args.save)  # a Ctrl-C or an error later asks `saved_to`
        net.save(args.save)
        args.saved = args.save
        say(f"saved the model to {args.save}")
    if args.plot is not None:
        _plot(history, args.plot, sizes, source, net)
        say(f"drew the learning curves in {args.plot}")
    return 0


def _interrupted(
    args: argparse.Namespace,
    stop: TrainingInterrupted,
    lead: bool,
    net: Network,
    sizes: list[int],
    source: str,
) -> int:
    """Ctrl-C: say exactly what the network holds, save it if asked, and exit with 130."""
    if not lead:
        return EXIT_INTERRUPTED
    message = f"bpgpu train: {stop}"
    if args.save is not None:
        net.save(args.save)
        message += f"; saved it as it stands to {args.save}"
    if args.plot is not None and stop.history:
        _plot(stop.history, args.plot, sizes, source, net)
        message += f"; drew the learning curves in {args.plot}"
    print(message, file=sys.stderr)
    return EXIT_INTERRUPTED


def saved_to(args: argparse.Namespace) -> str | None:
    """Where `train` saved the model, or None: decided by the file, so that a Ctrl-C between the
    rename that put the new model in place and the line after it still says it was saved."""
    if getattr(args, "saved", None):
        return args.saved
    if not hasattr(args, "save_before"):
        return None
    return args.save if _identity(args.save) != args.save_before else None


def _identity(path: str) -> tuple[int, ...] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino, found.st_mtime_ns, found.st_size)


def _best_epoch(history: list[EpochRecord]) -> int:
    return max(history, key=lambda r: (r.evaluation_accuracy, -r.epoch)).epoch


def writable_output(
    option: str,
    path: str,
    what: str,
    data: str,
    model: str | None = None,
    role: str = "training data",
    attempt: bool = False,
) -> str:
    """The real path of output `path` (of `--option`), after checking that it can be written (with
    `attempt`, by creating it, see `bpgpu.io.files.try_writable`) and is neither the data
    (`--data`'s file, or an IDX file of its directory) nor the `model` read."""
    try:
        real = (try_writable if attempt else check_writable)(path, what)
    except ValueError as exc:
        raise ValueError(f"--{option} {exc}") from None
    if data == "fashion-mnist":
        found = datasets.fashion_mnist_directory()
        data_real = None if found is None else os.path.realpath(found)
    else:
        data_real = None if data == "digits" else os.path.realpath(data)
    inside = (
        data_real is not None and os.path.dirname(real) == data_real and "-ubyte" in os.path.basename(real)
    )
    if data_real is not None and (real == data_real or inside):
        raise ValueError(f"--{option} {path}: would overwrite the {role} {data}")
    if model is not None and real == os.path.realpath(model):
        raise ValueError(f"--{option} {path}: would overwrite the model {model}")
    return real


def _check_outputs(args: argparse.Namespace) -> None:
    """--save and --plot must be files that can be written (never a device, a FIFO or a directory),
    that are neither a data file nor each other."""
    targets = {}
    for option in ("save", "plot"):
        path = getattr(args, option)
        if path is None:
            continue
        targets[option] = writable_output(
            option, path, "model" if option == "save" else "picture", args.data, attempt=True
        )
    if len(targets) == 2 and targets["save"] == targets["plot"]:
        raise ValueError(f"--save and --plot name the same file {args.save}")
    if args.plot:
        from ..plots import check_plot_path

        check_plot_path(args.plot)


def _plot(history: list[EpochRecord], path: str, sizes: list[int], source: str, net: Network) -> None:
    from ..plots import plot_history

    plot_history(history, path, title=f"{sizes} on {source.split(' ')[0]}, {net.backend.name}")


def load_data(spec: str) -> tuple[Any, str]:
    """`--data`: the embedded digits, Fashion-MNIST by name, or MNIST from a file or directory;
    `(DataSets, description)`."""
    if spec == "digits":
        return datasets.load_digits(), "digits (embedded UCI digits)"
    if spec == "fashion-mnist":
        found = datasets.fashion_mnist_directory()
        return datasets.load_fashion_mnist(), f"fashion-mnist (Zalando's Fashion-MNIST in {found})"
    if not os.path.exists(spec):
        raise ValueError(f"--data {spec}: no such file or directory (expected {DATA_HELP})")
    return datasets.load_mnist(spec), spec


COMMANDS = {
    "train": ("Train a network by mini-batch SGD and report test accuracy.", add_arguments, run, check)
}
