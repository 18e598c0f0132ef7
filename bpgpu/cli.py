"""The `bpgpu` command (also `python -m bpgpu`): train, evaluate, info, check.

    bpgpu train [--data digits|PATH] [--sizes 64 30 10] [--epochs 30] ... [--save M] [--plot P]
    bpgpu evaluate MODEL [--data digits|PATH]
    bpgpu info
    bpgpu check [--backend NAME ...]

Mistakes (bad arguments, a missing or malformed file, an unavailable backend, a corrupt model) end
with one line on stderr and exit code 1 (2 for a malformed command line), never a traceback; `--debug`
shows the traceback. Ctrl-C during training stops, saves the model if `--save` was given, and exits
with 130.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any, NoReturn

from . import __version__, datasets, distributed
from . import _validation as check
from .activations import ACTIVATIONS
from .backends import BACKEND_NAMES, available_backends, get_backend
from .checkpoint import load
from .costs import COSTS
from .network import INITS, REGULARIZATIONS, SCHEDULES, Network
from .training import EpochRecord

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: `sys.argv[1:]`); returns the exit code."""
    args = _parser().parse_args(argv)
    args.notes = _collect_log()
    try:
        return args.run(args)
    except BrokenPipeError:  # `bpgpu train | head`: the reader has gone; stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        distributed.abort_if_launched(EXIT_ERROR)
        return EXIT_ERROR
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"bpgpu {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, RuntimeError, OSError, MemoryError, OverflowError, RecursionError) as exc:
        if args.debug:
            distributed.abort_if_launched(EXIT_ERROR, show=exc)  # under mpiexec, the others would wait
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, MemoryError):
            message = f"out of memory ({message})"
        print(f"bpgpu {args.command}: error: {message}", file=sys.stderr)
        distributed.abort_if_launched(EXIT_ERROR)  # under mpiexec, ranks without the error would wait
        return EXIT_ERROR
    finally:
        logging.getLogger("bpgpu").removeHandler(args.notes)


class _Notes(logging.Handler):
    """Keeps bpgpu's log messages (such as why backend "auto" chose the CPU) for the command to print.

    Nothing reaches stderr this way, so an error stays the only line there.
    """

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _collect_log() -> _Notes:
    notes = _Notes()
    log = logging.getLogger("bpgpu")
    log.addHandler(notes)
    log.setLevel(logging.INFO)
    log.propagate = False
    return notes


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bpgpu", description="Train and check neural networks by backpropagation.")
    parser.add_argument("--version", action="version", version=f"bpgpu {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("--debug", action="store_true", help="show the traceback of an error")
        sub.set_defaults(run=run)
        return sub

    backend_help = f"auto (CuPy if a GPU works, else NumPy), or one of {', '.join(BACKEND_NAMES)}"
    train = command("train", _train, "Train a network by mini-batch SGD and report test accuracy.")
    train.add_argument("--data", default="digits", help="digits (embedded; default), mnist.pkl.gz or IDX dir")
    train.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        metavar="N",
        help="layer widths, input first (default: FEATURES 30 10)",
    )
    train.add_argument("--epochs", type=_positive_int, default=30, help="(default 30)")
    train.add_argument("--batch-size", type=_positive_int, default=10, help="mini-batch size (default 10)")
    train.add_argument("--eta", type=_positive_float, default=3.0, help="learning rate (default 3.0)")
    train.add_argument("--activation", choices=tuple(ACTIVATIONS), default="sigmoid")
    train.add_argument("--output-activation", choices=tuple(ACTIVATIONS), help="default: --activation")
    train.add_argument("--cost", choices=tuple(COSTS), default="quadratic")
    train.add_argument("--backend", help=backend_help + "; default $BPGPU_BACKEND or auto")
    train.add_argument("--init", choices=INITS, default="normal", help="weights N(0, 1) or N(0, 1/n_in)")
    train.add_argument("--lmbda", type=_at_least_zero, default=0.0, help="regularisation λ (default 0)")
    train.add_argument("--regularization", choices=REGULARIZATIONS, default="l2")
    train.add_argument("--momentum", type=_at_least_zero, default=0.0, help="μ in [0, 1) (default 0)")
    train.add_argument(
        "--early-stopping",
        type=_positive_int,
        metavar="N",
        help="stop after N epochs without better validation accuracy; keep the best",
    )
    train.add_argument(
        "--eta-schedule",
        choices=SCHEDULES,
        help="halve eta after --patience epochs without improvement, stop below eta/128",
    )
    train.add_argument("--patience", type=_positive_int, default=10, help="for --eta-schedule (default 10)")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    train.add_argument("--seed", type=int, default=1, help="seed for parameters and shuffling (default 1)")
    train.add_argument("--save", metavar="MODEL", help="write the trained model (.npz) here")
    train.add_argument("--plot", metavar="PNG", help="draw test accuracy and training cost per epoch here")
    train.add_argument("--quiet", action="store_true", help="print only the final result")

    evaluate = command("evaluate", _evaluate, "Report the accuracy of a saved model.")
    evaluate.add_argument("model", metavar="MODEL", help="a file written by bpgpu train --save")
    evaluate.add_argument(
        "--data", default="digits", help="digits (embedded; default), mnist.pkl.gz or IDX dir"
    )
    evaluate.add_argument("--split", choices=("test", "validation", "train"), default="test")
    evaluate.add_argument("--backend", help=backend_help)

    command("info", _info, "Show versions, and which backends work here and why not.")
    check = command("check", _check, "Verify this installation: gradients and cross-backend agreement.")
    check.add_argument(
        "--backend",
        action="append",
        choices=BACKEND_NAMES,
        help="a backend to check (repeatable; default: every available one)",
    )
    return parser


