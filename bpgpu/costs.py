"""Cost functions C, each written next to δ^L, the output error it gives in BP1.

Shapes: `z`, `a` and `y` are (n, n_out) with one example per row. `fn` returns the per-example costs
C_x as an (n,) array; the network's cost is their mean. `delta` returns δ^L (n, n_out) for one example
per row: BP1, δ^L = ∇_a C_x ⊙ σ'(z^L), in the form that is exact and cheapest for that cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .activations import Activation

Array = Any


@dataclass(frozen=True)
class Cost:
    """A cost C_x(a, y), its output error δ^L, and the output activations it is defined for."""

    name: str
    fn: Callable[[Array, Array, Array, Any], Array]
    delta: Callable[[Array, Array, Array, Activation, Any], Array]
    output_activations: tuple[str, ...] | None = None  # None: any output activation


def quadratic(z: Array, a: Array, y: Array, xp: Any) -> Array:
    """C_x = ½‖a − y‖²."""
    r = a - y
    return 0.5 * xp.sum(r * r, axis=1)


def quadratic_delta(z: Array, a: Array, y: Array, sigma: Activation, xp: Any) -> Array:
    """BP1 as written: ∇_a C_x = a − y, so δ^L = (a − y) ⊙ σ'(z^L)."""
    return (a - y) * sigma.prime(z, a, xp)


def cross_entropy(z: Array, a: Array, y: Array, xp: Any) -> Array:
    """C_x = −Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)] with a = σ(z).

    Written through z as Σ_j [softplus(z_j) − y_j z_j], the same value without ln 0 when a
    saturates at 0 or 1; softplus(z) = max(z, 0) + ln(1 + e^(−|z|)).
    """
    softplus = xp.maximum(z, 0.0) + xp.log1p(xp.exp(-xp.abs(z)))
    return xp.sum(softplus - y * z, axis=1)


def cross_entropy_delta(z: Array, a: Array, y: Array, sigma: Activation, xp: Any) -> Array:
    """With a sigmoid output σ'(z) = a(1 − a) cancels ∇_a C_x = (a − y) / (a(1 − a)): δ^L = a − y."""
    return a - y


COSTS: dict[str, Cost] = {
    "quadratic": Cost("quadratic", quadratic, quadratic_delta),
    "cross_entropy": Cost("cross_entropy", cross_entropy, cross_entropy_delta, ("sigmoid",)),
}
