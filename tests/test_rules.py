"""The update rules of `bpgpu.rules`, each against the formula of chapters 1 and 3 written out in
NumPy, and the step that chains them against the rule applied by hand."""

from __future__ import annotations

import numpy as np
import pytest

import bpgpu
from bpgpu import rules
from bpgpu import step as steps

RNG = np.random.default_rng(5)
WEIGHTS = [RNG.normal(size=(4, 3)), RNG.normal(size=(2, 4))]
BIASES = [RNG.normal(size=4), RNG.normal(size=2)]
GRADS = ([RNG.normal(size=(4, 3)), RNG.normal(size=(2, 4))], [RNG.normal(size=4), RNG.normal(size=2)])
PARAMS = steps.Params(WEIGHTS, BIASES)
ETA, LMBDA, N, MU = 0.3, 0.7, 50, 0.6


def test_sgd_is_minus_eta_times_the_gradient_and_says_it_is_a_factor():
    rule = rules.sgd()
    assert rule.init(WEIGHTS, BIASES) == () and rule.scale(ETA) == -ETA
    updates, _ = rule.update(GRADS, (), PARAMS, ETA)
    for u, g in zip([*updates[0], *updates[1]], [*GRADS[0], *GRADS[1]], strict=True):
        np.testing.assert_array_equal(u, -ETA * g)


@pytest.mark.parametrize("regularization", ["l2", "l1"])
def test_weight_decay_adds_the_penaltys_gradient_to_the_weights_only(regularization):
    rule = rules.weight_decay(LMBDA, N, regularization, np)
    assert rule.scale is None
    (nabla_w, nabla_b), _ = rule.update(GRADS, (), PARAMS, ETA)
    term = (lambda w: w) if regularization == "l2" else np.sign
    for got, g, w in zip(nabla_w, GRADS[0], WEIGHTS, strict=True):
        np.testing.assert_allclose(got, g + LMBDA / N * term(w), rtol=1e-15)
    for got, g in zip(nabla_b, GRADS[1], strict=True):
        np.testing.assert_array_equal(got, g)


def test_the_penalty_is_the_cost_whose_gradient_weight_decay_adds():
    """Central differences of `penalty` in each weight give the decay term (L2: (λ/n) w)."""
    h = 1e-6
    w = [a.copy() for a in WEIGHTS]
    w[1][1, 2] += h
    up = rules.penalty(w, LMBDA, N, "l2", np)
    w[1][1, 2] -= 2 * h
    down = rules.penalty(w, LMBDA, N, "l2", np)
    np.testing.assert_allclose((up - down) / (2 * h), LMBDA / N * WEIGHTS[1][1, 2], rtol=1e-6)


def test_momentum_keeps_velocities_that_start_at_zero():
    rule = rules.momentum(MU, np)
    state = rule.init(WEIGHTS, BIASES)
    assert all(not v.any() for part in state for v in part)
    for _ in range(2):  # v ← μ v − η g, twice, by hand beside it
        expected = tuple(
            [MU * v - ETA * g for v, g in zip(vs, gs, strict=True)]
            for vs, gs in zip(state, GRADS, strict=True)
        )
        updates, state = rule.update(GRADS, state, PARAMS, ETA)
        for part in (0, 1):
            for u, v, e in zip(updates[part], state[part], expected[part], strict=True):
                np.testing.assert_array_equal(u, e)
                np.testing.assert_array_equal(v, e)


def test_a_chain_runs_its_rules_in_order_and_keeps_the_one_state():
    rule = rules.chain(rules.weight_decay(LMBDA, N, "l2", np), rules.momentum(MU, np))
    assert rule.scale is None  # two rules: never folded into backprop
    state = rule.init(WEIGHTS, BIASES)
    updates, new = rule.update(GRADS, state, PARAMS, ETA)
    decayed = [g + LMBDA / N * w for g, w in zip(GRADS[0], WEIGHTS, strict=True)]
    np.testing.assert_array_equal(updates[0][1], -ETA * decayed[1])  # v was 0: v = −η g
    assert new is not state and len(new) == 2
    with pytest.raises(ValueError, match="one rule at most, got 2"):
        rules.chain(rules.momentum(MU, np), rules.momentum(MU, np)).init(WEIGHTS, BIASES)


@pytest.mark.parametrize(
    "update",
    [
        steps.Update(),
        steps.Update(LMBDA, N, "l1"),
        steps.Update(LMBDA, N, "l2", MU),
        steps.Update(momentum=MU),
    ],
)
def test_the_step_equals_backprop_then_its_rule_by_hand(update):
    """Folding −η into backprop (plain SGD) or not (the others) gives the update of the rule applied
    to backprop's plain gradient."""
    net = bpgpu.Network([3, 4, 2], backend="numpy", dtype="float64", seed=2)
    x, y = RNG.normal(size=(5, 3)), np.eye(2)[[0, 1, 1, 0, 1]]
    step = steps.Step(net._model, update, np)
    start = step.start(net.weights, net.biases)
    got = step(start, x, y, ETA)
    nabla_b, nabla_w = net.backprop(x, y)
    rule = update.rule(np)
    updates, _ = rule.update((nabla_w, nabla_b), start.velocities, start, ETA)
    for p, u, g in zip(
        [*start.weights, *start.biases], [*updates[0], *updates[1]], [*got.weights, *got.biases], strict=True
    ):
        np.testing.assert_allclose(g, p + u, rtol=1e-13, atol=1e-15)
