"""Shared fixtures: one `backend` fixture over every backend bpgpu knows.

A backend that cannot run here (CuPy without a CUDA device, PyTorch not installed) is skipped with
the reason `get_backend` gives, so the skip says exactly what is missing. The run ends with one
line per reason and its count instead of pytest's line per skipped test (`-ra`), and one line for
everything PyTorch would run, with the command that installs its CPU build.
"""

from __future__ import annotations

import collections
import importlib.util

import numpy as np
import pytest

import bpgpu

# Relative tolerances for comparing two backends, or two formulations of the same arithmetic.
RTOL = {"float64": 1e-10, "float32": 1e-5}


@pytest.fixture(params=bpgpu.BACKEND_NAMES)
def backend(request: pytest.FixtureRequest) -> bpgpu.Backend:
    try:
        return bpgpu.get_backend(request.param)
    except RuntimeError as exc:
        pytest.skip(str(exc))


def host(net: bpgpu.Network, arrays: list) -> list[np.ndarray]:
    """The arrays of `net`'s backend as host numpy arrays."""
    return [net.backend.to_numpy(a) for a in arrays]


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype: str, scale: float | None = None) -> None:
    """Compare host arrays: same shape, values within the dtype's relative tolerance.

    Entries near zero are compared against `scale` (default: the largest |expected|), since a
    relative error means nothing for a value that is itself rounding noise.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != expected {expected.shape}"
    rtol = RTOL[dtype]
    scale = float(np.max(np.abs(expected))) if scale is None else scale
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def params(net: bpgpu.Network) -> list[np.ndarray]:
    """Every parameter of `net` on the host, weights then biases."""
    return host(net, net.weights) + host(net, net.biases)


TORCH_CPU = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Skipped tests, one line per reason (under pytest-xdist too: the reports reach this process)."""
    reasons: collections.Counter[str] = collections.Counter()
    torch_missing = importlib.util.find_spec("torch") is None
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        if torch_missing and ("torch" in reason.lower()):
            reason = f"PyTorch is not installed; to run these too: .venv/bin/{TORCH_CPU}"
        reasons[reason] += 1
    if reasons:
        terminalreporter.write_sep("-", f"{sum(reasons.values())} skipped, by reason")
        for reason, count in reasons.most_common():
            terminalreporter.write_line(f"{count:5} {reason}")
