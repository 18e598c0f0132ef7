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

import itertools
import json
import math
import os
import zipfile
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import __version__
from . import _validation as check
from ._files import atomic_write
from .backends import get_backend

if TYPE_CHECKING:
    from .backends import Backend
    from .network import Network

FORMAT = "bpgpu-network"
VERSION = 1
_METADATA_FIELDS = (
    "sizes",
    "activation",
    "output_activation",
    "cost",
    "init",
    "dtype",
    "seed",
    "shuffle_state",
)
METADATA_LIMIT = 1 << 20  # bytes; the metadata of any real model is far smaller


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
        "init": net.init,
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
    target = get_backend(backend)  # a bad backend is the caller's mistake, not the file's
    with _open(name) as archive:
        members = {info.filename: info for info in archive.infolist()}
        if "metadata.npy" not in members:
            raise ValueError(f"{name}: not a bpgpu model file (no 'metadata' entry; has {sorted(members)})")
        raw = _read(name, archive, members["metadata.npy"], _metadata_header)
        metadata = _metadata(name, raw)
        try:
            sizes = check.layer_sizes(metadata["sizes"])
            dtype = check.dtype_name(metadata["dtype"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: invalid model settings: {exc}") from exc
        shapes = {}
        for l, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            shapes[f"weight_{l}"], shapes[f"bias_{l}"] = (n_out, n_in), (n_out,)
        found, expected = {m.removesuffix(".npy") for m in members}, {*shapes, "metadata"}
        if found != expected:
            missing, extra = sorted(expected - found), sorted(found - expected)
            raise ValueError(
                f"{name}: entries do not match sizes {sizes}: missing {missing}, unexpected {extra}"
            )
        arrays = {
            key: _read(name, archive, members[f"{key}.npy"], _parameter_header(shape, dtype))
            for key, shape in shapes.items()
        }
    for key, array in arrays.items():
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name}: entry {key!r} holds NaN or infinite values")
    try:
        net = Network(
            sizes,
            activation=metadata["activation"],
            output_activation=metadata["output_activation"],
            cost=metadata["cost"],
            init=metadata["init"],
            dtype=dtype,
            seed=metadata["seed"],
            backend=target,
        )
        net._random.shuffle_state = metadata["shuffle_state"]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: invalid model settings: {exc}") from exc
    with net.backend.activate():
        net.weights = [net.backend.asarray(arrays[f"weight_{l}"]) for l in range(len(sizes) - 1)]
        net.biases = [net.backend.asarray(arrays[f"bias_{l}"]) for l in range(len(sizes) - 1)]
    return net


def _open(name: str) -> zipfile.ZipFile:
    if os.path.isdir(name):
        raise ValueError(f"{name}: is a directory, not a bpgpu model file")
    if not os.path.exists(name):
        raise FileNotFoundError(f"{name}: no such model file")
    try:
        return zipfile.ZipFile(name)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{name}: not a bpgpu model file (not an .npz archive: {exc})") from exc


def _read(
    name: str,
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    expect: Callable[[tuple[int, ...], np.dtype], str | None],
) -> np.ndarray:
    """One `.npy` member, after its header has been checked: nothing unexpected is ever allocated.

    `expect(shape, dtype)` returns what is wrong with the header, or None. Only stored (uncompressed)
    members are read, as `save` writes them, so the bytes on disk bound what a member can hold.
    """
    key = info.filename.removesuffix(".npy")
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{name}: entry {key!r} is compressed; bpgpu models are stored uncompressed")
    try:
        with archive.open(info) as file:
            version = np.lib.format.read_magic(file)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(file)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(file)
            else:
                raise ValueError(f".npy format version {version}")
            problem = expect(shape, dtype) or _too_short(shape, dtype, info.file_size - file.tell())
        if problem is None:
            with archive.open(info) as file:
                return np.lib.format.read_array(file, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(
            f"{name}: damaged bpgpu model file, entry {key!r} ({type(exc).__name__}: {exc})"
        ) from exc
    raise ValueError(f"{name}: entry {key!r} {problem}")


def _too_short(shape: tuple[int, ...], dtype: np.dtype, available: int) -> str | None:
    needed = math.prod(shape) * dtype.itemsize
    return None if needed <= available else f"is truncated: needs {needed} bytes, holds {available}"


def _metadata_header(shape: tuple[int, ...], dtype: np.dtype) -> str | None:
    if dtype != np.uint8 or len(shape) != 1:
        return f"should be uint8 bytes (1-d), got {dtype} {shape}"
    if shape[0] > METADATA_LIMIT:
        return f"is {shape[0]} bytes, more than metadata ever needs ({METADATA_LIMIT})"
    return None


def _parameter_header(
    shape: tuple[int, ...], dtype: str
) -> Callable[[tuple[int, ...], np.dtype], str | None]:
    def expect(found_shape: tuple[int, ...], found_dtype: np.dtype) -> str | None:
        if found_shape != shape or found_dtype != np.dtype(dtype):
            return f"should be {dtype} {shape}, got {found_dtype} {found_shape}"
        return None

    return expect


def _metadata(name: str, raw: np.ndarray) -> dict[str, Any]:
    try:
        metadata = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{name}: 'metadata' is not valid JSON ({type(exc).__name__}: {exc})") from exc
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
