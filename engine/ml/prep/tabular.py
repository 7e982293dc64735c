"""Tabular preprocessing fitted on the training split only: impute, standardize, one-hot.

The fitted state is plain JSON (medians, means, category lists) rather than a pickled
scikit-learn object, so a checkpoint loads with `torch.load(weights_only=True)` and the
Playground can apply it without unpickling anything.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from engine.core.errors import DatasetError
from engine.data.columns import as_numeric, class_labels
from engine.ml.prep.dates import DateSpec
from engine.ml.prep.words import WordsSpec

OTHER = "__other__"
MISSING = "__missing__"


def _numeric_values(series: pd.Series) -> pd.Series:
    """A numeric feature as floats; values that are not numbers become missing."""
    values = as_numeric(series)
    if values is None:
        values = pd.to_numeric(series, errors="coerce").astype("float64")
    return values


# A numeric column whose training values are this skewed (sample skewness) is put on a log
# scale before it is standardised: populations, prices, incomes, counts. Standardised as they
# are, most rows sit within a sliver of the scale and a few outliers at +10; the network then
# barely sees the differences that matter (gradient boosting, which splits on ranks, does).
LOG_SKEW = 2.0


def signed_log(values: np.ndarray) -> np.ndarray:
    """log(1 + |x|) with x's sign: monotonic, defined for every value, 0 stays 0."""
    return np.sign(values) * np.log1p(np.abs(values))


@dataclass
class NumericSpec:
    name: str
    median: float
    mean: float  # of the (log-scaled, when `log`) training values: what is standardised
    std: float
    add_missing_indicator: bool
    # The training range, for input widgets (Playground); None in checkpoints made before it.
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False
    log: bool = False  # signed_log before standardising (False in checkpoints made before it)

    def scale(self, filled: np.ndarray) -> np.ndarray:
        """Missing values already filled with the median → the network's input."""
        values = signed_log(filled) if self.log else filled
        return (values - self.mean) / self.std


@dataclass
class CategoricalSpec:
    name: str
    categories: list[str]
    has_other: bool
    has_missing: bool


@dataclass
class TabularPreprocessor:
    numeric: list[NumericSpec] = field(default_factory=list)
    categorical: list[CategoricalSpec] = field(default_factory=list)
    # Date and time columns, encoded after the categorical ones (engine/ml/prep/dates.py); empty
    # in checkpoints made before dates were features.
    dates: list[DateSpec] = field(default_factory=list)
    # Free-text columns beside the other features, as TF-IDF words (engine/ml/prep/words.py),
    # encoded last.
    words: list[WordsSpec] = field(default_factory=list)

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, schema: dict[str, Any], max_categories: int
    ) -> TabularPreprocessor:
        pre = cls()
        roles = {c["name"]: c["role"] for c in schema["columns"]}
        for name in schema["features"]:
            if name not in frame.columns:
                raise DatasetError(
                    f"Feature column {name!r} is missing from the dataset's data file."
                )
            if roles[name] == "date":
                pre.dates.append(DateSpec.fit(name, frame[name]))
            elif roles[name] == "text":
                pre.words.append(WordsSpec.fit(name, frame[name]))
            elif roles[name] == "numeric":
                values = _numeric_values(frame[name])
                present = values.dropna()
                median = float(present.median()) if len(present) else 0.0
                filled = values.fillna(median)
                skew = float(present.skew()) if present.nunique() > 2 else 0.0
                log = math.isfinite(skew) and abs(skew) > LOG_SKEW
                if log:
                    filled = pd.Series(signed_log(filled.to_numpy(dtype=np.float64)))
                std = float(filled.std(ddof=0))
                pre.numeric.append(
                    NumericSpec(
                        name=name,
                        median=median,
                        mean=float(filled.mean()),
                        std=std if std > 1e-12 else 1.0,
                        log=log,
                        add_missing_indicator=bool(values.isna().any()),
                        minimum=float(present.min()) if len(present) else None,
                        maximum=float(present.max()) if len(present) else None,
                        integer=bool(len(present)) and bool((present % 1 == 0).all()),
                    )
                )
            else:
                labels = class_labels(frame[name])
                counts = labels.value_counts()
                kept = [str(c) for c in counts.index[:max_categories]]
                pre.categorical.append(
                    CategoricalSpec(
                        name=name,
                        categories=kept,
                        has_other=len(counts) > len(kept),
                        has_missing=bool(labels.isna().any()),
                    )
                )
        return pre

    @property
    def feature_names(self) -> list[str]:
        names = []
        for spec in self.numeric:
            names.append(spec.name)
            if spec.add_missing_indicator:
                names.append(f"{spec.name}__is_missing")
        for spec in self.categorical:
            names += [f"{spec.name}={c}" for c in spec.categories]
            if spec.has_other:
                names.append(f"{spec.name}={OTHER}")
            if spec.has_missing:
                names.append(f"{spec.name}={MISSING}")
        for spec in [*self.dates, *self.words]:
            names += spec.feature_names
        return names

    @property
    def input_columns(self) -> list[str]:
        """The raw columns the encoder reads, in its order."""
        return [s.name for s in [*self.numeric, *self.categorical, *self.dates, *self.words]]

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        blocks: list[np.ndarray] = []
        for spec in self.numeric:
            if spec.name not in frame.columns:
                raise DatasetError(f"Input has no column {spec.name!r}, which the model needs.")
            values = _numeric_values(frame[spec.name])
            missing = values.isna().to_numpy()
            scaled = spec.scale(values.fillna(spec.median).to_numpy(dtype=np.float64))
            blocks.append(scaled[:, None])
            if spec.add_missing_indicator:
                blocks.append(missing[:, None].astype(np.float64))
        for spec in self.categorical:
            if spec.name not in frame.columns:
                raise DatasetError(f"Input has no column {spec.name!r}, which the model needs.")
            labels = class_labels(frame[spec.name])
            columns = list(spec.categories)
            if spec.has_other:
                columns.append(OTHER)
            if spec.has_missing:
                columns.append(MISSING)
            known = set(spec.categories)
            mapped = labels.map(
                lambda v, known=known: (
                    MISSING
                    if v is None or (isinstance(v, float) and np.isnan(v))
                    else (v if v in known else OTHER)
                )
            )
            if not spec.has_missing:
                mapped = mapped.replace(MISSING, OTHER)
            # A value with no column of its own (unseen, and no "other" bucket) becomes NaN here,
            # so it one-hot encodes to all zeros; pandas deprecates leaving it to Categorical.
            mapped = mapped.where(mapped.isin(columns))
            codes = pd.Categorical(mapped, categories=columns)
            onehot = np.zeros((len(frame), len(columns)))
            valid = codes.codes >= 0
            onehot[np.nonzero(valid)[0], codes.codes[valid]] = 1.0
            blocks.append(onehot)
        for spec in [*self.dates, *self.words]:
            if spec.name not in frame.columns:
                raise DatasetError(f"Input has no column {spec.name!r}, which the model needs.")
            blocks.append(spec.encode(frame[spec.name]))
        if not blocks:
            return np.zeros((len(frame), 0), dtype=np.float32)
        return np.hstack(blocks).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TabularPreprocessor:
        return cls(
            numeric=[NumericSpec(**d) for d in data["numeric"]],
            categorical=[CategoricalSpec(**d) for d in data["categorical"]],
            dates=[DateSpec(**d) for d in data.get("dates", [])],
            words=[WordsSpec(**d) for d in data.get("words", [])],
        )


