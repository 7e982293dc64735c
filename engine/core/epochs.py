"""Steps and epochs: how a stored metric point's step maps to the epoch a reader sees.

A run stores every metric point at its optimizer step (the number of optimizer steps taken
so far), so a training-loss point logged mid-epoch and the epoch's validation point share one
axis. Beside them it stores the `epoch` metric at the same steps: the epochs completed at that
step, fractional within an epoch (2.25 = a quarter into epoch 3), exactly k at the end of epoch
k. Charts draw every curve against it (x in epochs, integer ticks); readers of "how far is it"
read its last value; sweeps read per-epoch values through it.

Runs from before this (and runs logged by other code) have no `epoch` series: there a step is an
epoch, as they logged one point per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

EPOCH_KEY = "epoch"


def epochs_at(
    steps: np.ndarray | list[float],
    epoch_steps: np.ndarray | list[float],
    epoch_values: np.ndarray | list[float],
) -> np.ndarray:
    """The epoch of each of `steps`, from a run's `epoch` series (its steps and values).

    Linear between two marks; before the first mark from step 0 = epoch 0; past the last mark
    the last mark's epoch (the final test metrics sit at the last step). Without a series the
    steps themselves (one point per epoch).
    """
    import numpy as np  # here: the CLI imports this module for epochs_done, at every start

    x = np.asarray(steps, dtype=float)
    marks = np.asarray(epoch_steps, dtype=float)
    values = np.asarray(epoch_values, dtype=float)
    keep = np.isfinite(values)
    marks, values = marks[keep], values[keep]
    if marks.size == 0:
        return x
    order = np.argsort(marks, kind="stable")
    marks, values = marks[order], values[order]
    if marks[0] > 0:
        marks, values = np.concatenate(([0.0], marks)), np.concatenate(([0.0], values))
    return np.interp(x, marks, values)


def epochs_done(summary: Mapping[str, Any]) -> float:
    """How many epochs a run has completed, fractional mid-epoch, from its summary
    (db.records.RunRecord.summary: key → {"last", "step", …})."""
    entry = summary.get(EPOCH_KEY)
    if entry is not None and entry.get("last") is not None and math.isfinite(entry["last"]):
        return float(entry["last"])
    # Older runs: one train_loss point per epoch, at step = epoch.
    return float((summary.get("train_loss") or {}).get("step") or 0)


def epoch_ticks(x_max: float, most: int = 10) -> float:
    """The distance between two epoch ticks: a whole number (1, 2, 5, 10, 20, 50 …) that puts
    at most `most` ticks on an axis reaching `x_max`, so an axis never reads 1.5 epochs."""
    if not math.isfinite(x_max) or x_max <= most:
        return 1.0
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if x_max / (factor * magnitude) <= most:
                return float(factor * magnitude)
        magnitude *= 10
