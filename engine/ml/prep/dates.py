"""Date and time columns as model features: the year (standardized) and cyclical sin/cos
encodings of the month, the day of the week, the day of the year and, when the column holds
times, the time of day. Cyclical so that December sits next to January and Sunday next to
Monday; fitted on the training split only (the year's mean and spread, the median date that
fills a missing one). engine/deploy/bundle_predict.py repeats `encode` with pandas alone: a
test checks that the two agree."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

# The parts a date becomes, in order; "hour" only for columns with times of day, the date parts
# only for columns with dates (not a bare time such as 10:30).
DATE_PARTS = ("year", "month", "weekday", "day_of_year")
_TIME_ONLY = r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$"


def parse_dates(series: pd.Series) -> pd.Series:
    """Naive UTC timestamps; what does not read as a date or time becomes NaT. Text with a time
    zone is converted to UTC, text without one is taken as it reads."""
    if pd.api.types.is_datetime64_any_dtype(series):
        values = series
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return values.astype("datetime64[ns]")
    text = series.astype("string").str.strip()
    parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=True)
    return parsed.dt.tz_localize(None).astype("datetime64[ns]")


def _cyclic(values: np.ndarray, period: float) -> list[np.ndarray]:
    angle = 2 * np.pi * values / period
    return [np.sin(angle), np.cos(angle)]


@dataclass
class DateSpec:
    name: str
    has_date: bool  # False: bare times of day (10:30), with no day to take parts from
    has_time: bool  # some value carries a time of day other than midnight
    year_mean: float
    year_std: float
    fill: str  # the median training value (ISO), for missing and unreadable inputs
    add_missing_indicator: bool
    minimum: str | None = None  # the training range (ISO), for the Playground's default
    maximum: str | None = None

    @classmethod
    def fit(cls, name: str, series: pd.Series) -> DateSpec:
        values = parse_dates(series)
        present = values.dropna()
        text = series.dropna().astype(str).str.strip()
        has_date = not (len(text) and text.str.match(_TIME_ONLY).all())
        median = present.sort_values().iloc[len(present) // 2] if len(present) else None
        years = present.dt.year.astype("float64")
        std = float(years.std(ddof=0)) if len(years) else 0.0
        clock = present.dt.hour * 60 + present.dt.minute if len(present) else pd.Series([])
        return cls(
            name=name,
            has_date=bool(has_date),
            has_time=bool((clock != 0).any()),
            year_mean=float(years.mean()) if len(years) else 0.0,
            year_std=std if std > 1e-12 else 1.0,
            fill=median.isoformat() if median is not None else "2000-01-01T00:00:00",
            add_missing_indicator=bool(values.isna().any()),
            minimum=present.min().isoformat() if len(present) else None,
            maximum=present.max().isoformat() if len(present) else None,
        )

    @property
    def feature_names(self) -> list[str]:
        names = []
        if self.has_date:
            names.append(f"{self.name}:year")
            for part in DATE_PARTS[1:]:
                names += [f"{self.name}:{part}_sin", f"{self.name}:{part}_cos"]
        if self.has_time:
            names += [f"{self.name}:hour_sin", f"{self.name}:hour_cos"]
        if self.add_missing_indicator:
            names.append(f"{self.name}__is_missing")
        return names

    @property
    def width(self) -> int:
        return len(self.feature_names)

    def encode(self, series: pd.Series) -> np.ndarray:
        values = parse_dates(series)
        missing = values.isna().to_numpy()
        filled = values.fillna(pd.Timestamp(self.fill))
        blocks: list[np.ndarray] = []
        if self.has_date:
            year = filled.dt.year.to_numpy(dtype=np.float64)
            blocks.append((year - self.year_mean) / self.year_std)
            blocks += _cyclic(filled.dt.month.to_numpy(dtype=np.float64) - 1, 12)
            blocks += _cyclic(filled.dt.day_of_week.to_numpy(dtype=np.float64), 7)
            blocks += _cyclic(filled.dt.day_of_year.to_numpy(dtype=np.float64) - 1, 365.25)
        if self.has_time:
            hours = filled.dt.hour + filled.dt.minute / 60 + filled.dt.second / 3600
            blocks += _cyclic(hours.to_numpy(dtype=np.float64), 24)
        if self.add_missing_indicator:
            blocks.append(missing.astype(np.float64))
        if not blocks:
            return np.zeros((len(series), 0))
        return np.stack(blocks, axis=1)
