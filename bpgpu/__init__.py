"""bpgpu: Nielsen's backpropagation, written once against the array API, on CPU or CUDA GPU."""

from .backends import BACKEND_NAMES, Backend, available_backends, get_backend
from .network import EpochRecord, Network

__version__ = "0.1.0"

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "EpochRecord",
    "Network",
    "__version__",
    "available_backends",
    "get_backend",
]
