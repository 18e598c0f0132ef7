"""The progress bar of `bpgpu train` and of `Network.SGD(..., progress=True)`: a tqdm bar over each
epoch's rows, labelled with the epoch, e.g. "epoch 6 (7/10)" (epochs count from 0, as the book's
"Epoch 0" lines do)."""

from __future__ import annotations

from typing import Any


class ProgressBar:
    """Called as `progress(rows_done, rows)` (what `SGD` reports 10 to 20 times an epoch); `close()`
    removes the bar. A new epoch starts when a report follows one that finished the rows."""

    def __init__(self, epochs: int, enabled: bool = True) -> None:
        self.epochs, self.enabled = epochs, enabled
        self._bar: Any = None
        self._done = self._rows = 0
        self._epoch = -1

    def __call__(self, done: int, rows: int) -> None:
        if not self.enabled:
            return
        if self._bar is None or self._done >= self._rows:  # the first report of an epoch
            self._epoch += 1
            self.close()
            from tqdm import tqdm

            label = f"epoch {self._epoch} ({self._epoch + 1}/{self.epochs})"
            self._bar, self._done, self._rows = (
                tqdm(total=rows, desc=label, unit="row", unit_scale=True, leave=False),
                0,
                rows,
            )
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
