"""bpgpu: Nielsen's backpropagation, written once against the array API, on CPU or CUDA GPU."""

__version__ = "0.1.0"  # first, so that modules below can import it

from .backends import BACKEND_NAMES, Backend, available_backends, get_backend
from .checkpoint import load
from .network import Network
from .training import EpochRecord

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "EpochRecord",
    "Network",
    "__version__",
    "available_backends",
    "get_backend",
    "load",
]
