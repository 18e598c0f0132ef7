"""The options a network is built and trained with, each checked in one place.

`Layers` holds how the layers compute and `Training` holds `SGD`'s hyper-parameters. Each is a frozen
dataclass that validates and normalises its fields when made, so `Network` and the `bpgpu` command
share one copy of every rule and of its message (the command turns the `ValueError` into a usage
error, with each `name=` written as its option, `--name`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import _validation as check
from .activations import ACTIVATIONS
from .costs import COSTS
from .step import MONITORS

INITS = ("normal", "scaled")
REGULARIZATIONS = ("l2", "l1")
SCHEDULES = ("halve",)
PATIENCE = 10  # epochs without improvement before eta_schedule="halve" halves eta


@dataclass(frozen=True)
class Layers:
    """How the layers compute: the hidden layers' `activation`, the output layer's (the same unless
    given), and the `cost`, which may require a particular output activation (BP1's δ^L = a − y)."""

    activation: str = "sigmoid"
    output_activation: str | None = None
    cost: str = "quadratic"

    def __post_init__(self) -> None:
        activation = check.choice(self.activation, "activation", tuple(ACTIVATIONS))
        if ACTIVATIONS[activation].output_only:
            raise ValueError(
                f"activation {activation!r} is for the output layer only (it is not elementwise); "
                f"pass it as output_activation= and choose an elementwise activation for hidden layers"
            )
        output = self.output_activation if self.output_activation is not None else activation
        output = check.choice(output, "output_activation", tuple(ACTIVATIONS))
        cost = check.choice(self.cost, "cost", tuple(COSTS))
        allowed = COSTS[cost].output_activations
        if allowed is not None and output not in allowed:
            got = (
                f"output_activation={output!r}"
                if self.output_activation is not None
                else f"activation={output!r}, which the output layer takes when no output activation is given"
            )
            raise ValueError(f"cost={cost!r} needs an output activation in {allowed}; got {got}")
        for name, value in (("activation", activation), ("output_activation", output), ("cost", cost)):
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class Training:
    """`SGD`'s hyper-parameters (see its docstring), checked and normalised: numbers as Python
    numbers, `monitor` as a tuple, `patience` filled in (`PATIENCE`) where a schedule uses it."""

    epochs: int
    mini_batch_size: int
    eta: float
    lmbda: float = 0.0
    regularization: str = "l2"
    momentum: float = 0.0
    monitor: tuple[str, ...] = field(default=())
    early_stopping: int | None = None
    eta_schedule: str | None = None
    patience: int | None = None

    def __post_init__(self) -> None:
        checked = {
            "epochs": check.positive_int(self.epochs, "epochs"),
            "mini_batch_size": check.positive_int(self.mini_batch_size, "mini_batch_size"),
            "eta": check.positive_real(self.eta, "eta"),
            "lmbda": check.non_negative_real(self.lmbda, "lmbda"),
            "regularization": check.choice(self.regularization, "regularization", REGULARIZATIONS),
            "momentum": check.fraction(self.momentum, "momentum"),
            "monitor": check.names(self.monitor, "monitor", MONITORS),
        }
        if self.early_stopping is not None:
            checked["early_stopping"] = check.positive_int(self.early_stopping, "early_stopping")
        if self.eta_schedule is not None:
            checked["eta_schedule"] = check.choice(self.eta_schedule, "eta_schedule", SCHEDULES)
        if self.patience is not None and self.eta_schedule is None:
            raise ValueError(
                f"patience={check.show(self.patience)} applies only with eta_schedule='halve', "
                "and none was given"
            )
        checked["patience"] = (
            PATIENCE if self.patience is None else check.positive_int(self.patience, "patience")
        )
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def watching(self) -> bool:
        """Whether the evaluation accuracy decides when to stop or to halve eta."""
        return self.early_stopping is not None or self.eta_schedule is not None
