"""Column typing and the dataset schema: what each column is (numeric, categorical, date, id,
text, constant), what task a target implies, and the schema stored with a dataset. Pure: no
database; preprocessing (engine/ml/prep/tabular.py) uses the same rules as ingest."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.core.display_text import display_text
from engine.core.errors import DatasetError
from engine.data.stored import StoredDataset

MAX_CLASSES = 1000
# Roles a table model takes as input (the rest: the target, identifiers, constants). Dates and
# free text become features of their own (engine/ml/prep/dates.py, words.py).
FEATURE_ROLES = ("numeric", "categorical", "date", "text")
# An integer column with at most this many distinct values is a category (a rating, a code).
CATEGORICAL_INT_MAX_UNIQUE = 10
# An integer target with at most this many distinct values means classification.
CLASSIFICATION_INT_MAX_UNIQUE = 20
NUMERIC_PARSE_SHARE = 0.95
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
# Column names that mark a row identifier (when every value is distinct).
_ID_NAME = re.compile(r"(^|[_\s-])(id|uuid|guid|key)$|^unnamed: \d+$", re.IGNORECASE)


def as_numeric(series: pd.Series) -> pd.Series | None:
    """The column as floats if (nearly) all its present values are numbers, else None."""
    if pd.api.types.is_bool_dtype(series):
        return None
    if pd.api.types.is_numeric_dtype(series):
        return _finite(series.astype("float64"))
    present = series.dropna()
    if present.empty:
        return None
    parsed = _parse_numbers(present.astype(str))
    if parsed.notna().mean() >= NUMERIC_PARSE_SHARE:
        return _finite(_parse_numbers(series.astype("string")).astype("float64"))
    return None


def _finite(values: pd.Series) -> pd.Series:
    """Infinite values ("inf" in a CSV, 1/0 in Parquet) count as missing: no model can use them,
    and they would make every scaled value of the column NaN."""
    return values.mask(np.isinf(values.to_numpy()))


def _parse_numbers(text: pd.Series) -> pd.Series:
    """Numbers from text: surrounding spaces and thousands separators (1,234.5) allowed."""
    text = text.str.strip()
    grouped = text.str.match(_THOUSANDS, na=False)
    if grouped.any():
        text = text.where(~grouped, text.str.replace(",", "", regex=False))
    return pd.to_numeric(text, errors="coerce")


def _is_integer_valued(values: pd.Series) -> bool:
    present = values.dropna()
    return bool(len(present)) and bool(np.all(np.mod(present.to_numpy(dtype="float64"), 1) == 0))


def column_role(series: pd.Series) -> str:
    """numeric | categorical | date | text | id | constant — what a tabular model does with it."""
    present = series.dropna()
    n_unique = present.nunique()
    if n_unique <= 1:
        return "constant"
    all_distinct = n_unique == len(present) and len(present) > 20
    if all_distinct and _ID_NAME.search(str(series.name or "")):
        return "id"
    numeric = as_numeric(series)
    if numeric is not None:
        # A few repeated integer codes are categories; a few *distinct* ones (ages in a
        # six-row file) are still measurements.
        if (
            _is_integer_valued(numeric)
            and n_unique <= CATEGORICAL_INT_MAX_UNIQUE
            and n_unique <= 0.5 * len(present)
        ):
            return "categorical"
        return "numeric"
    if looks_like_dates(series, present):
        # Dates become features (year, month, weekday… engine/ml/prep/dates.py), not an
        # identifier dropped because every row has its own.
        return "date"
    as_text = present.astype(str)
    unique_share = n_unique / len(present)
    if as_text.str.len().mean() > 30 and unique_share > 0.5:
        return "text"
    if unique_share == 1.0 and len(present) > 20:
        return "id"
    return "categorical"


def looks_like_dates(series: pd.Series, present: pd.Series | None = None) -> bool:
    """Dates or times: a datetime column, or text whose values (a sample) read as dates or
    times of day (2024-03-01, 2024-03-01T10:00Z, 1/3/2024, 10:30)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return True
    present = series.dropna() if present is None else present
    if present.empty or pd.api.types.is_numeric_dtype(series):
        return False
    sample = present.astype(str).str.strip().head(DATE_SAMPLE)
    return bool(sample.str.match(_DATE_VALUE).mean() >= NUMERIC_PARSE_SHARE)


