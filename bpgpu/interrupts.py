"""Ctrl-C during training: noted while a compiled call runs, acted on once the network holds a whole
step, and reported as `TrainingInterrupted`, which says in words what the network holds."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["TrainingInterrupted", "deferred", "held", "plural"]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (KeyboardInterrupt) during `Network.SGD`, raised once the network holds a whole step.

    The network's parameters are exactly those after `rows_done` of the `rows` training rows of
    epoch `epoch` (0 ≤ rows_done ≤ rows; rows_done = 0 means the epoch had not taken a step);
    `history` holds the records of the completed epochs. It is a `KeyboardInterrupt`, so code that
    catches that still does. `diverged`: the epoch's steps had already made a parameter NaN or
    infinite, so the network was put back where the epoch began (rows_done = 0), as when an epoch
    diverges without an interrupt.
    """

    def __init__(
        self, epoch: int, rows_done: int, rows: int, history: Sequence[Any], diverged: bool = False
    ) -> None:
        note = "; it had diverged, so the network is back where the epoch began" if diverged else ""
        super().__init__(held(epoch, rows_done, rows) + note)
        self.epoch, self.rows_done, self.rows, self.history = epoch, rows_done, rows, list(history)
        self.diverged = diverged

    def __reduce__(self) -> tuple[Any, ...]:  # pickled whole, e.g. from a multiprocessing worker
        return type(self), (self.epoch, self.rows_done, self.rows, self.history, self.diverged)


def held(epoch: int, rows_done: int, rows: int) -> str:
    """In words, what a network stopped after `rows_done` of the `rows` rows of epoch `epoch` (of
    this call, counted from 0) holds: at an epoch's end, that epoch is whole too."""
    if rows_done >= rows:
        return (
            f"interrupted at the end of epoch {epoch}; the network holds {plural(epoch + 1, 'whole epoch')}"
        )
    whole = f"the network holds {plural(epoch, 'whole epoch')}"
    if rows_done == 0:
        return f"interrupted before epoch {epoch} took a step; {whole}"
    return f"interrupted in epoch {epoch}; {whole} and {rows_done} of the {rows} rows of epoch {epoch}"


def plural(n: int, thing: str) -> str:
    """ "1 epoch", "2 epochs"."""
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


class Interrupt:
    """A Ctrl-C noted during training, acted on at the next whole step (see `deferred`)."""

    def __init__(self) -> None:
        self.pending = False

    def check(self) -> None:
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[Interrupt]:
    """While training, a first Ctrl-C (SIGINT) is noted and raised as `KeyboardInterrupt` once the
    network holds a whole step (after the call of `run_steps` that is running); a second one is
    raised at once. Only in the main thread and only over Python's own handler: a program's own
    SIGINT handler, or training in another thread, is left alone.
    """
    interrupt = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield interrupt
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield interrupt
        return

    def note(signum: int, frame: Any) -> None:
        if interrupt.pending:
            raise KeyboardInterrupt
        interrupt.pending = True

    signal.signal(signal.SIGINT, note)
    try:
        yield interrupt
    finally:
        signal.signal(signal.SIGINT, previous)
