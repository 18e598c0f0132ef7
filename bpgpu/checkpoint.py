"""Saving a `Network` to one file and loading it back, on any backend, without running code.

The file is a NumPy `.npz` archive (a zip of `.npy` arrays) written with `numpy.savez`:

- `metadata`: UTF-8 JSON as a uint8 array: `{"format": "bpgpu-network", "version": 1, ...}` with
  the sizes, activation names, cost, dtype, seed, the shuffle stream's state and the bpgpu version;
- `weight_0` ... `weight_{L-2}` (sizes[l+1], sizes[l]) and `bias_0` ... (sizes[l+1],), in `dtype`.

Saving is atomic (a temporary file renamed over the target). Loading uses `allow_pickle=False`, so
nothing in the file can execute, and checks every entry: a truncated, corrupt, foreign or newer file
raises `ValueError` naming the file and the problem.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from ._files import atomic_write

if TYPE_CHECKING:
    from .backends import Backend
    from .network import Network

FORMAT = "bpgpu-network"
VERSION = 1
_METADATA_FIELDS = ("sizes", "activation", "output_activation", "cost", "dtype", "seed", "shuffle_state")


def save(net: Network, path: str | os.PathLike[str]) -> None:
    """Write `net` to `path` (exactly that name; no suffix is added), atomically."""
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "bpgpu_version": __version__,
        "sizes": net.sizes,
        "activation": net.activation,
        "output_activation": net.output_activation,
        "cost": net.cost_name,
        "dtype": net.dtype,
        "seed": net.seed,
        "shuffle_state": net._random.shuffle_state,
    }
    arrays = {"metadata": np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8)}
    for l, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        arrays[f"weight_{l}"] = net.backend.to_numpy(w)
        arrays[f"bias_{l}"] = net.backend.to_numpy(b)
    with atomic_write(path) as file:
        np.savez(file, **arrays)


def load(path: str | os.PathLike[str], backend: str | Backend | None = None) -> Network:
    """The network saved at `path`, on `backend` (default: `BPGPU_BACKEND`, else "auto").

    Outputs equal those of the saved network on every backend (the parameters are the saved bits).
    Training can continue where it stopped: the shuffle stream resumes from its saved state.

    Raises:
        FileNotFoundError: nothing at `path`.
        ValueError: the file is not a bpgpu model, is damaged, or comes from a newer bpgpu.
    """
    from .network import Network  # network imports this module for `Network.save`

    name = os.fspath(path)
    entries = _read_entries(name)
    metadata = _metadata(name, entries)
    try:
        net = Network(
            metadata["sizes"],
            activation=metadata["activation"],
            output_activation=metadata["output_activation"],
            cost=metadata["cost"],
            dtype=metadata["dtype"],
            seed=metadata["seed"],
            backend=backend,
        )
        net._random.shuffle_state = metadata["shuffle_state"]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: invalid model settings: {exc}") from exc
    expected = {"metadata"}
    weights, biases = [], []
    for l, (n_in, n_out) in enumerate(zip(net.sizes[:-1], net.sizes[1:], strict=True)):
        weights.append(_parameter(name, entries, f"weight_{l}", (n_out, n_in), net.dtype))
        biases.append(_parameter(name, entries, f"bias_{l}", (n_out,), net.dtype))
        expected |= {f"weight_{l}", f"bias_{l}"}
    if set(entries) != expected:
        raise ValueError(f"{name}: unexpected entries {sorted(set(entries) - expected)} in a bpgpu model")
    with net.backend.activate():
        net.weights = [net.backend.asarray(w) for w in weights]
        net.biases = [net.backend.asarray(b) for b in biases]
    return net


def _read_entries(name: str) -> dict[str, np.ndarray]:
    """Every array in the archive, read fully now so that damage shows here, not later."""
    if os.path.isdir(name):
        raise ValueError(f"{name}: is a directory, not a bpgpu model file")
    if not os.path.exists(name):
        raise FileNotFoundError(f"{name}: no such model file")
    if not zipfile.is_zipfile(name):
        raise ValueError(f"{name}: not a bpgpu model file (not an .npz archive)")
    try:
        with np.load(name, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, RuntimeError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f"{name}: damaged bpgpu model file ({type(exc).__name__}: {exc})") from exc


def _metadata(name: str, entries: dict[str, np.ndarray]) -> dict[str, Any]:
    raw = entries.get("metadata")
    if raw is None:
        raise ValueError(f"{name}: not a bpgpu model file (no 'metadata' entry; has {sorted(entries)})")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ValueError(f"{name}: 'metadata' should be uint8 bytes (1-d), got {raw.dtype} {raw.shape}")
    try:
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{name}: 'metadata' is not valid JSON ({exc})") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise ValueError(f"{name}: not a bpgpu model file (format {found!r}, expected {FORMAT!r})")
    version = metadata.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{name}: invalid format version {version!r}")
    if version > VERSION:
        raise ValueError(
            f"{name}: written in model format version {version} by bpgpu "
            f"{metadata.get('bpgpu_version', '?')}; this bpgpu ({__version__}) reads version "
            f"{VERSION} or older: upgrade bpgpu to load it"
        )
    missing = [field for field in _METADATA_FIELDS if field not in metadata]
    if missing:
        raise ValueError(f"{name}: model metadata lacks {missing}")
    return metadata


def _parameter(
    name: str, entries: dict[str, np.ndarray], key: str, shape: tuple[int, ...], dtype: str
) -> np.ndarray:
    array = entries.get(key)
    if array is None:
        raise ValueError(f"{name}: entry {key!r} is missing")
    if array.shape != shape or array.dtype != np.dtype(dtype):
        raise ValueError(f"{name}: entry {key!r} should be {dtype} {shape}, got {array.dtype} {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: entry {key!r} holds NaN or infinite values")
    return array
