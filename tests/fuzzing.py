"""What every fuzz test shares: bounded time and memory, and how many examples hypothesis draws.

`bounded(seconds=..., memory=...)` runs a block under a wall-clock alarm and measures what it
allocates (Python objects and NumPy buffers alike, through `tracemalloc`); over either limit the test
fails. A hard address-space limit well above `memory` (Linux) keeps a runaway allocation from taking
the machine with it; a block that hits it ends in `MemoryError`, which no fuzz test accepts.

Example counts are fixed and the draws derandomised, so `make test` runs the same examples every time
and its run time does not depend on luck. `BPGPU_FUZZ_SCALE=20 make test` multiplies every count and
draws fresh random examples: a longer fuzzing session, for looking rather than for CI.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tracemalloc
from collections.abc import Iterator

from hypothesis import HealthCheck, settings

MiB = 1 << 20
SCALE = int(os.environ.get("BPGPU_FUZZ_SCALE", "1") or "1")
HARD_LIMIT_SLACK = 1 << 30  # the address-space guard sits this far above the measured limit


class OutOfTime(BaseException):  # not an Exception: code under test must not swallow it
    """The block ran past its `bounded(seconds=...)`."""


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings for `examples` examples (times `BPGPU_FUZZ_SCALE`), with no timing checks."""
    return settings(
        max_examples=examples * SCALE,
        derandomize=SCALE == 1,
        deadline=None,  # no test may depend on the machine's speed
        database=None,  # nothing written into the checkout
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        print_blob=True,
    )


def edited(data: bytes, edit: tuple) -> bytes:
    """`data` with one edit: ("flip", at, mask), ("cut", at), ("insert", at, bytes), ("delete", at, n)
    or ("overwrite", at, bytes), `at` taken modulo the length."""
    kind, at, *more = edit
    if not data:
        return b"".join(part for part in more if isinstance(part, bytes))
    at %= len(data)
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ more[0]]) + data[at + 1 :]
    if kind == "cut":
        return data[:at]
    if kind == "insert":
        return data[:at] + more[0] + data[at:]
    if kind == "delete":
        return data[:at] + data[at + more[0] :]
    return data[:at] + more[0] + data[at + len(more[0]) :]


@contextlib.contextmanager
def bounded(seconds: float = 10.0, memory: int = 64 * MiB) -> Iterator[None]:
    """Fail unless the block ends within `seconds` and allocates at most `memory` bytes at its peak."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start, _ = tracemalloc.get_traced_memory()
    previous = signal.signal(signal.SIGALRM, _out_of_time)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with _address_space_guard(memory + HARD_LIMIT_SLACK):
            yield
    except OutOfTime as late:  # now a plain failure, which hypothesis can shrink and report
        raise AssertionError(f"the call ran past its {seconds} s (a hang?)") from late
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _, peak = tracemalloc.get_traced_memory()
        if not tracing:
            tracemalloc.stop()
    used = peak - start
    assert used <= memory, (
        f"the call allocated {used / MiB:.1f} MiB at its peak; the limit is {memory / MiB:.0f}"
    )


def _out_of_time(signum: int, frame: object) -> None:
    raise OutOfTime("the call ran past its time limit (a hang?)")


@contextlib.contextmanager
def _address_space_guard(extra: int) -> Iterator[None]:
    """RLIMIT_AS at the current address space + `extra` for the block (Linux only; elsewhere none)."""
    if not sys.platform.startswith("linux"):
        yield
        return
    import resource

    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = current + extra
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
