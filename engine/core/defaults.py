"""Settings a run gets when the user leaves them alone, from the dataset's kind and size.

A run submitted with no options should be a fair first result on data we have never seen, not
a tuned one: the batch grows with the data so an epoch stays a few hundred steps, the epoch
count aims at a few thousand optimizer steps in total, and early stopping ends runs that
stopped improving. A skewed label does not get class weights unless the user asks (see
suggest_config). The values are written into the run's
config, so what a run used is always visible and a clone repeats it exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.core.config import RunConfig

# Above this ratio between the most and the least frequent class, an unweighted loss mostly
# learns the big classes. Kept for callers that describe a skew; never applied by default.
IMBALANCE_RATIO = 3.0


@dataclass(frozen=True)
class KindDefaults:
    batch_sizes: tuple[tuple[int, int], ...]  # (training rows below, batch size)
    target_steps: int
    min_epochs: int
    max_epochs: int


KIND_DEFAULTS = {
    "tabular": KindDefaults(((2_000, 32), (20_000, 64), (200_000, 256)), 3000, 10, 50),
    "image": KindDefaults(((1_000, 32),), 3000, 5, 30),
    "text": KindDefaults(((2_000, 32),), 2000, 5, 30),
}
LARGEST_BATCH = {"tabular": 1024, "image": 64, "text": 64}


def suggest_config(
    kind: str, n_rows: int, class_counts: dict[str, int] | None = None
) -> dict[str, Any]:
    """Field values for a run on a dataset of this kind, size and label balance."""
    rules = KIND_DEFAULTS.get(kind, KIND_DEFAULTS["tabular"])
    base = RunConfig()
    n_train = max(1, round(n_rows * (1 - base.val_fraction - base.test_fraction)))
    batch = next((size for below, size in rules.batch_sizes if n_train < below), None)
    batch = batch or LARGEST_BATCH.get(kind, 1024)
    steps_per_epoch = math.ceil(n_train / batch)
    epochs = min(rules.max_epochs, max(rules.min_epochs, rules.target_steps // steps_per_epoch))
    out: dict[str, Any] = {
        "model": "auto",
        "batch_size": batch,
        "epochs": epochs,
        "early_stopping_patience": max(5, epochs // 5),
        "restore_best_weights": True,
    }
    # A skewed label keeps imbalance=none and the plain objective: class weights trade the big
    # classes' accuracy for the rare ones' recall, a choice the user makes (the Run page shows
    # per-class recall, and the verdict names classes the model never predicts), never one
    # imposed silently. `class_counts` stays in the signature for callers that pass it.
    del class_counts
    return out


def suggest_for_dataset(dataset: Any) -> dict[str, Any]:  # noqa: ANN401 - any DatasetRecord-like
    """suggest_config for a stored dataset record (kind, n_rows, schema)."""
    counts = (
        (dataset.schema or {}).get("class_counts") if dataset.task == "classification" else None
    )
    return suggest_config(dataset.kind, dataset.n_rows, counts)