def infer_task(target: pd.Series) -> str:
    numeric = as_numeric(target)
    if numeric is None:
        return "classification"
    if _is_integer_valued(numeric) and numeric.nunique() <= CLASSIFICATION_INT_MAX_UNIQUE:
        return "classification"
    return "regression"


def class_labels(target: pd.Series) -> pd.Series:
    """Canonical string labels: integer-valued numbers lose their '.0' (1.0 and 1 are one class)."""
    numeric = as_numeric(target)
    if numeric is not None and _is_integer_valued(numeric):
        return numeric.map(lambda v: str(int(v)) if pd.notna(v) else None)
    return target.map(lambda v: str(v).strip() if pd.notna(v) else None)


def _sorted_classes(labels: pd.Series) -> list[str]:
    values = labels.dropna().unique().tolist()
    try:
        return sorted(values, key=float)
    except ValueError:
        return sorted(values)


def profile_columns(frame: pd.DataFrame, target: str) -> list[dict[str, Any]]:
    profile = []
    for name in frame.columns:
        series = frame[name]
        role = "target" if name == target else column_role(series)
        numeric = as_numeric(series)
        # A number column's infinities are missing to a model (_finite), so to the profile too.
        missing = numeric.isna() if pd.api.types.is_float_dtype(series) else series.isna()
        entry: dict[str, Any] = {
            "name": name,
            "role": role,
            "dtype": str(series.dtype),
            "missing_pct": round(float(missing.mean() * 100), 2),
            "unique": int(series.nunique()),
        }
        if numeric is not None and numeric.notna().any():
            entry.update(
                min=float(numeric.min()),
                max=float(numeric.max()),
                mean=float(numeric.mean()),
                std=float(numeric.std(ddof=0)),
            )
        else:
            top = series.dropna().astype(str).value_counts().head(5)
            entry["top_values"] = [str(v) for v in top.index]
        profile.append(entry)
    return profile


