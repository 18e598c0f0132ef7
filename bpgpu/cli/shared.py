"""What every command-line program of bpgpu shares: the `bpgpu` command and the scripts in examples/.

- `Parser`: an `argparse.ArgumentParser` whose usage errors are one line (exit 2) and whose `--help`
  shows every option's default;
- argument types that reuse bpgpu's own boundary checks (`positive_int`, `backend_name`, ...), so a
  bad value is a usage error before anything runs;
- `run(main)`: calls a script's `main()` and ends any mistake with one line on stderr (exit 1), or
  exit 130 on Ctrl-C, never a traceback; `--debug` (or `BPGPU_DEBUG=1`) shows it.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from .. import _validation as check
from ..backends import BACKEND_NAMES

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
# What a mistake can raise: bad values, files, backends, memory, arithmetic. Anything else is a bug
# in bpgpu and keeps its traceback.
MISTAKES = (ValueError, TypeError, RuntimeError, OSError, MemoryError, ArithmeticError, RecursionError)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends "(default: X)" to each option's help unless the help already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or action.default is argparse.SUPPRESS or "default" in text:
            return text
        if action.nargs == 0 and action.default in (False, None):  # a flag
            return f"{text} (default: off)".strip()
        shown = action.default
        if isinstance(shown, (list, tuple)):
            shown = " ".join(map(str, shown))
        return f"{text} (default: {str(shown).replace('%', '%%')})".strip()


class Parser(argparse.ArgumentParser):
    """One line for a usage error, `(see PROG --help)`, exit 2; defaults shown in `--help`.

    `debug=True` adds the `--debug` flag that `run` reads (scripts want it; subcommands add their own).
    """

    def __init__(self, *args: Any, debug: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)
        if debug:
            self.add_argument("--debug", action="store_true", help="show the traceback of an error")

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# Names users bring from other tools, and the option that does what they mean.
ALIASES = {
    "--lr": "--eta",
    "--learning-rate": "--eta",
    "--learning_rate": "--eta",
    "--mini-batch-size": "--batch-size",
    "--batch": "--batch-size",
    "--epoch": "--epochs",
    "--lambda": "--lmbda",
    "--weight-decay": "--lmbda",
}


def unknown_options(parser: argparse.ArgumentParser, extras: list[str]) -> str:
    """The usage error for arguments `parser` does not know, with "did you mean" where one fits."""
    known = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
    hints = []
    for extra in extras:
        name = extra.split("=", 1)[0]
        if not name.startswith("--"):
            continue
        guess = ALIASES.get(name) if ALIASES.get(name) in known else None
        guess = guess or next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.75)), None)
        if guess:
            hints.append(f"did you mean {guess} instead of {name}?")
    return f"unrecognized arguments: {' '.join(extras)}" + (f"; {' '.join(hints)}" if hints else "")


def in_option_terms(message: str, parser: argparse.ArgumentParser) -> str:
    """A library message about keywords (`eta_schedule='halve'`) in the command's terms
    (`--eta-schedule 'halve'`): each `name=` that is one of `parser`'s options becomes `--name `."""
    for action in parser._actions:
        for option in action.option_strings:
            if option.startswith("--") and option[2:].replace("-", "_") == action.dest:
                message = re.sub(rf"\b{re.escape(action.dest)}=", f"{option} ", message)
    return message


def summary(doc: str | None) -> str:
    """A docstring's first paragraph on one line: the description a `--help` shows whole."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def one_line(error: BaseException) -> str:
    """The error's message on one line (MemoryError says what it is)."""
    message = " ".join(str(error).split()) or type(error).__name__
    return f"out of memory ({message})" if isinstance(error, MemoryError) else message


def run(
    main: Callable[[list[str] | None], Any], argv: list[str] | None = None, prog: str | None = None
) -> int:
    """Run a script's `main(argv)`; returns its exit code: 0, 1 (a mistake, one line on stderr),
    2 (a usage error, from its parser) or 130 (Ctrl-C). `--debug` in argv shows the traceback."""
    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args or os.environ.get("BPGPU_DEBUG") == "1"
    name = prog or os.path.basename(sys.argv[0] or "bpgpu")
    try:
        main(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MISTAKES as exc:
        if debug:
            raise
        print(f"{name}: error: {one_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _argument(
    parse: Callable[[str], Any], check_value: Callable[..., Any], expected: str
) -> Callable[[str], Any]:
    """An argparse type: `text` parsed, then checked by one of bpgpu's own boundary checks."""

    def convert(text: str) -> Any:
        try:
            return check_value(parse(text), "value")
        except (TypeError, ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None

    convert.__name__ = expected  # argparse names the type in some messages
    return convert


positive_int = _argument(int, check.positive_int, "a positive int")
positive_float = _argument(float, check.positive_real, "a positive finite number")
at_least_zero = _argument(float, check.non_negative_real, "a finite number ≥ 0")
fraction = _argument(float, check.fraction, "a number in [0, 1)")
seed = _argument(int, lambda value, _: check.seed(value), "an integer in [0, 2**128)")


def file_name(text: str) -> str:
    """A path to write: not empty (an empty --save would save nothing)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a file name, got {text!r}")
    return text


def backend_name(text: str) -> str:
    """ "auto" or one of `BACKEND_NAMES` (whether it runs here is checked when it is used)."""
    names = ("auto", *BACKEND_NAMES)
    if text.strip().lower() not in names:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(names)}, got {text!r}")
    return text.strip().lower()


BACKEND_HELP = f"auto (CuPy if a GPU works, else NumPy) or one of {', '.join(BACKEND_NAMES)}"
