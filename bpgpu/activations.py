"""Activation functions σ, each written next to its derivative σ'.

Every function takes the array-API namespace `xp` as its last argument and calls only `xp.*`.
`prime(z, a, xp)` is σ'(z); it also receives a = σ(z), which the forward pass has already computed,
so a derivative that is cheaper to express through the output uses it (σ' = a(1 − a) for the sigmoid).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Array = Any


@dataclass(frozen=True)
class Activation:
    """An activation function σ and its derivative σ', both elementwise."""

    name: str
    fn: Callable[[Array, Any], Array]
    prime: Callable[[Array, Array, Any], Array]


def sigmoid(z: Array, xp: Any) -> Array:
    """σ(z) = 1 / (1 + e^(−z)), computed from e^(−|z|) so that no exponential overflows."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_prime(z: Array, a: Array, xp: Any) -> Array:
    """σ'(z) = σ(z)(1 − σ(z)) = a(1 − a)."""
    return a * (1.0 - a)


def tanh(z: Array, xp: Any) -> Array:
    """tanh(z)."""
    return xp.tanh(z)


def tanh_prime(z: Array, a: Array, xp: Any) -> Array:
    """tanh'(z) = 1 − tanh²(z) = 1 − a²."""
    return 1.0 - a * a


def relu(z: Array, xp: Any) -> Array:
    """max(z, 0)."""
    return xp.maximum(z, 0.0)


def relu_prime(z: Array, a: Array, xp: Any) -> Array:
    """1 where z > 0, else 0 (the derivative at z = 0 is taken as 0)."""
    return xp.astype(z > 0, z.dtype)


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_prime),
    "tanh": Activation("tanh", tanh, tanh_prime),
    "relu": Activation("relu", relu, relu_prime),
}
