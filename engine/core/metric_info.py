"""What a metric means to a reader: which way is better, and which ones to show first.

One place for these facts so Runs, Compare, the Run page, sweeps and the report agree: a
learning rate or an epoch duration has no "best", and a loss is better when lower.
"""

from __future__ import annotations

from typing import Literal

Direction = Literal["higher", "lower"]

_LOWER = ("loss", "rmse", "mae", "mse", "error", "perplexity")
_HIGHER = ("accuracy", "f1", "precision", "recall", "auc", "r2")

# The metrics a reader wants first for each task, most important first.
HEADLINE_METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("test_accuracy", "test_balanced_accuracy", "test_f1_macro"),
    "regression": ("test_rmse", "test_mae", "test_r2"),
}


def direction(key: str) -> Direction | None:
    """ "higher" or "lower" when one way is better, None for a metric that is not a score."""
    name = key.lower()
    if name.startswith("sys/"):
        return None
    # Checked before the score words, so `epoch_seconds` or `lr` is never read as a score.
    parts = name.replace("/", "_").split("_")
    if any(p in ("lr", "epoch", "seconds", "step", "params", "rows", "bytes") for p in parts):
        return None
    if any(word in name for word in _LOWER):
        return "lower"
    if any(word in name for word in _HIGHER):
        return "higher"
    return None


# Scores that are a share of something (of rows right, of a class found): shown as percentages.
_FRACTIONS = ("accuracy", "f1", "precision", "recall", "auc")


def is_fraction(key: str) -> bool:
    """True for a 0–1 score a reader takes in as a percentage (accuracy 86.4 %, not 0.8636)."""
    name = key.lower()
    return direction(key) == "higher" and any(word in name for word in _FRACTIONS)


def lower_is_better(key: str) -> bool:
    return direction(key) == "lower"


def headline_metrics(task: str) -> tuple[str, ...]:
    return HEADLINE_METRICS.get(task, HEADLINE_METRICS["classification"])


# Labels (`metric_label`) stay in catalog.py beside the forms' other words.
