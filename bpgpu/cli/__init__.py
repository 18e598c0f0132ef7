"""The `bpgpu` command (also `python -m bpgpu`): train, evaluate, info, check.

    bpgpu [--debug] train [--data digits|PATH] [--sizes 64 30 10] [--epochs 30] ... [--save M] [--plot P]
    bpgpu evaluate MODEL [--data digits|PATH]
    bpgpu info
    bpgpu check [--backend NAME ...]

A bad command line (a malformed value, an option that needs another) is a usage error: one line on
stderr and exit code 2, before anything else is printed. Every other mistake (a missing or malformed
file, an unavailable backend, a corrupt model, training that diverges) ends with one line on stderr
and exit code 1. Never a traceback, unless `--debug` (before or after the subcommand) asks for it.
Ctrl-C during training stops, saves the model if `--save` was given, and exits with 130.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from .. import __version__, launcher
from . import evaluate, shared, train
from .shared import EXIT_ERROR, EXIT_INTERRUPTED, MISTAKES, Parser, one_line

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: `sys.argv[1:]`); returns the exit code."""
    parser = _parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # the subcommand's own error, which can say what was meant
        args.subparser.error(shared.unknown_options(args.subparser, extras))
    args.debug = args.debug or args.sub_debug
    try:
        args.check(args)
    except ValueError as exc:  # cross-option rules, before anything is printed
        args.subparser.error(shared.in_option_terms(str(exc), args.subparser))
    args.notes = _collect_log(logging.DEBUG if args.debug else logging.INFO)
    try:
        return args.run(args)
    except BrokenPipeError:  # `bpgpu train | head`: the reader has gone; stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        launcher.abort_if_launched(EXIT_ERROR)
        return EXIT_ERROR
    except KeyboardInterrupt:
        if args.debug:
            raise
        saved = train.saved_to(args) if args.command == "train" else None
        written = f"; saved the model to {saved}" if saved else "; nothing was saved"
        print(
            f"bpgpu {args.command}: interrupted{written if args.command == 'train' else ''}", file=sys.stderr
        )
        return EXIT_INTERRUPTED
    except MISTAKES as exc:
        if args.debug:
            launcher.abort_if_launched(EXIT_ERROR, show=exc)  # under mpiexec, the others would wait
            raise
        saved = train.saved_to(args) if args.command == "train" else None
        also = f" (the model was saved to {saved})" if saved else ""
        print(f"bpgpu {args.command}: error: {one_line(exc)}{also}", file=sys.stderr)
        launcher.abort_if_launched(EXIT_ERROR)  # under mpiexec, ranks without the error would wait
        return EXIT_ERROR
    finally:
        logging.getLogger("bpgpu").removeHandler(args.notes)


class _Notes(logging.Handler):
    """Keeps bpgpu's log messages (such as why backend "auto" chose the CPU) for the command to print.

    Nothing reaches stderr this way, so an error stays the only line there.
    """

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _collect_log(level: int) -> _Notes:
    """bpgpu's log messages from `level` up (DEBUG with --debug: also why CuPy could not run)."""
    notes = _Notes(level)
    log = logging.getLogger("bpgpu")
    log.addHandler(notes)
    log.setLevel(level)
    log.propagate = False
    return notes


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="bpgpu", description="Train and check neural networks by backpropagation.")
    parser.add_argument("--version", action="version", version=f"bpgpu {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in (train, evaluate):
        for name, (help, add_arguments, run, check) in module.COMMANDS.items():
            sub = commands.add_parser(name, help=help, description=help)
            add_arguments(sub)
            sub.add_argument(
                "--debug", dest="sub_debug", action="store_true", help="show the traceback of an error"
            )
            sub.set_defaults(run=run, check=check, subparser=sub)
    return parser
