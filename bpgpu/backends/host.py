"""What every backend asks of the host: how much memory it has, and NumPy arithmetic that
overflows quietly (bpgpu detects the inf and NaN itself). The random streams are in
`host_random.py`."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np


def host_memory_bytes() -> int | None:
    """The host's physical memory, or the process's address-space limit when that is lower; None
    where neither can be read."""
    limits = []
    with contextlib.suppress(AttributeError, ValueError, OSError):  # sysconf: POSIX only
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    with contextlib.suppress(ImportError, AttributeError, ValueError, OSError):  # resource: POSIX only
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            limits.append(soft)
    return min(limits, default=None)


def quiet_floating_point() -> Any:
    """A context in which NumPy computes overflow, 0/0 and the like without warning (its results
    are inf and NaN, which bpgpu detects); for the backends whose arrays NumPy computes."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")
