"""bpgpu: Nielsen's backpropagation, written once against the array API, on CPU or CUDA GPU."""

from . import datasets, distributed, plots  # `bpgpu.plots.plot_history(...)` works after `import bpgpu`
from ._version import __version__
from .backends import BACKEND_NAMES, Backend, available_backends, get_backend
from .network import Network, load
from .training import EpochRecord, TrainingDivergedError, TrainingInterrupted

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "EpochRecord",
    "Network",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "__version__",
    "available_backends",
    "datasets",
    "distributed",
    "get_backend",
    "load",
    "plots",
]
