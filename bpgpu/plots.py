"""Pictures drawn with matplotlib: learning curves (test accuracy and training cost per epoch) and
confusion matrices.

matplotlib is optional (`pip install matplotlib`, or the `plot` extra of a clone); without it
`plot_history` raises `RuntimeError` saying how to install it. Nothing here touches pyplot's
global state, so it works without a display and inside other programs.
"""

from __future__ import annotations

import importlib
import io
import os
from collections.abc import Sequence
from typing import Any

from .io.files import atomic_write
from .training import EpochRecord

INSTALL_HINT = "plotting needs matplotlib: pip install matplotlib"


def require_matplotlib() -> Any:
    """The `matplotlib.figure` module, or `RuntimeError` with the install command."""
    try:
        return importlib.import_module("matplotlib.figure")
    except ImportError as exc:
        raise RuntimeError(f"{INSTALL_HINT} ({exc})") from exc


def check_plot_path(path: str | os.PathLike[str]) -> None:
    """Fail now, before any training, if matplotlib is missing or cannot write `path`'s format: a
    tiny figure with a title is drawn in that format, in memory (.pgf, for one, needs LaTeX)."""
    figure = require_matplotlib().Figure(figsize=(1, 1))
    formats = figure.canvas.get_supported_filetypes()
    suffix = _format(path)
    if suffix not in formats:
        raise ValueError(
            f"cannot draw {os.fspath(path)}: format {suffix!r}; use one of {', '.join(sorted(formats))}"
        )
    figure.add_subplot(1, 1, 1).set_title("0.5")
    try:
        figure.savefig(io.BytesIO(), format=suffix, dpi=10)
    except Exception as exc:  # a program the format needs is missing (LaTeX for .pgf), and the like
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"cannot draw {os.fspath(path)}: matplotlib cannot write {suffix} here ({reason})"
        ) from None


def _format(path: str | os.PathLike[str]) -> str:
    return os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"


def plot_history(
    history: Sequence[EpochRecord], path: str | os.PathLike[str], *, title: str | None = None
) -> None:
    """Draw the test accuracy, the training cost and the layer speeds of `history` against the epoch
    into `path`.

    The format follows the file name (.png, .svg, .pdf, ...). A panel is drawn when its field is
    present in the records (`test_data` for accuracy, `monitor=("training_cost",)` for the cost,
    `monitor=("layer_speeds",)` for each layer's ‖∂C/∂b^l‖, one line per layer on a log scale, as
    chapter 5 draws them); with none, `ValueError`. Epoch ticks are whole numbers; `title`
    defaults to "learning curves, epochs M to N". The file is written atomically.
    """
    records = list(history)
    if not records or not all(isinstance(r, EpochRecord) for r in records):
        raise ValueError(f"history must be a non-empty list of EpochRecord; got {history!r:.80}")
    panels = [
        (field, label)
        for field, label in (
            ("accuracy", "test accuracy (%)"),
            ("training_cost", "training cost"),
            ("layer_speeds", "speed of learning ‖∂C/∂b‖"),
        )
        if all(getattr(r, field) is not None for r in records)
        and (field != "layer_speeds" or len({len(r.layer_speeds) for r in records}) == 1)
    ]
    if not panels:
        raise ValueError("history has no test accuracy, training cost or layer speeds to plot")
    figure_module = require_matplotlib()
    ticker = importlib.import_module("matplotlib.ticker")
    figure = figure_module.Figure(figsize=(5 * len(panels), 3.6), layout="constrained")
    epochs = [r.epoch for r in records]
    for k, (field, label) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), k + 1)
        if field == "layer_speeds":
            layers = len(records[0].layer_speeds)
            for l in range(layers):
                name = "output layer" if l == layers - 1 else f"hidden layer {l + 1}"
                axes.plot(epochs, [r.layer_speeds[l] for r in records], marker="o", markersize=3, label=name)
            if any(speed > 0 for r in records for speed in r.layer_speeds):
                axes.set_yscale("log")  # chapter 5's scale; not when every speed is 0 (nothing to show)
            axes.legend(fontsize=7, framealpha=1.0)  # opaque: PostScript has no transparency
        else:
            values = [getattr(r, field) * (100 if field == "accuracy" else 1) for r in records]
            axes.plot(epochs, values, marker="o", markersize=3)
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))  # whole epochs only
        axes.set_ylabel(label)
        axes.grid(color="0.88")  # a light grey rather than transparency, which PostScript lacks
    first, last = records[0].epoch, records[-1].epoch
    span = f"epochs {first} to {last}" if last != first else f"epoch {first}"
    figure.suptitle(title or f"learning curves, {span}")
    check_plot_path(path)
    with atomic_write(path) as file:
        figure.savefig(file, format=_format(path), dpi=120)


def plot_confusion(
    matrix: Any, classes: Sequence[str], path: str | os.PathLike[str], *, title: str | None = None
) -> None:
    """Draw a confusion matrix (rows: true class, columns: predicted class, as
    `Network.confusion_matrix` returns it) into `path`: each cell shaded by the fraction of its row,
    with its count written in it, and the class names along both axes. Written atomically."""
    counts = [[int(value) for value in row] for row in matrix]
    k = len(counts)
    if k == 0 or any(len(row) != k for row in counts) or len(classes) != k:
        raise ValueError(
            f"expected a square (k, k) matrix and k class names; got {k} rows, {len(classes)} names"
        )
    figure_module = require_matplotlib()
    size = max(4.0, 0.55 * k + 2.5)
    figure = figure_module.Figure(figsize=(size + 1.0, size), layout="constrained")
    axes = figure.add_subplot(1, 1, 1)
    shares = [[value / max(1, sum(row)) for value in row] for row in counts]
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i, row in enumerate(counts):
        for j, value in enumerate(row):
            dark = shares[i][j] > 0.5
            axes.text(
                j, i, str(value), ha="center", va="center", fontsize=7, color="white" if dark else "black"
            )
    axes.set_xticks(range(k), [str(name) for name in classes], rotation=45, ha="right")
    axes.set_yticks(range(k), [str(name) for name in classes])
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    figure.colorbar(image, ax=axes, label="fraction of the true class")
    if title:
        axes.set_title(title)
    check_plot_path(path)
    with atomic_write(path) as file:
        figure.savefig(file, format=_format(path), dpi=120)