def build_schema(
    frame: pd.DataFrame, target: str, filename: str, text_column: str | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validate the target, drop rows without one, and describe every column.

    A text dataset (text_column given) has that column as its one feature.
    """
    n_before = len(frame)
    frame = frame[frame[target].notna()].reset_index(drop=True)
    dropped = n_before - len(frame)
    if frame.empty:
        raise DatasetError(f"Target column {target!r} is empty in every row of {filename}.")
    task = infer_task(frame[target])
    schema: dict[str, Any] = {
        "target": target,
        "task": task,
        "rows_dropped_missing_target": dropped,
    }
    if task == "classification":
        labels = class_labels(frame[target])
        classes = _sorted_classes(labels)
        if len(classes) < 2:
            raise DatasetError(
                f"Target column {target!r} has only one class ({classes[0]!r}); a classifier needs "
                "at least two. Pick another target column."
            )
        if len(classes) > MAX_CLASSES:
            raise DatasetError(
                f"Target column {target!r} has {len(classes):,} distinct values — too many classes "
                f"(limit {MAX_CLASSES}). If it is a number to predict, it needs more distinct "
                "values."
            )
        counts = labels.value_counts()
        schema["classes"] = classes
        schema["class_counts"] = {c: int(counts.get(c, 0)) for c in classes}
    else:
        # A few non-numbers ("n/a", "unknown") in a numeric target: drop those rows, keep a count.
        values = as_numeric(frame[target])
        keep = values.notna()
        schema["rows_dropped_non_numeric_target"] = int((~keep).sum())
        frame = frame[keep.to_numpy()].reset_index(drop=True)
        frame[target] = values[keep].to_numpy()
        schema["target_stats"] = {
            "min": float(frame[target].min()),
            "max": float(frame[target].max()),
            "mean": float(frame[target].mean()),
            "std": float(frame[target].std(ddof=0)),
        }
    schema["columns"] = profile_columns(frame, target)
    features = [c["name"] for c in schema["columns"] if c["role"] in FEATURE_ROLES]
    if text_column is not None:
        features = [text_column]
        for col in schema["columns"]:
            col["role"] = "text" if col["name"] == text_column else col["role"]
    if not features:
        raise DatasetError(
            f"{filename} has no usable feature columns besides the target (every other column is "
            "empty, constant or an identifier). Add a column the target depends on, or pick "
            "another target."
        )
    schema["features"] = features
    return frame, schema


def profile_table(record: StoredDataset) -> pd.DataFrame:
    """One row per column: role, dtype, missing %, distinct values, range or top values."""
    rows = []
    for col in record.schema["columns"]:
        if "mean" in col:
            summary = f"{col['min']:.4g} … {col['max']:.4g} (mean {col['mean']:.4g})"
        else:
            summary = ", ".join(display_text(v) for v in col.get("top_values", []))
        rows.append(
            {
                "column": display_text(col["name"]),  # shown on the page: user text
                "role": col["role"],
                "dtype": col["dtype"],
                "missing %": col["missing_pct"],
                "unique": col["unique"],
                "summary": summary,
            }
        )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- choosing the target

# Column names proposed as the target, best first: generic words for the *role* "what to
# predict", as datasets name it (scikit-learn's `target`, labelling tools' `label`, UCI's
# `class`, statistics' `y`, `outcome` and `response`, `category` in text classification).
# Domain words (`species`, `price`, `churn`, `Survived`) are left out on purpose: such a column
# is as often a feature as the target, and proposing the wrong one silently is the bug this
# replaces (the last column, `year` in a penguins table). Also matched: `*_target`, `*_label`,
# `target_*` (`sentiment_label`, `target_class`). Case, spaces and hyphens are ignored.
TARGET_NAMES = (
    "target",
    "label",
    "labels",
    "class",
    "y",
    "outcome",
    "response",
    "ground_truth",
    "category",
)
_TARGET_AFFIX = re.compile(r"^target_.+|.+_(target|label)$")
_SEPARATORS = re.compile(r"[\s.\-]+")
# Values that read as a date or a time of day: 2024-03-01, 2024-03-01T10:00, 1/3/2024, 10:30.
_DATE_VALUE = re.compile(
    r"^(\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}( \d{1,2}:\d{2}(:\d{2})?)?"
    r"|\d{1,2}:\d{2}(:\d{2})?)$"
)
_YEAR_NAME = re.compile(r"(^|_)(year|yr)$|^year_")
DATE_SAMPLE = 500  # values checked against _DATE_VALUE: the verdict needs no more
TYPE_SAMPLE = 10_000  # values that decide "numbers or text" and the mean text length
# A text or integer target with more distinct values than this share of its rows gives each
# class about one row: nothing to learn (a car's name: 311 classes in 406 rows).
IDENTIFIER_UNIQUE_SHARE = 0.5
MIN_ROWS_FOR_SHARE = 20  # below this, a column of distinct values proves nothing
FREE_TEXT_MEAN_CHARS = 30  # the same bound as column_role's "text"


def _normal_name(name: object) -> str:
    return _SEPARATORS.sub("_", str(name).strip().lower())


def propose_target(columns: list[str] | pd.Index) -> str | None:
    """The column named like a target (TARGET_NAMES, then `*_target`/`*_label`/`target_*`),
    or None: then the user must choose; the last column is never taken by default."""
    ranked = []
    for position, column in enumerate(columns):
        name = _normal_name(column)
        if name in TARGET_NAMES:
            ranked.append((TARGET_NAMES.index(name), position, column))
        elif _TARGET_AFFIX.match(name) and not _ID_NAME.search(name):
            ranked.append((len(TARGET_NAMES), position, column))
    return str(min(ranked)[2]) if ranked else None


@dataclass(frozen=True)
class TargetConcern:
    """Why a chosen target column is probably not what the user wants to predict."""

    code: str  # target_identifier | target_date | target_free_text
    message: str  # why, then what to pick instead

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def _pick_instead(columns: list[str] | pd.Index, target: str) -> str:
    proposed = propose_target([c for c in columns if c != target])
    if proposed is not None:
        return f"Pick {proposed!r}, which is named like a target, or another column to predict."
    return (
        "Pick the column that holds what you want to predict: a category with a few repeated "
        "values (classification) or a measured number (regression)."
    )


def _numeric_if_numbers(series: pd.Series) -> pd.Series | None:
    """as_numeric, decided on a sample first: parsing a million strings as numbers takes
    seconds, and the page runs this while the user picks a target."""
    text_dtype = series.dtype == object or isinstance(series.dtype, pd.StringDtype)
    if text_dtype and len(series) > TYPE_SAMPLE:
        if as_numeric(series.dropna().head(TYPE_SAMPLE)) is None:
            return None
    return as_numeric(series)


def _date_reason(series: pd.Series, present: pd.Series, numeric: pd.Series | None) -> str | None:
    if pd.api.types.is_datetime64_any_dtype(series):
        return "it holds dates"
    if numeric is not None:
        values = numeric.dropna()
        looks_like_years = _is_integer_valued(values) and values.between(1800, 2200).all()
        if looks_like_years and _YEAR_NAME.search(_normal_name(series.name)):
            return f"it holds years ({int(values.min())}–{int(values.max())})"
        return None
    sample = present.astype(str).str.strip().head(DATE_SAMPLE)
    if sample.str.match(_DATE_VALUE).mean() >= NUMERIC_PARSE_SHARE:
        return f"its values read as dates or times ({sample.iloc[0]!r}, …)"
    return None


def _identifier_reason(
    name: str, present: pd.Series, numeric: pd.Series | None, n_unique: int
) -> str | None:
    n = len(present)
    share = n_unique / n
    if _ID_NAME.search(name) and share >= 0.9:
        return "its name says it is an identifier and nearly every row has its own value"
    if n < MIN_ROWS_FOR_SHARE:
        return None
    if numeric is None and share > IDENTIFIER_UNIQUE_SHARE:
        return (
            f"nearly every row has its own value ({n_unique:,} different values in {n:,} rows, "
            f"{n / n_unique:.1f} rows per value), so there is nothing to learn per class"
        )
    if numeric is not None and n_unique == n and _is_integer_valued(numeric):
        values = numeric.dropna()
        if values.max() - values.min() + 1 == n:
            return (
                f"it numbers the rows ({int(values.min())}, {int(values.min()) + 1}, … once each)"
            )
    return None


def target_concern(frame: pd.DataFrame, target: str) -> TargetConcern | None:
    """A warning when `target` looks like an identifier, a date or free text — columns a model
    can be trained on but whose prediction is useless — or None. Checked before upload on the
    Datasets page and by `seedlab datasets add`; the bundled demo datasets raise none."""
    series = frame[target]
    present = series.dropna()
    n_unique = int(present.nunique())
    if n_unique < 2:
        return None  # build_schema refuses it with its own sentence
    numeric = _numeric_if_numbers(series)
    instead = _pick_instead(frame.columns, target)
    reason = _date_reason(series, present, numeric)
    if reason:
        return TargetConcern(
            "target_date",
            f"{target!r} looks like a date or time: {reason}. A model would learn when a row "
            f"was recorded, which is rarely the goal. {instead}",
        )
    if numeric is None:
        lengths = present.head(TYPE_SAMPLE).astype(str).str.len()
        if lengths.mean() > FREE_TEXT_MEAN_CHARS and n_unique / len(present) > 0.5:
            return TargetConcern(
                "target_free_text",
                f"{target!r} holds free text ({n_unique:,} different texts, "
                f"{lengths.mean():.0f} characters on average): a classifier needs a few "
                f"repeated categories, so texts are the input, not the target. {instead}",
            )
    reason = _identifier_reason(str(target), present, numeric, n_unique)
    if reason:
        return TargetConcern(
            "target_identifier",
            f"{target!r} looks like an identifier: {reason}. A model cannot learn to predict "
            f"a value that names one row. {instead}",
        )
    return None
