"""`bpgpu evaluate`, `bpgpu info` and `bpgpu check`: what a saved model scores, what this machine
has, and whether backpropagation is right on it."""

from __future__ import annotations

import argparse
import platform
import time
from importlib import metadata
from typing import Any

from .. import __version__
from ..activations import ACTIVATIONS
from ..backends import BACKEND_NAMES, available_backends, get_backend, routes
from ..costs import COSTS
from ..network import load
from ..options import Layers
from . import shared
from .train import DATA_HELP, HIDDEN_ACTIVATIONS, load_data, writable_output


def _evaluate_arguments(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument(
        "model",
        metavar="MODEL",
        help="a file written by bpgpu train --save, or a safetensors file of weights in nn.Linear's layout",
    )
    evaluate.add_argument(
        "--data", help=f"{DATA_HELP} (default: the data the model was trained on, else digits)"
    )
    for option, names in (
        ("--activation", HIDDEN_ACTIVATIONS),
        ("--output-activation", tuple(ACTIVATIONS)),
        ("--cost", tuple(COSTS)),
    ):
        evaluate.add_argument(
            option,
            choices=names,
            help="for weights without bpgpu's settings (a PyTorch state dict): how the network computes",
        )
    evaluate.add_argument(
        "--split", choices=("test", "validation", "train"), default="test", help="the rows to score"
    )
    evaluate.add_argument(
        "--backend",
        type=shared.backend_name,
        help=f"{shared.BACKEND_HELP} (default: $BPGPU_BACKEND, else auto)",
    )
    evaluate.add_argument(
        "--plot", type=shared.file_name, metavar="PNG", help="draw the confusion matrix into this picture"
    )


def _check_layers(args: argparse.Namespace) -> None:
    """How the layers compute, when given for foreign weights: the library's own rule."""
    if args.activation or args.output_activation or args.cost:
        Layers(args.activation or "sigmoid", args.output_activation, args.cost or "quadratic")


def _evaluate(args: argparse.Namespace) -> int:
    given = {key: getattr(args, key) for key in ("activation", "output_activation", "cost")}
    net = load(args.model, backend=args.backend, **{k: v for k, v in given.items() if v is not None})
    if net._foreign and given["activation"] is None:
        raise ValueError(
            f"{args.model} holds weights without bpgpu's settings, so how its layers compute is unknown; "
            "say it with --activation NAME (and --output-activation NAME, --cost NAME where they differ)"
        )
    spec = args.data or net.trained_on or "digits"
    if args.plot is not None:  # before the data and the evaluation: a typo should not cost them
        from ..plots import check_plot_path

        writable_output("plot", args.plot, "picture", spec, args.model, role="data", attempt=True)
        check_plot_path(args.plot)
    try:
        data, source = load_data(spec)
    except (FileNotFoundError, ValueError) as exc:
        if args.data or not net.trained_on:
            raise
        raise ValueError(
            f"{args.model} was trained on {spec}, which cannot be read now; pass --data ({exc})"
        ) from exc
    X, y = getattr(data, args.split)
    if X.shape[1] != net.sizes[0]:
        hint = ""
        if not args.data:
            hint = (
                f"; the model was trained on {net.trained_on}: pass --data if it has moved"
                if net.trained_on
                else "; the model does not say what it was trained on: pass --data "
                "(fashion-mnist, or an MNIST file, for 784 features)"
            )
        raise ValueError(
            f"model {args.model} takes {net.sizes[0]} input features; {source} has {X.shape[1]}{hint}"
        )
    classes = data.classes
    if net.sizes[-1] < len(classes):
        raise ValueError(
            f"model {args.model} has {net.sizes[-1]} output neurons; {source} has {len(classes)} classes"
        )
    classes = (*classes, *(str(k) for k in range(len(classes), net.sizes[-1])))  # outputs beyond them
    matrix = net.confusion_matrix(X, y)
    correct = int(matrix.trace())
    print(
        f"{args.model}: {args.split} accuracy {correct / len(y):.2%} ({correct} / {len(y)}), "
        f"mean cost {net.cost(X, y):.4f} on {source} ({net.backend.name} on {net.backend.device})"
    )
    print(per_class_table(matrix, classes))
    print(confusion_table(matrix, classes))
    if args.plot is not None:
        from ..plots import plot_confusion

        title = f"{args.model}: {args.split} split of {spec}, {correct / len(y):.1%}"
        plot_confusion(matrix, classes, args.plot, title=title)
        print(f"drew the confusion matrix into {args.plot}")
    return 0


def per_class_table(matrix: Any, classes: tuple[str, ...]) -> str:
    """Each class's accuracy: the rows of that class classified as it, of all rows of that class."""
    names = _row_names(classes)
    lines = ["per class (rows of the class classified as it):"]
    for i, name in enumerate(names):
        rows, right = int(matrix[i].sum()), int(matrix[i, i])
        share = f"{right / rows:7.2%}" if rows else "      -"
        lines.append(f"  {name}  {share}  ({right} / {rows})")
    return "\n".join(lines)


def confusion_table(matrix: Any, classes: tuple[str, ...]) -> str:
    """The matrix as text: a row per true class (numbered and named), a column per predicted one."""
    names = _row_names(classes)
    cell = max(4, len(str(int(matrix.max()))) + 1)
    head = " " * (len(names[0]) + 2) + "".join(f"{j:>{cell}}" for j in range(len(classes)))
    lines = ["confusion matrix (row: true class, column: predicted class):", head]
    for i, name in enumerate(names):
        lines.append(f"  {name}" + "".join(f"{int(v):>{cell}}" for v in matrix[i]))
    return "\n".join(lines)


def _row_names(classes: tuple[str, ...]) -> list[str]:
    """Each class as "number name", of one width; just the number where the name is the number."""
    if all(name == str(i) for i, name in enumerate(classes)):
        return [f"{i:>2}" for i in range(len(classes))]
    width = max(len(name) for name in classes)
    return [f"{i:>2} {name:<{width}}" for i, name in enumerate(classes)]


def _info(args: argparse.Namespace) -> int:
    print(f"bpgpu {__version__} on Python {platform.python_version()} ({platform.platform()})")
    print("libraries: " + ", ".join(f"{d} {_version_of(d)}" for d in ("numpy", "array-api-compat")))
    print("backends:")
    devices = {}
    for name in BACKEND_NAMES:
        try:
            backend = get_backend(name)
        except RuntimeError as exc:
            print(f"  {name:<17} unavailable: {exc}")
            continue
        devices[name] = str(backend.device)
        print(f"  {name:<17} available on {backend.device} ({name} {backend.library_version})")
    chosen = get_backend("auto")
    print(f"auto chooses {chosen.name} on {chosen.device}")
    advice = routes.faster_route_among(chosen.name, devices)
    if advice:
        print(f"note: {advice}")
    return 0


def _check_arguments(check: argparse.ArgumentParser) -> None:
    check.add_argument(
        "--backend",
        action="append",
        choices=BACKEND_NAMES,
        help="a backend to check; repeatable (default: every available one)",
    )


def _check(args: argparse.Namespace) -> int:
    from ..selfcheck import run_checks

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
    return shared.EXIT_ERROR if failed else 0


def _version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _nothing_to_check(args: argparse.Namespace) -> None:
    """No option of these commands depends on another."""


COMMANDS = {
    "evaluate": (
        "Report the accuracy of a saved model, per class, with its confusion matrix.",
        _evaluate_arguments,
        _evaluate,
        _check_layers,
    ),
    "info": (
        "Show versions, and which backends work here and why not.",
        lambda _: None,
        _info,
        _nothing_to_check,
    ),
    "check": (
        "Verify this installation: gradients and cross-backend agreement.",
        _check_arguments,
        _check,
        _nothing_to_check,
    ),
}
