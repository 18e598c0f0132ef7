"""Feedforward and the four equations of backpropagation (Nielsen, chapter 2), written once.

Every function calls only the array-API namespace `xp` it is given, so the same lines run on NumPy,
CuPy, PyTorch and `array_api_strict`.

Layout. The book keeps one example as a column vector; here a mini-batch of n examples is processed
at once as matrices whose *rows* are examples (the chapter's "fully matrix-based approach"):

    weights[l]  W^l  (n_out, n_in)   the book's w^l: row j holds the weights into neuron j
    biases[l]   b^l  (n_out,)        the book's b^l
    A^l, Z^l, Δ^l    (n, n_l)        row x is the book's column a^{l,x}, z^{l,x}, δ^{l,x}

so the book's w^l a^{l−1} becomes A^{l−1} (W^l)ᵀ and (w^{l+1})ᵀ δ^{l+1} becomes Δ^{l+1} W^{l+1}.
Gradients are of the mean cost C = (1/n) Σ_x C_x. What a step does with them (plain descent, weight
decay, momentum) is `bpgpu.rules`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import array_api_compat

from .activations import Activation
from .costs import Cost

Array = Any


def feedforward(
    weights: Sequence[Array],
    biases: Sequence[Array],
    sigmas: Sequence[Activation],
    a: Array,
    xp: Any,
    demon: tuple[int, int, float] | None = None,
) -> tuple[list[Array], list[Array]]:
    """a^l = σ(w^l a^{l−1} + b^l) for every layer, keeping each z^l and a^l.

    Returns `(zs, activations)`: zs[l] is Z^{l+1} (n, sizes[l+1]); activations[0] is the input
    (n, sizes[0]) and activations[l + 1] = σ(zs[l]).

    `demon = (l, j, Δz)` is chapter 2's demon: it adds Δz to the weighted input of neuron j of
    layer l (zs[l][:, j], every row) before σ, so that the neuron outputs σ(z + Δz) instead.
    """
    zs, activations = [], [a]
    for l, (w, b, sigma) in enumerate(zip(weights, biases, sigmas, strict=True)):
        z = a @ w.T + b
        if demon is not None and demon[0] == l:
            neurons = xp.arange(z.shape[1], device=array_api_compat.device(z))
            z = xp.where(neurons == demon[1], z + demon[2], z)  # only that neuron: never inf · 0
        a = sigma.fn(z, xp)
        zs.append(z)
        activations.append(a)
    return zs, activations


def output_error(cost: Cost, sigma: Activation, z: Array, a: Array, y: Array, xp: Any) -> Array:
    """BP1: δ^L = ∇_a C ⊙ σ'(z^L), one row per example (the cost supplies its exact form)."""
    return cost.delta(z, a, y, sigma, xp)


def backpropagate_error(
    delta_next: Array, w_next: Array, sigma: Activation, z: Array, a: Array, xp: Any
) -> Array:
    """BP2: δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l), for all rows at once."""
    return (delta_next @ w_next) * sigma.prime(z, a, xp)


def bias_gradient(delta: Array, xp: Any) -> Array:
    """BP3: ∂C/∂b^l_j = δ^l_j, summed over the rows (examples) of δ: (n_out,)."""
    return xp.sum(delta, axis=0)


def weight_gradient(delta: Array, a_in: Array, xp: Any) -> Array:
    """BP4: ∂C/∂w^l_jk = a^{l−1}_k δ^l_j, summed over the rows (examples): Δᵀ A, (n_out, n_in)."""
    return delta.T @ a_in


def backprop(
    weights: Sequence[Array],
    biases: Sequence[Array],
    sigmas: Sequence[Activation],
    cost: Cost,
    x: Array,
    y: Array,
    xp: Any,
    scale: float = 1.0,
    rows: int | None = None,
) -> tuple[list[Array], list[Array]]:
    """The gradient of `scale` × the mean cost over the rows of `x` (n, sizes[0]) and `y` (n, sizes[-1]).

    Returns `(nabla_b, nabla_w)`, shaped like `biases` and `weights`. The mean cost C = (1/n) Σ_x C_x
    has error δ_x/n at each example's z, and BP2 is linear in δ, so the factor `scale / n` is applied
    once, to the output error (the smallest array), and BP3/BP4 then sum over the rows (an update
    rule that is a factor of the gradient, such as −η, asks for it here: see `bpgpu.rules`). `rows`
    replaces n when `x` is one part of a larger mini-batch (data-parallel training sums the parts).
    """
    zs, activations = feedforward(weights, biases, sigmas, x, xp)
    L = len(weights)
    nabla_b: list[Array] = [None] * L
    nabla_w: list[Array] = [None] * L
    n = x.shape[0] if rows is None else rows
    delta = output_error(cost, sigmas[-1], zs[-1], activations[-1], y, xp) * (scale / n)
    for l in range(L - 1, -1, -1):
        if l < L - 1:
            delta = backpropagate_error(delta, weights[l + 1], sigmas[l], zs[l], activations[l + 1], xp)
        nabla_b[l] = bias_gradient(delta, xp)
        nabla_w[l] = weight_gradient(delta, activations[l], xp)
    return nabla_b, nabla_w


def mean_cost(
    weights: Sequence[Array],
    biases: Sequence[Array],
    sigmas: Sequence[Activation],
    cost: Cost,
    x: Array,
    y: Array,
    xp: Any,
    demon: tuple[int, int, float] | None = None,
) -> Array:
    """C = (1/n) Σ_x C_x over the rows of `x` and `y`, as a 0-d array (with the `demon` of
    `feedforward`, when given: then C changes by about ∂C/∂z^l_j Δz, the definition of δ)."""
    zs, activations = feedforward(weights, biases, sigmas, x, xp, demon)
    return xp.mean(cost.fn(zs[-1], activations[-1], y, xp))