def _argument(
    parse: Callable[[str], Any], check: Callable[[Any, str], Any], expected: str
) -> Callable[[str], Any]:
    """An argparse type: `text` parsed, then checked by one of bpgpu's own boundary checks."""

    def convert(text: str) -> Any:
        try:
            return check(parse(text), "value")
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None

    return convert


_positive_int = _argument(int, check.positive_int, "a positive int")
_positive_float = _argument(float, check.positive_real, "a positive float")
_at_least_zero = _argument(float, check.non_negative_real, "a number ≥ 0")


# ---- train ----------------------------------------------------------------------------------------


def _train(args: argparse.Namespace) -> int:
    comm = distributed.world_if_launched()  # under mpiexec: every rank trains, rank 0 reports and saves
    lead = comm is None or comm.Get_rank() == 0
    say = print if lead and not args.quiet else (lambda *_, **__: None)
    if lead:
        _check_outputs(args)  # fail now, not after an hour of training
    data, source = _load_data(args.data)
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
    for note in args.notes.messages:
        say(note)
    say(f"bpgpu {__version__}: {net!r}")
    say(f"backend {net.backend.name} on {net.backend.device}")
    watching = args.early_stopping is not None or args.eta_schedule is not None
    rows = [f"{len(data.train.y)} training", f"{len(data.test.y)} test"]
    if watching:
        rows.insert(1, f"{len(data.validation.y)} validation")
    say(f"data {source}: {', '.join(rows)} rows")

    history: list[EpochRecord] = []
    bar = _ProgressBar(enabled=lead and not args.quiet and sys.stderr.isatty())

    def report(record: EpochRecord) -> None:
        bar.close()
        history.append(record)
        parts = [f"test accuracy {record.accuracy:.2%} ({record.correct} / {record.total})"]
        if record.evaluation_accuracy is not None:
            parts.append(f"validation accuracy {record.evaluation_accuracy:.2%}")
        parts.append(f"training cost {record.training_cost:.4f}")
        if record.eta != args.eta:
            parts.append(f"eta {record.eta:g}")
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
            monitor=("training_cost",),
            early_stopping=args.early_stopping,
            eta_schedule=args.eta_schedule,
            patience=args.patience,
            callback=report,
            progress=bar.update,
            comm=comm,
        )
    except KeyboardInterrupt:
        bar.close()
        if not lead:
            return EXIT_INTERRUPTED
        print(f"bpgpu train: interrupted during epoch {len(history)}", file=sys.stderr)
        if args.save:
            net.save(args.save)
            print(
                f"saved the model as it stands ({len(history)} full epochs) to {args.save}", file=sys.stderr
            )
        if args.plot and history:
            _plot(history, args.plot, sizes, source, net)
        return EXIT_INTERRUPTED
    finally:
        bar.close()
    if not lead:
        return 0
    seconds = sum(r.seconds for r in history)
    correct, total = net.evaluate(data.test.X, data.test.y), len(data.test.y)  # the parameters kept
    stopped = f" (stopped early; kept epoch {_best_epoch(history)})" if args.early_stopping else ""
    print(
        f"test accuracy {correct / total:.2%} ({correct} / {total}) after {len(history)} epochs{stopped}, "
        f"{seconds:.2f} s of training"
    )
    if args.save:
        net.save(args.save)
        say(f"saved the model to {args.save}")
    if args.plot:
        _plot(history, args.plot, sizes, source, net)
        say(f"drew the learning curves in {args.plot}")
    return 0


