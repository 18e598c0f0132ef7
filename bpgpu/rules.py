"""Update rules (chapters 1 and 3) as pure pairs of functions, chained into the training step.

    rule.init(weights, biases) -> state
    rule.update(grads, state, params, eta) -> (updates, state)        params ← params + updates

`grads` and `updates` are `(for_weights, for_biases)`, two lists shaped like the parameters; `state`
is plain data (a tuple of arrays, or `()`), so a step built from rules still compiles (JAX, CUDA
graphs) and runs on every backend. η comes in at each call rather than being fixed in the rule, so
that halving it recompiles nothing. The rules:

    sgd()                    updates = −η ∇C                          chapter 1's gradient descent
    weight_decay(λ, n, "l2") ∇_w C ← ∇_w C + (λ/n) w                  L2 regularisation (chapter 3)
    weight_decay(λ, n, "l1") ∇_w C ← ∇_w C + (λ/n) sgn(w)             L1 regularisation
    momentum(μ)              v ← μ v − η ∇C,  updates = v             momentum-based descent

and `chain(...)` runs them in order. A rule whose whole effect is a factor (`sgd` alone: −η) says
so in `scale`, and then the step may skip its `update` and ask backprop for the gradient of
scale(η) × C instead, which applies the factor once, to the output error (the smallest array),
rather than to every gradient: the same numbers, one pass over each parameter fewer. A chain of
two or more rules has no `scale`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

Array = Any
Grads = tuple[list[Array], list[Array]]
State = Any


class Rule(NamedTuple):
    """An update rule: `init`, `update` (see the module docstring) and, when the rule is a factor
    times the gradient, that factor as a function of η (`scale`), else None."""

    init: Callable[[Sequence[Array], Sequence[Array]], State]
    update: Callable[[Grads, State, Any, Any], tuple[Grads, State]]
    scale: Callable[[Any], Any] | None = None


def _stateless(weights: Sequence[Array], biases: Sequence[Array]) -> State:
    return ()


def _negative(eta: Any) -> Any:
    return -eta


def sgd() -> Rule:
    """Gradient descent: updates = −η ∇C (a factor: `scale` is −η)."""

    def update(grads: Grads, state: State, params: Any, eta: Any) -> tuple[Grads, State]:
        return tuple([-eta * g for g in part] for part in grads), state

    return Rule(_stateless, update, scale=_negative)


def weight_decay(lmbda: float, n: int, regularization: str, xp: Any) -> Rule:
    """∂(C + penalty)/∂w, the weights' gradient of the regularised cost, over n training rows:
    ∇_w + (λ/n) w for "l2", ∇_w + (λ/n) sgn(w) for "l1" (sgn 0 = 0); biases are not decayed.
    Followed by `sgd` this is the chapter's w ← (1 − ηλ/n) w − η∇w, or w ← w − (ηλ/n) sgn(w) − η∇w."""
    factor = lmbda / n

    def update(grads: Grads, state: State, params: Any, eta: Any) -> tuple[Grads, State]:
        nabla_w, nabla_b = grads
        if regularization == "l2":
            decayed = [g + factor * w for w, g in zip(params.weights, nabla_w, strict=True)]
        else:
            decayed = [g + factor * xp.sign(w) for w, g in zip(params.weights, nabla_w, strict=True)]
        return (decayed, nabla_b), state

    return Rule(_stateless, update)


def momentum(mu: float, xp: Any) -> Rule:
    """Momentum (chapter 3): a velocity per parameter, v ← μ v − η ∇C, and updates = v.
    Its state is `(velocities of the weights, velocities of the biases)`, zero at the start."""

    def init(weights: Sequence[Array], biases: Sequence[Array]) -> State:
        return ([xp.zeros_like(w) for w in weights], [xp.zeros_like(b) for b in biases])

    def update(grads: Grads, state: State, params: Any, eta: Any) -> tuple[Grads, State]:
        velocities = tuple(
            [mu * v - eta * g for v, g in zip(vs, gs, strict=True)]
            for vs, gs in zip(state, grads, strict=True)
        )
        return velocities, velocities

    return Rule(init, update)


def chain(first: Rule, *rest: Rule) -> Rule:
    """The rules one after another; the state is the one rule's that keeps one, or `()`.

    Two rules that both keep state do not occur in this book and are refused rather than given a
    layout nobody reads."""
    if not rest:
        return first
    rules = (first, *rest)

    def init(weights: Sequence[Array], biases: Sequence[Array]) -> State:
        states = [s for s in (rule.init(weights, biases) for rule in rules) if s != ()]
        if len(states) > 1:
            raise ValueError(f"chain keeps the state of one rule at most, got {len(states)}")
        return states[0] if states else ()

    def update(grads: Grads, state: State, params: Any, eta: Any) -> tuple[Grads, State]:
        kept = state
        for rule in rules:
            grads, new = rule.update(grads, state if rule.init is not _stateless else (), params, eta)
            if new != ():
                kept = new
        return grads, kept

    return Rule(init, update)


def apply_updates(params: Sequence[Array], updates: Sequence[Array]) -> list[Array]:
    """p ← p + u for each parameter, new arrays (never in place)."""
    return [p + u for p, u in zip(params, updates, strict=True)]


def penalty(weights: Sequence[Array], lmbda: float, n: int, regularization: str, xp: Any) -> Array:
    """The term `weight_decay` adds to the cost: L2 (λ/2n) Σ_w w², L1 (λ/n) Σ_w |w| (weights only)."""
    if regularization == "l2":
        return (lmbda / (2 * n)) * sum(xp.sum(w * w) for w in weights)
    return (lmbda / n) * sum(xp.sum(xp.abs(w)) for w in weights)
