"""The seeded random streams of a network, drawn on the host.

Every random number bpgpu uses is drawn here, on the CPU: drawing on the host from a seeded
`numpy.random.Generator`, then moving the result to the device, makes the same seed give
bit-identical networks and the same shuffles on every backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class HostRandom:
    """Two independent streams from one seed: one for initial parameters, one for shuffling."""

    def __init__(self, seed: int | None) -> None:
        sequence = np.random.SeedSequence(seed)
        self.seed: int = int(sequence.entropy)  # the seed actually used, also when `seed` is None
        init, shuffle = sequence.spawn(2)
        self._init = np.random.default_rng(init)
        self._shuffle = np.random.default_rng(shuffle)

    def standard_normal(self, shape: tuple[int, ...], dtype: str, scale: float = 1.0) -> np.ndarray:
        """N(0, scale²) samples: drawn N(0, 1) in float64, multiplied by `scale`, then cast to `dtype`."""
        draws = self._init.standard_normal(shape)
        if scale != 1.0:
            draws *= scale  # in place: one float64 array per layer, never two
        return draws.astype(dtype, copy=False)

    def permutation(self, n: int) -> np.ndarray:
        """A random order of `range(n)` as int64 indices."""
        return self._shuffle.permutation(n).astype(np.int64)

    @property
    def shuffle_state(self) -> dict[str, Any]:
        """Where the shuffle stream stands: plain data (str/int/dict) that JSON can hold."""
        return self._shuffle.bit_generator.state

    @shuffle_state.setter
    def shuffle_state(self, state: dict[str, Any]) -> None:
        """Resume the shuffle stream from a `shuffle_state`; a malformed state raises `ValueError`."""
        self._shuffle = shuffle_generator(state)


def shuffle_generator(state: dict[str, Any]) -> np.random.Generator:
    """A generator standing where `state` (a `shuffle_state`) says; `ValueError` if it is malformed.
    A saved model's state is checked with it before any parameter is read."""
    generator = np.random.default_rng(0)
    try:
        generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise ValueError(
            f"not a valid shuffle state for {type(generator.bit_generator).__name__}: {exc}"
        ) from exc
    return generator