def _best_epoch(history: list[EpochRecord]) -> int:
    return max(history, key=lambda r: (r.evaluation_accuracy, -r.epoch)).epoch


def _check_outputs(args: argparse.Namespace) -> None:
    """--save and --plot must be writable files that are neither the data nor each other."""
    data = None if args.data == "digits" else os.path.realpath(args.data)
    for option in ("save", "plot"):
        path = getattr(args, option)
        if path is None:
            continue
        _check_writable(path, f"--{option}")
        real = os.path.realpath(path)
        if data is not None and (real == data or real.startswith(data.rstrip(os.sep) + os.sep)):
            raise ValueError(f"--{option} {path}: would overwrite the training data {args.data}")
    if args.save and args.plot and os.path.realpath(args.save) == os.path.realpath(args.plot):
        raise ValueError(f"--save and --plot name the same file {args.save}")
    if args.plot:
        from .plots import check_plot_path

        check_plot_path(args.plot)


def _plot(history: list[EpochRecord], path: str, sizes: list[int], source: str, net: Network) -> None:
    from .plots import plot_history

    plot_history(history, path, title=f"{sizes} on {source.split(' ')[0]}, {net.backend.name}")


class _ProgressBar:
    """A tqdm bar over one epoch's rows, shown only on a terminal; a no-op otherwise."""

    def __init__(self, enabled: bool) -> None:
        self._enabled, self._bar, self._done = enabled, None, 0

    def update(self, done: int, total: int) -> None:
        if not self._enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar, self._done = tqdm(total=total, unit="row", unit_scale=True, leave=False), 0
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _check_writable(path: str | None, option: str) -> None:
    if path is None:
        return
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"{option} {path}: directory {directory} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{option} {path}: is a directory; give a file name")
    if not os.access(directory, os.W_OK):
        raise ValueError(f"{option} {path}: cannot write in {directory}")


def _load_data(spec: str) -> tuple[datasets.DataSets, str]:
    if spec == "digits":
        return datasets.load_digits(), "digits (embedded UCI digits)"
    if not os.path.exists(spec):
        raise ValueError(
            f"--data {spec}: no such file or directory (expected digits, mnist.pkl.gz or IDX dir)"
        )
    return datasets.load_mnist(spec), spec


# ---- evaluate, info, check ------------------------------------------------------------------------


def _evaluate(args: argparse.Namespace) -> int:
    net = load(args.model, backend=args.backend)
    data, source = _load_data(args.data)
    X, y = getattr(data, args.split)
    if X.shape[1] != net.sizes[0]:
        raise ValueError(f"model {args.model} takes {net.sizes[0]} input features; {source} has {X.shape[1]}")
    correct = net.evaluate(X, y)
    print(
        f"{args.model}: {args.split} accuracy {correct / len(y):.2%} ({correct} / {len(y)}), "
        f"mean cost {net.cost(X, y):.4f} on {source} ({net.backend.name} on {net.backend.device})"
    )
    return 0


def _info(args: argparse.Namespace) -> int:
    print(f"bpgpu {__version__} on Python {platform.python_version()} ({platform.platform()})")
    print("libraries: " + ", ".join(f"{d} {_version_of(d)}" for d in ("numpy", "array-api-compat")))
    print("backends:")
    for name in BACKEND_NAMES:
        try:
            backend = get_backend(name)
        except RuntimeError as exc:
            print(f"  {name:<17} unavailable: {exc}")
            continue
        print(f"  {name:<17} available on {backend.device} ({name} {backend.library_version})")
    chosen = get_backend("auto")
    print(f"auto chooses {chosen.name} on {chosen.device}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from .selfcheck import run_checks

    names = args.backend or available_backends()
    for name in names:
        get_backend(name)  # an unavailable backend asked for by name: say why, exit 1
    print(f"bpgpu {__version__} check on {', '.join(names)}")
    start, results = time.perf_counter(), []
    for result in run_checks(names):
        results.append(result)
        print(result, flush=True)
    failed = [r for r in results if not r.passed]
    verdict = (
        f"{len(failed)} of {len(results)} checks FAILED" if failed else f"all {len(results)} checks passed"
    )
    print(f"{verdict} ({time.perf_counter() - start:.1f} s)")
    return EXIT_ERROR if failed else 0


def _version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"
