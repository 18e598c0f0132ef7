"""Which GPU route trains fastest, from what was measured on a real GPU, said where users look.

`auto` keeps CuPy on a CUDA GPU (the design: NumPy's code on the GPU). When PyTorch is installed
too, `auto`'s log line and `bpgpu info` name the faster route with the figures it was measured by,
so that nobody has to find them in the docs. Nothing here changes a choice.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping

MEASURED = (
    "measured on an NVIDIA H200 with bpgpu 58c7b93, before torch's CUDA graphs, steady epochs: "
    "batch 10, torch 3.10 s and CuPy unfinished; batch 128, torch 0.32 s and CuPy 0.48 s; "
    "batch 4096, torch 2.09 s and CuPy 2.17 s (docs/performance.md)"
)


def faster_route(chosen: str, torch_on_gpu: bool) -> str | None:
    """The line to show when `auto` chose `chosen` and PyTorch can use the GPU, or None.

    PyTorch replays each mini-batch's step as one CUDA graph; CuPy cannot capture its matrix
    products (cuBLAS refuses CuPy's stream capture, cupy/cupy#6290), so at small mini-batches it
    pays about 30 kernel launches a step.
    """
    if chosen != "cupy" or not torch_on_gpu:
        return None
    return (
        "--backend torch trains faster here than CuPy, auto's choice, most at small mini-batches, "
        "where CuPy is bound by kernel launches and torch replays each step as one CUDA graph; " + MEASURED
    )


def faster_route_among(chosen: str, devices: Mapping[str, str]) -> str | None:
    """`faster_route` given the device of every backend that works here (`bpgpu info` has them)."""
    return faster_route(chosen, devices.get("torch", "").startswith("cuda"))


def torch_installed() -> bool:
    """Whether PyTorch can be imported, without importing it (seconds, on a GPU machine)."""
    return importlib.util.find_spec("torch") is not None
