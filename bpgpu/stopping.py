"""Chapter 3's rules for when to stop and what learning rate to use next, judged after each epoch by
the evaluation accuracy: pure pairs like the update rules of `bpgpu.rules`.

Each rule is `init(eta) -> state` and `update(accuracy, state) -> (Verdict, state)`, with state as
plain host data. An epoch *improves* when its accuracy is strictly better than every earlier one.

- `early_stopping(n)`: stop after n epochs in a row without improvement.
- `halving(patience)`: halve eta after `patience` such epochs (counting again from the halving),
  and stop once eta falls below its first value / 128.

`chain` runs several on the same accuracy: it stops when any stops.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

HALVINGS = 7  # eta may fall to eta / 2**7 = eta / 128


class Verdict(NamedTuple):
    improved: bool  # strictly better than every earlier epoch
    stop: bool
    eta: float  # the learning rate of the next epoch


class Rule(NamedTuple):
    init: Callable[[float], Any]
    update: Callable[[float, Any], tuple[Verdict, Any]]


def _improved(accuracy: float, best: float | None) -> bool:
    return best is None or accuracy > best


def early_stopping(epochs: int) -> Rule:
    """Stop after `epochs` epochs in a row without improvement. State: (best, epochs since, eta)."""

    def init(eta: float) -> tuple[float | None, int, float]:
        return None, 0, eta

    def update(accuracy: float, state: tuple[float | None, int, float]) -> tuple[Verdict, Any]:
        best, since, eta = state
        if _improved(accuracy, best):
            return Verdict(True, False, eta), (accuracy, 0, eta)
        return Verdict(False, since + 1 >= epochs, eta), (best, since + 1, eta)

    return Rule(init, update)


def halving(patience: int) -> Rule:
    """Halve eta after `patience` epochs without improvement; stop once it is below its first value
    / 2**HALVINGS. State: (best, epochs since the best or the last halving, eta, floor)."""

    def init(eta: float) -> tuple[float | None, int, float, float]:
        return None, 0, eta, eta / 2**HALVINGS

    def update(accuracy: float, state: tuple[float | None, int, float, float]) -> tuple[Verdict, Any]:
        best, since, eta, floor = state
        if _improved(accuracy, best):
            return Verdict(True, False, eta), (accuracy, 0, eta, floor)
        since += 1
        if since >= patience:
            eta, since = eta / 2, 0
        return Verdict(False, eta < floor, eta), (best, since, eta, floor)

    return Rule(init, update)


def chain(*rules: Rule) -> Rule:
    """The rules on the same accuracy: stop when any stops; the next eta is the smallest given."""

    def init(eta: float) -> tuple[Any, ...]:
        return tuple(rule.init(eta) for rule in rules)

    def update(accuracy: float, states: tuple[Any, ...]) -> tuple[Verdict, tuple[Any, ...]]:
        pairs = [rule.update(accuracy, state) for rule, state in zip(rules, states, strict=True)]
        verdicts, states = tuple(v for v, _ in pairs), tuple(s for _, s in pairs)
        improved = verdicts[0].improved  # every rule tracks the same best
        return Verdict(improved, any(v.stop for v in verdicts), min(v.eta for v in verdicts)), states

    return Rule(init, update)


def rule_for(early_stopping_epochs: int | None, eta_schedule: str | None, patience: int) -> Rule | None:
    """The rule `SGD`'s `early_stopping`, `eta_schedule` and `patience` ask for, or None."""
    rules = [early_stopping(early_stopping_epochs)] if early_stopping_epochs is not None else []
    rules += [halving(patience)] if eta_schedule == "halve" else []
    return None if not rules else rules[0] if len(rules) == 1 else chain(*rules)
