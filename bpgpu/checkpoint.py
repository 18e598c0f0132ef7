"""A network's settings and parameters in one file and back, without running code (host side only;
`Network.save` and `bpgpu.load` build on `save` and `read`). Two formats, chosen by the file name
when saving and by the file's first bytes when reading:

**safetensors** (a name ending in `.safetensors`): the ecosystem's format for weights, laid out as
PyTorch's `nn.Linear` keeps them, so the file loads into PyTorch (`safetensors.torch.load_file`),
JAX or Hugging Face tools as it is:

- `layers.{l}.weight` (sizes[l+1], sizes[l]) and `layers.{l}.bias` (sizes[l+1],), in `dtype`
  ("F32" or "F64"), for l = 0 ... L-2: the state dict of a module whose `layers` is a
  `ModuleList` of `nn.Linear` (an `nn.Sequential(Linear, activation, Linear, ...)` numbers them
  0, 2, 4, ...: map `layers.{l}` to `{2 l}`);
- the metadata's `"bpgpu"` entry: the same JSON as the `.npz` format's `metadata` below. A file
  without it (a state dict saved from PyTorch, say) loads with the sizes and dtype its tensors
  show and the other settings given to `bpgpu.load`.

**.npz** (any other name; the format of earlier bpgpu versions): a NumPy archive (a zip of stored
`.npy` arrays) written with `numpy.savez`:

- `metadata`: UTF-8 JSON as a uint8 array: `{"format": "bpgpu-network", "version": 1, ...}` with
  the sizes, activation names, cost, dtype, seed, the shuffle stream's state and the bpgpu version;
- `weight_0` ... `weight_{L-2}` (sizes[l+1], sizes[l]) and `bias_0` ... (sizes[l+1],), in `dtype`.

Saving is atomic (a temporary file renamed over the target). Loading runs no code from the file (no
pickles) and trusts nothing it declares (`bpgpu.io.npz` reads the zip and `.npy` layers,
`bpgpu.io.safetensors_file` the safetensors header before the `safetensors` package parses the
tensors): only regular files are opened, every entry and setting is checked before any tensor is
built, and a truncated, corrupt, forged, foreign or newer file raises `ValueError` naming the file
and the problem, in time and memory bounded by the file's size (a safetensors file is read whole:
at most twice its size in memory); a good file loads with exactly the saved bits.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _validation as check
from ._messages import refuse_constant, show
from ._version import __version__
from .backends.host_random import shuffle_generator
from .io import npz
from .io import safetensors_file as st
from .io.files import atomic_write, open_regular
from .io.streams import head
from .options import INITS, Layers

FORMAT = "bpgpu-network"
VERSION = 1
SETTINGS = (
    "sizes",
    "activation",
    "output_activation",
    "cost",
    "init",
    "dtype",
    "seed",
    "shuffle_state",
)
OPTIONAL_SETTINGS = ("data",)
FOREIGN_SETTINGS = ("activation", "output_activation", "cost", "init", "seed")  # what `given` may set
FOREIGN_DEFAULTS = {
    "activation": "sigmoid",
    "output_activation": None,
    "cost": "quadratic",
    "init": "normal",
    "seed": None,
}  # written when set: the data a model was trained on (`Network.trained_on`)
METADATA_LIMIT = 1 << 20  # bytes; the metadata of any real model is far smaller
METADATA_DEPTH = 8  # nesting of JSON lists and objects; the shuffle state needs 3
INT_DIGITS = 64  # the longest integer in the metadata (the shuffle state's 128-bit ones have 39)
# What invalid settings raise in `Network` and in numpy's bit generator, besides ValueError.
_SETTINGS_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError)


def save(
    path: str | os.PathLike[str],
    settings: dict[str, Any],
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
) -> None:
    """Write a network's `settings` (every field of `SETTINGS`) and host parameters to `path`
    (exactly that name; no suffix is added), atomically: safetensors when the name ends in
    `.safetensors`, else `.npz` (see the module docstring).

    Raises `ValueError`, writing nothing, when a parameter is NaN or infinite (a model `read` would
    refuse) or when `path` is not a file that can be written (see `bpgpu.io.files.check_writable`).
    """
    metadata = {"format": FORMAT, "version": VERSION, "bpgpu_version": __version__}
    metadata.update((field, settings[field]) for field in SETTINGS)
    metadata.update((f, settings[f]) for f in OPTIONAL_SETTINGS if settings.get(f) is not None)
    for kind, arrays in (("weight", weights), ("bias", biases)):  # `read` would refuse such a file
        for l, array in enumerate(arrays):
            if not np.all(np.isfinite(array)):
                raise ValueError(
                    f"refusing to save to {os.fspath(path)}: {kind}_{l} holds NaN or infinite values"
                )
    text = json.dumps(metadata)
    if st.is_safetensors_name(path):
        tensors = {}
        for l, (w, b) in enumerate(zip(weights, biases, strict=True)):
            tensors[f"layers.{l}.weight"], tensors[f"layers.{l}.bias"] = w, b
        data = st.encode(tensors, {"bpgpu": text})
        with atomic_write(path) as file:
            file.write(data)
        return
    arrays = {"metadata": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    for l, (w, b) in enumerate(zip(weights, biases, strict=True)):
        arrays[f"weight_{l}"], arrays[f"bias_{l}"] = w, b
    with atomic_write(path) as file:
        np.savez(file, **arrays)


@dataclass(frozen=True)
class Saved:
    """A model file's content, checked: its layer sizes and dtype, its settings (every field of
    `SETTINGS` but those two, and of `OPTIONAL_SETTINGS`, valid for `Network`; a foreign file's come
    from the caller, and its `shuffle_state` is None), whether they are bpgpu's own, and the
    parameters as host arrays with exactly the saved bits."""

    sizes: list[int]
    dtype: str
    settings: dict[str, Any]
    native: bool
    weights: list[np.ndarray]
    biases: list[np.ndarray]


def read(path: str | os.PathLike[str], given: dict[str, Any] | None = None) -> Saved:
    """The model saved at `path`, every setting checked before any parameter is read.

    `given`: settings for a safetensors file without bpgpu's metadata (any of `FOREIGN_SETTINGS`;
    the others take `FOREIGN_DEFAULTS`); None refuses such a file. A file with bpgpu's metadata has
    its own settings: `given` non-empty for one is a `ValueError`.

    Raises:
        FileNotFoundError: nothing at `path`.
        ValueError: the file is not a bpgpu model, is damaged, or comes from a newer bpgpu (the
            message starts with the file's name); also a FIFO, a device or a directory.
    """
    name = os.fspath(path)
    try:
        file = open_regular(name, "a bpgpu model file")
    except FileNotFoundError:
        raise FileNotFoundError(f"{name}: no such model file") from None
    with file:
        start = head(file, 9)
        # A zip starts "PK\x03\x04" (or "PK\x05\x06" when empty), and its 9th byte is never "{", but a
        # safetensors header of 0x4B50 + k·65536 bytes also starts "PK": look at byte 8 first.
        is_zip = start[:4] in (b"PK\x03\x04", b"PK\x05\x06")
        if st.looks_like_safetensors(start) or (not is_zip and st.is_safetensors_name(name)):
            return _read_safetensors(name, st.read_all(name, file), given)
    return _read_npz(name, given)


def _read_npz(name: str, given: dict[str, Any] | None) -> Saved:
    with npz.open_archive(name) as archive:
        members = npz.entries(archive)
        if "metadata" not in members:
            raise ValueError(f"{name}: not a bpgpu model file (no 'metadata' entry; has {_keys(members)})")
        metadata = _metadata(name, npz.read_array(archive, members["metadata"], _metadata_header).tobytes())
        try:
            sizes = check.layer_sizes(metadata["sizes"])
            dtype = check.dtype_name(metadata["dtype"])
        except _SETTINGS_ERRORS as exc:
            raise ValueError(f"{name}: invalid model settings: {exc}") from exc
        if len(sizes) > len(members):  # so that listing the entries it needs costs little
            raise ValueError(
                f"{name}: entries do not match sizes {show(sizes)}: those need "
                f"{2 * len(sizes) - 1} entries, the file has {len(members)}"
            )
        shapes = {}
        for l, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            shapes[f"weight_{l}"], shapes[f"bias_{l}"] = (n_out, n_in), (n_out,)
        missing, extra = shapes.keys() - members.keys(), members.keys() - {*shapes, "metadata"}
        if missing or extra:
            raise ValueError(
                f"{name}: entries do not match sizes {show(sizes)}: "
                f"missing {_keys(missing)}, unexpected {_keys(extra)}"
            )
        settings = _checked_settings(name, metadata, True, given)  # before any array is read
        arrays = {
            key: npz.read_array(archive, members[key], _parameter_header(shape, dtype))
            for key, shape in shapes.items()
        }
    for key, array in arrays.items():
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name}: entry {key!r} holds NaN or infinite values")
    layers = range(len(sizes) - 1)
    weights, biases = [arrays[f"weight_{l}"] for l in layers], [arrays[f"bias_{l}"] for l in layers]
    return Saved(sizes, dtype, settings, True, weights, biases)


def _read_safetensors(name: str, data: bytes, given: dict[str, Any] | None) -> Saved:
    header = st.header(name, data, _int, _too_deep)
    extra = header.pop("__metadata__", None) or {}
    native = "bpgpu" in extra
    if native:
        text = extra["bpgpu"]
        if len(text) > METADATA_LIMIT:
            raise ValueError(
                f"{name}: 'bpgpu' metadata is {len(text)} characters, more than metadata ever needs"
            )
        metadata = _metadata(name, text.encode("utf-8"))
    elif given is None:
        raise ValueError(f"{name}: a safetensors file without bpgpu's metadata; has {_keys(header)}")
    else:
        metadata = {**FOREIGN_DEFAULTS, **given, **_shape_of_layers(name, header)}
    try:
        sizes = check.layer_sizes(metadata["sizes"])
        dtype = check.dtype_name(metadata["dtype"])
    except _SETTINGS_ERRORS as exc:
        raise ValueError(f"{name}: invalid model settings: {exc}") from exc
    code = next(code for code, kind in st.DTYPES.items() if kind == np.dtype(dtype))
    shapes = {}
    for l, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        shapes[f"layers.{l}.weight"], shapes[f"layers.{l}.bias"] = [n_out, n_in], [n_out]
    missing, unexpected = shapes.keys() - header.keys(), header.keys() - shapes.keys()
    if missing or unexpected:
        raise ValueError(
            f"{name}: tensors do not match sizes {show(sizes)}: "
            f"missing {_keys(missing)}, unexpected {_keys(unexpected)}"
        )
    for key, shape in shapes.items():
        entry = header[key]
        if entry["shape"] != shape or entry["dtype"] != code:
            raise ValueError(
                f"{name}: tensor {key!r} should be {code} {shape}, got "
                f"{entry['dtype'][:12]} {show(entry['shape'], 40)}"
            )
    settings = _checked_settings(name, metadata, native, given)  # before any tensor is built
    arrays = st.tensors(name, data)
    for key, shape in shapes.items():
        array = arrays.get(key)
        if array is None or list(array.shape) != shape or array.dtype != np.dtype(dtype):
            raise ValueError(f"{name}: tensor {key!r} did not parse as {dtype} {shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name}: tensor {key!r} holds NaN or infinite values")
    layers = range(len(sizes) - 1)
    weights = [arrays[f"layers.{l}.weight"] for l in layers]
    return Saved(sizes, dtype, settings, native, weights, [arrays[f"layers.{l}.bias"] for l in layers])


def _shape_of_layers(name: str, header: dict[str, Any]) -> dict[str, Any]:
    """`sizes` and `dtype` read off the tensors of a file without bpgpu's metadata: `layers.{l}.weight`
    (n_out, n_in) for l = 0, 1, ..., each layer's n_in the one before's n_out, all of one dtype."""
    weights = []
    while f"layers.{len(weights)}.weight" in header:
        weights.append(header[f"layers.{len(weights)}.weight"])
    if not weights:
        raise ValueError(f"{name}: no tensor 'layers.0.weight' (has {_keys(header)}); see bpgpu.checkpoint")
    sizes = []
    for l, entry in enumerate(weights):
        shape = entry["shape"]
        if len(shape) != 2 or (sizes and shape[1] != sizes[-1]):
            expected = f"({'n_out'}, {sizes[-1] if sizes else 'n_in'})"
            raise ValueError(
                f"{name}: tensor 'layers.{l}.weight' should be {expected}, got {show(shape, 40)}"
            )
        sizes = [*sizes, shape[0]] if sizes else [shape[1], shape[0]]
    codes = {entry["dtype"] for entry in header.values()}
    if len(codes) != 1 or next(iter(codes)) not in st.DTYPES:
        raise ValueError(f"{name}: tensors must all be F32 or all F64; got {show(sorted(codes), 40)}")
    return {"sizes": sizes, "dtype": str(st.DTYPES[next(iter(codes))])}


def _keys(keys: Any, limit: int = 8) -> str:
    """Sorted entry names for a message: the first `limit` of them, and how many there are."""
    names = sorted(keys)
    listed = ", ".join(show(key, 40) for key in names[:limit])
    return f"[{listed}]" if len(names) <= limit else f"[{listed}, ... ({len(names)} in all)]"


def _metadata_header(header: npz.Header) -> str | None:
    if header.dtype != np.uint8 or len(header.shape) != 1:
        return f"should be uint8 bytes (1-d), got {header.dtype} {header.shape}"
    if header.shape[0] > METADATA_LIMIT:
        return f"is {header.shape[0]} bytes, more than metadata ever needs ({METADATA_LIMIT})"
    return None


def _parameter_header(shape: tuple[int, ...], dtype: str) -> Callable[[npz.Header], str | None]:
    def expect(header: npz.Header) -> str | None:
        if header.shape != shape or header.dtype != np.dtype(dtype):
            return f"should be {dtype} {shape}, got {header.dtype} {header.shape}"
        return None

    return expect


def _metadata(name: str, raw: bytes) -> dict[str, Any]:
    """The metadata's JSON, with its format and version checked and every field present."""
    try:  # JSONDecodeError and UnicodeDecodeError are ValueErrors, as is what _int raises
        metadata = json.loads(raw.decode("utf-8"), parse_int=_int, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"{name}: 'metadata' is not valid JSON ({type(exc).__name__}: {exc})") from exc
    if _too_deep(metadata):
        raise ValueError(f"{name}: 'metadata' nests lists or objects more than {METADATA_DEPTH} deep")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise ValueError(f"{name}: not a bpgpu model file (format {show(found)}, expected {FORMAT!r})")
    version = metadata.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"{name}: invalid format version {show(version)}")
    if version > VERSION:
        raise ValueError(
            f"{name}: written in model format version {version} by bpgpu "
            f"{str(metadata.get('bpgpu_version', '?'))[:40]}; this bpgpu ({__version__}) reads version "
            f"{VERSION} or older: upgrade bpgpu to load it"
        )
    missing = [field for field in SETTINGS if field not in metadata]
    if missing:
        raise ValueError(f"{name}: model metadata lacks {missing}")
    return metadata


