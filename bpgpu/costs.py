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
    targets: str | None = None  # what real-valued targets must be: "unit_interval", "distribution"


def quadratic(z: Array, a: Array, y: Array, xp: Any) -> Array:
    """C_x = ½‖a − y‖²."""
    r = a - y
    return 0.5 * xp.sum(r * r, axis=1)


def quadratic_delta(z: Array, a: Array, y: Array, sigma: Activation, xp: Any) -> Array:
    """BP1 as written: ∇_a C_x = a − y, so δ^L = (a − y) ⊙ σ'(z^L) (a Jacobian product for softmax)."""
    return sigma.backward(z, a, a - y, xp)


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


def log_likelihood(z: Array, a: Array, y: Array, xp: Any) -> Array:
    """C_x = −ln a_y for a softmax output, i.e. −Σ_j y_j ln a_j for a one-hot (or probability) row y.

    Written through z as Σ_j y_j (logsumexp(z) − z_j) with Σ_j y_j = 1, where
    logsumexp(z) = m + ln Σ_k e^(z_k − m), m the row maximum: no ln 0 and no overflow.
    """
    m = xp.max(z, axis=1, keepdims=True)
    log_sum = m + xp.log(xp.sum(xp.exp(z - m), axis=1, keepdims=True))
    return xp.sum(y * (log_sum - z), axis=1)


def log_likelihood_delta(z: Array, a: Array, y: Array, sigma: Activation, xp: Any) -> Array:
    """With a softmax output the Jacobian cancels against ∇_a C_x = −y / a: δ^L = a − y (Σ_j y_j = 1)."""
    return a - y


COSTS: dict[str, Cost] = {
    "quadratic": Cost("quadratic", quadratic, quadratic_delta),
    "cross_entropy": Cost("cross_entropy", cross_entropy, cross_entropy_delta, ("sigmoid",), "unit_interval"),
    "log_likelihood": Cost(
        "log_likelihood", log_likelihood, log_likelihood_delta, ("softmax",), "distribution"
    ),
}
