"""Activation functions σ, each written next to its derivative σ'.

Every function takes the array-API namespace `xp` as its last argument and calls only `xp.*`.
`prime(z, a, xp)` is σ'(z); it also receives a = σ(z), which the forward pass has already computed,
so a derivative that is cheaper to express through the output uses it (σ' = a(1 − a) for the sigmoid).

Softmax is not elementwise: each output depends on the whole row, σ'(z) is a Jacobian rather than a
vector, and BP1's `∇_a C ⊙ σ'(z)` becomes the product of that Jacobian with ∇_a C. `backward` gives
that product for every activation, so BP1 reads the same for all of them. Softmax is for the output
layer only (BP2 needs an elementwise σ').
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Array = Any


@dataclass(frozen=True)
class Activation:
    """An activation function σ and its derivative: σ' when elementwise, else a Jacobian product."""

    name: str
    fn: Callable[[Array, Any], Array]
    prime: Callable[[Array, Array, Any], Array] | None  # None: not elementwise (output layer only)
    jacobian_product: Callable[[Array, Array, Array, Any], Array] | None = None

    @property
    def output_only(self) -> bool:
        return self.prime is None

    def backward(self, z: Array, a: Array, grad_a: Array, xp: Any) -> Array:
        """∂C/∂z from ∂C/∂a, one row per example: grad_a ⊙ σ'(z), or the Jacobian product."""
        if self.prime is None:
            return self.jacobian_product(z, a, grad_a, xp)
        return grad_a * self.prime(z, a, xp)


def sigmoid(z: Array, xp: Any) -> Array:
    """σ(z) = 1 / (1 + e^(−z)), evaluated as e^z / (1 + e^z): four passes over z.

    Accurate to a few ulps for every z the exponential can represent (the division keeps tiny values'
    relative precision); z is only kept below the point where e^z would overflow, where σ is 1 to
    the last bit anyway, so nothing overflows or warns.
    """
    e = xp.exp(xp.minimum(z, 88.0 if z.dtype == xp.float32 else 709.0))
    return e / (1.0 + e)


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


LEAKY_SLOPE = 0.01


def leaky_relu(z: Array, xp: Any) -> Array:
    """z where z > 0, else 0.01 z."""
    return xp.where(z > 0, z, LEAKY_SLOPE * z)


def leaky_relu_prime(z: Array, a: Array, xp: Any) -> Array:
    """1 where z > 0, else 0.01 (at z = 0: 0.01)."""
    return xp.where(z > 0, xp.ones_like(z), xp.full_like(z, LEAKY_SLOPE))


def identity(z: Array, xp: Any) -> Array:
    """z: a linear neuron."""
    return z


def identity_prime(z: Array, a: Array, xp: Any) -> Array:
    """1."""
    return xp.ones_like(z)


def softmax(z: Array, xp: Any) -> Array:
    """a_j = e^(z_j) / Σ_k e^(z_k) along each row, with the row maximum subtracted first (no overflow)."""
    e = xp.exp(z - xp.max(z, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def softmax_jacobian_product(z: Array, a: Array, grad_a: Array, xp: Any) -> Array:
    """∂a_i/∂z_j = a_i (δ_ij − a_j), so ∂C/∂z_j = a_j (∂C/∂a_j − Σ_i a_i ∂C/∂a_i)."""
    return a * (grad_a - xp.sum(a * grad_a, axis=1, keepdims=True))


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_prime),
    "tanh": Activation("tanh", tanh, tanh_prime),
    "relu": Activation("relu", relu, relu_prime),
    "leaky_relu": Activation("leaky_relu", leaky_relu, leaky_relu_prime),
    "identity": Activation("identity", identity, identity_prime),
    "softmax": Activation("softmax", softmax, None, softmax_jacobian_product),
}
