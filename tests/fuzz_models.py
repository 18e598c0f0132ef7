"""What the fuzz tests of saved models share (tests/test_fuzz_checkpoint.py for `.npz` files,
tests/test_fuzz_safetensors.py for safetensors ones): the good files they start from, loading a
damaged one under bounds, and byte edits."""

from __future__ import annotations

import functools
import os
import tempfile

import numpy as np
from fuzzing import MiB, bounded
from hypothesis import strategies as st

import bpgpu

BASES = (  # small networks of both dtypes, different depths and settings
    {"sizes": [3, 4, 2], "dtype": "float32", "seed": 1},
    {"sizes": [2, 3], "dtype": "float64", "seed": 2, "activation": "tanh", "init": "scaled"},
)


@functools.cache
def base(index: int, name: str = "model.npz") -> tuple[bpgpu.Network, bytes]:
    """A good model file, as bytes, and the network it holds."""
    net = bpgpu.Network(backend="numpy", **BASES[index])
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, name)
        net.save(path)
        with open(path, "rb") as file:
            return net, file.read()


def attempt(data: bytes, name: str = "model.npz") -> bpgpu.Network | None:
    """Load `data` from a fresh file: the network, or None when refused as the contract says."""
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, name)
        with open(path, "wb") as file:
            file.write(data)
        error = None
        with bounded(seconds=10, memory=64 * MiB):  # also for the refusals: none may run away
            try:
                net = bpgpu.load(path, backend="numpy")
            except ValueError as exc:
                error = exc
    if error is not None:
        assert str(error).startswith(f"{path}: "), f"the message does not start with the file: {error}"
        return None
    for l, (w, b) in enumerate(zip(net.weights, net.biases, strict=True)):
        assert w.shape == (net.sizes[l + 1], net.sizes[l]) and b.shape == (net.sizes[l + 1],)
        assert w.dtype == b.dtype == np.dtype(net.dtype)
        assert np.all(np.isfinite(w)) and np.all(np.isfinite(b))
    return net


def same(loaded: bpgpu.Network, original: bpgpu.Network) -> bool:
    arrays = zip([*loaded.weights, *loaded.biases], [*original.weights, *original.biases], strict=True)
    return loaded.sizes == original.sizes and all(np.array_equal(a, b) for a, b in arrays)


edits = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 16)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=9)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 40)),
    st.tuples(st.just("overwrite"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=9)),
)
