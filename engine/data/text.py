"""Text datasets: which tables are text, which column holds the text, what the texts look like.

A text dataset is a table with one free-text column and a label column. Ingest
(engine/data/datasets.py) asks `resolve_kind` whether an upload is text; the Datasets page asks
`text_overview` for samples and lengths. No torch here: the dashboard imports this module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.core.errors import DatasetError
from engine.data.columns import as_numeric, class_labels, column_role
from engine.data.tokenizer import split_words

KINDS = ("auto", "tabular", "text")
# A column is free text when most values have several words and few repeat.
MIN_MEAN_WORDS = 3.0
MIN_UNIQUE_SHARE = 0.3
# An inferred text dataset may carry at most this many numeric/categorical columns besides the
# target: a table with a comment column among many measurements stays tabular (the comment is
# left out, as before) unless the uploader asks for text.
MAX_OTHER_FEATURES = 1


def _strings(series: pd.Series) -> pd.Series:
    return series.dropna().astype(str).str.strip().replace("", np.nan).dropna()


def looks_like_free_text(series: pd.Series) -> bool:
    """Sentences rather than codes or names: several words per value, mostly distinct."""
    if as_numeric(series) is not None:
        return False
    present = _strings(series)
    if len(present) < 2:
        return False
    words = present.str.split().str.len()
    return (
        float(words.mean()) >= MIN_MEAN_WORDS
        and present.nunique() / len(present) >= MIN_UNIQUE_SHARE
    )


def _mean_length(series: pd.Series) -> float:
    present = _strings(series)
    return float(present.str.len().mean()) if len(present) else 0.0


def free_text_columns(frame: pd.DataFrame, target: str) -> list[str]:
    """Columns that hold free text, longest texts first."""
    found = [c for c in frame.columns if c != target and looks_like_free_text(frame[c])]
    return sorted(found, key=lambda c: -_mean_length(frame[c]))


def _string_columns(frame: pd.DataFrame, target: str) -> list[str]:
    columns = [
        c
        for c in frame.columns
        if c != target and as_numeric(frame[c]) is None and len(_strings(frame[c]))
    ]
    return sorted(columns, key=lambda c: -_mean_length(frame[c]))


def _check_text_column(frame: pd.DataFrame, column: str, target: str, filename: str) -> str:
    if column not in frame.columns:
        folded = {str(c).lower(): c for c in frame.columns}
        if column.strip().lower() not in folded:
            raise DatasetError(
                f"Text column {column!r} is not in {filename}. Its columns are: "
                f"{', '.join(map(str, frame.columns[:30]))}."
            )
        column = folded[column.strip().lower()]
    if column == target:
        raise DatasetError(
            f"Column {column!r} cannot be both the text and the target. Pick the column with the "
            "labels as the target."
        )
    if not len(_strings(frame[column])):
        raise DatasetError(
            f"Text column {column!r} is empty in every row of {filename}. Pick the column "
            "that holds the texts."
        )
    if as_numeric(frame[column]) is not None:
        raise DatasetError(
            f"Column {column!r} holds numbers, not text. Pick the column with the sentences as "
            "the text column."
        )
    return column


def resolve_kind(
    frame: pd.DataFrame, target: str, kind: str, text_column: str | None, filename: str
) -> tuple[str, str | None]:
    """(kind, text column) for an upload: inferred for kind=auto, checked when forced."""
    if kind not in KINDS:
        raise DatasetError(f"Dataset kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    if kind == "tabular":
        if text_column:
            raise DatasetError(
                "A text column applies to text datasets only: leave it out for a tabular "
                "dataset, or choose kind text."
            )
        return "tabular", None
    if text_column:
        return "text", _check_text_column(frame, text_column, target, filename)
    if kind == "auto":
        texts = free_text_columns(frame, target)
        if not texts:
            return "tabular", None
        others = [
            c
            for c in frame.columns
            if c != target
            and c not in texts
            and column_role(frame[c]) in ("numeric", "categorical")
        ]
        return ("text", texts[0]) if len(others) <= MAX_OTHER_FEATURES else ("tabular", None)
    candidates = free_text_columns(frame, target) or _string_columns(frame, target)
    if not candidates:
        raise DatasetError(
            f"{filename} has no text column besides the target {target!r}: every other column "
            "holds numbers or is empty. Upload a table with a column of texts, or add it as a "
            "tabular dataset."
        )
    return "text", candidates[0]


def drop_rows_without_text(
    frame: pd.DataFrame, text_column: str, filename: str
) -> tuple[pd.DataFrame, int]:
    """Rows whose text is missing or blank carry nothing to learn from: drop and count them."""
    text = frame[text_column]
    keep = text.notna() & (text.astype(str).str.strip() != "")
    if not keep.any():
        raise DatasetError(
            f"Text column {text_column!r} is empty in every row of {filename}. Pick the column "
            "that holds the texts."
        )
    return frame[keep.to_numpy()].reset_index(drop=True), int((~keep).sum())


def word_counts(texts: pd.Series) -> pd.Series:
    """Words per text, as the tokenizer splits them (punctuation counts as a token)."""
    return texts.fillna("").astype(str).map(lambda t: len(split_words(t)))


def text_summary(frame: pd.DataFrame, text_column: str, dropped: int) -> dict[str, Any]:
    """What the schema records about the texts (the form suggests max_length from it)."""
    counts = word_counts(frame[text_column])
    return {
        "text_column": text_column,
        "rows_dropped_missing_text": dropped,
        "text_tokens": {
            "mean": round(float(counts.mean()), 2),
            "median": float(counts.median()),
            "p95": float(counts.quantile(0.95)),
            "max": int(counts.max()),
        },
    }


def text_overview(
    frame: pd.DataFrame, schema: dict[str, Any], per_label: int = 3
) -> tuple[pd.DataFrame, pd.Series]:
    """(sample texts per label, tokens per text) for the Datasets page."""
    text_col, target = schema["text_column"], schema["target"]
    labels = (
        class_labels(frame[target])
        if schema.get("task") == "classification"
        else frame[target].astype(str)
    )
    samples = (
        pd.DataFrame({"label": labels, "text": frame[text_col].astype(str)})
        .groupby("label", sort=True, group_keys=False)
        .head(per_label)
        .sort_values("label", kind="stable")
        .reset_index(drop=True)
    )
    return samples, word_counts(frame[text_col])