@dataclass
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    stratified: bool


def split_frame(
    frame: pd.DataFrame,
    *,
    target: str,
    task: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> Splits:
    """Train/val/test split from the seed; stratified by class when every class allows it."""
    n = len(frame)
    n_test = max(1, round(n * test_fraction))
    n_val = max(1, round(n * val_fraction))
    if n - n_test - n_val < 2:
        raise DatasetError(
            f"The dataset has {n} rows — too few to split into train, validation and test. "
            "Add rows or lower val_fraction / test_fraction."
        )
    labels = class_labels(frame[target]) if task == "classification" else None
    stratified = labels is not None and labels.value_counts().min() >= 3
    try:
        rest, test = train_test_split(
            frame,
            test_size=n_test,
            random_state=seed,
            stratify=labels if stratified else None,
        )
        rest_labels = labels.loc[rest.index] if stratified else None
        train, val = train_test_split(
            rest,
            test_size=n_val,
            random_state=seed,
            stratify=rest_labels,
        )
    except ValueError:
        # A class too small for the requested sizes: fall back to a plain random split.
        stratified = False
        rest, test = train_test_split(frame, test_size=n_test, random_state=seed)
        train, val = train_test_split(rest, test_size=n_val, random_state=seed)
    return Splits(train=train, val=val, test=test, stratified=stratified)


@dataclass
class TargetEncoder:
    """Class names → indices for classification; standardization for regression targets."""

    task: str
    classes: list[str] = field(default_factory=list)
    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def fit(cls, train_target: pd.Series, task: str, classes: list[str] | None) -> TargetEncoder:
        if task == "classification":
            return cls(task=task, classes=list(classes or []))
        values = as_numeric(train_target)
        if values is None:
            raise DatasetError(
                "The target column is not numeric, so the run cannot do regression. "
                "Use task=classification or auto."
            )
        std = float(values.std(ddof=0))
        return cls(task=task, mean=float(values.mean()), std=std if std > 1e-12 else 1.0)

    def encode(self, target: pd.Series) -> np.ndarray:
        if self.task == "classification":
            index = {c: i for i, c in enumerate(self.classes)}
            labels = class_labels(target)
            unknown = sorted(set(labels.dropna()) - set(index))
            if unknown:
                raise DatasetError(f"Target values not seen at ingest: {unknown[:5]}")
            return np.array(labels.map(index), dtype=np.int64)
        values = as_numeric(target)
        return np.array(
            (values.to_numpy(dtype=np.float64) - self.mean) / self.std, dtype=np.float32
        )

    def decode_regression(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
