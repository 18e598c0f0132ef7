"""Independent references for bpgpu's numbers, in plain NumPy float64 and the book's column form.

Nothing here imports bpgpu's math: the activations, costs and the per-example loop are written
again, as in the book's `network.py`, one example at a time as a column vector.
"""

from __future__ import annotations

import numpy as np


def _softmax(z):
    e = np.exp(z - z.max(axis=0))
    return e / e.sum(axis=0)


SIGMA = {
    "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda z: np.exp(-z) / (1.0 + np.exp(-z)) ** 2),
    "tanh": (np.tanh, lambda z: 1.0 / np.cosh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
    "identity": (lambda z: z, np.ones_like),
    "softmax": (_softmax, None),  # not elementwise: see `jacobian`
}


def jacobian(name: str, z: np.ndarray) -> np.ndarray:
    """∂a/∂z for one example's column z: diag(σ'(z)) for elementwise σ; for softmax diag(a) − a aᵀ."""
    if name == "softmax":
        a = _softmax(z)[:, 0]
        return np.diag(a) - np.outer(a, a)
    return np.diag(SIGMA[name][1](z)[:, 0])


def cost_gradient(cost: str, a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """∇_a C_x for one example, written directly from the cost's definition."""
    if cost == "quadratic":
        return a - y
    if cost == "cross_entropy":
        return -(y / a) + (1.0 - y) / (1.0 - a)
    if cost == "log_likelihood":  # C = −Σ_j y_j ln a_j
        return -y / a
    raise ValueError(cost)


def example_gradients(weights, biases, sigmas, cost, x, y):
    """The book's backprop for one example: x, y columns; returns (nabla_b, nabla_w) as columns."""
    activation, activations, zs = x, [x], []
    for w, b, name in zip(weights, biases, sigmas, strict=True):
        z = w @ activation + b[:, None]
        zs.append(z)
        activation = SIGMA[name][0](z)
        activations.append(activation)
    delta = jacobian(sigmas[-1], zs[-1]).T @ cost_gradient(cost, activations[-1], y)  # BP1
    nabla_b, nabla_w = [None] * len(weights), [None] * len(weights)
    nabla_b[-1], nabla_w[-1] = delta, delta @ activations[-2].T  # BP3, BP4
    for l in range(2, len(weights) + 1):
        delta = (weights[-l + 1].T @ delta) * SIGMA[sigmas[-l]][1](zs[-l])  # BP2
        nabla_b[-l], nabla_w[-l] = delta, delta @ activations[-l - 1].T
    return nabla_b, nabla_w


def loop_gradients(weights, biases, sigmas, cost, X, Y):
    """Mean of per-example gradients over the rows of X and Y, by a plain Python loop."""
    sum_b = [np.zeros_like(b) for b in biases]
    sum_w = [np.zeros_like(w) for w in weights]
    for x, y in zip(X, Y, strict=True):
        nb, nw = example_gradients(weights, biases, sigmas, cost, x[:, None], y[:, None])
        sum_b = [s + d[:, 0] for s, d in zip(sum_b, nb, strict=True)]
        sum_w = [s + d for s, d in zip(sum_w, nw, strict=True)]
    n = len(X)
    return [s / n for s in sum_b], [s / n for s in sum_w]


def matrix_form_deltas(weights, biases, sigmas, cost, x, y):
    """δ^l for one example by the chapter's alternate presentation with diagonal matrices Σ'(z).

    δ^L = Σ'(z^L) ∇_a C and δ^l = Σ'(z^l) (w^{l+1})ᵀ δ^{l+1}, each Σ'(z) = diag(σ'(z)) built
    explicitly (for a softmax output, its full symmetric Jacobian); returns [δ^1, ..., δ^L] as 1-d
    arrays.
    """
    a, zs = x, []
    for w, b, name in zip(weights, biases, sigmas, strict=True):
        z = w @ a + b
        zs.append(z)
        a = SIGMA[name][0](z)
    deltas = [jacobian(sigmas[-1], zs[-1][:, None]) @ cost_gradient(cost, a, y)]
    for l in range(len(weights) - 2, -1, -1):
        deltas.insert(0, jacobian(sigmas[l], zs[l][:, None]) @ weights[l + 1].T @ deltas[0])
    return deltas