def _checked_settings(
    name: str, metadata: dict[str, Any], native: bool, given: dict[str, Any] | None
) -> dict[str, Any]:
    """The settings `Network` is built with, from a file's metadata, each checked by the rule that
    owns it (`bpgpu.options`, `_validation`, the host stream's state); a bad one is a `ValueError`
    naming the file."""
    try:
        if native and given:
            raise ValueError(
                f"it is a bpgpu model with its own settings; {', '.join(sorted(given))} "
                f"{'applies' if len(given) == 1 else 'apply'} only to safetensors files "
                "without bpgpu's metadata"
            )
        layers = Layers(metadata["activation"], metadata["output_activation"], metadata["cost"])
        settings = {
            "activation": layers.activation,
            "output_activation": layers.output_activation,
            "cost": layers.cost,
            "init": check.choice(metadata["init"], "init", INITS),
            "seed": check.seed(metadata["seed"]),
            "shuffle_state": None,
        }
        if native:
            shuffle_generator(metadata["shuffle_state"])  # a malformed state raises
            settings["shuffle_state"] = metadata["shuffle_state"]
        data = metadata.get("data")
        if data is not None and (not isinstance(data, str) or not 0 < len(data) <= 4096):
            raise ValueError(f"'data' must be the name of a data set; got {show(data)}")
        settings["data"] = data
    except _SETTINGS_ERRORS as exc:
        raise ValueError(f"{name}: invalid model settings: {exc}") from exc
    return settings


def _int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > INT_DIGITS:
        raise ValueError(f"an integer of {digits} digits, longer than any setting ({INT_DIGITS})")
    return int(text)


def _too_deep(value: Any) -> bool:
    """Whether `value` nests lists and dicts more than METADATA_DEPTH deep (walked without recursion)."""
    stack = [(value, 1)] if isinstance(value, (list, dict)) else []  # containers only: scalars cost nothing
    while stack:
        item, depth = stack.pop()
        if depth > METADATA_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, (list, dict)))
    return False
