"""What the charts draw of long metric series: every point is read as bare numbers (an exact
minimum needs them all), then each run's series is cut down to the first and last points and
the minimum and maximum of equal stretches, so Compare of 100 runs × 10,000 steps sends 100,000
points to the browser instead of 1,000,000, and no DataFrame of the whole history is built.

Window functions doing the same inside SQLite took about four times as long as this read on
the bench machine (bench/bench_compare_browser.py has the figures)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from db import metrics as metric_store
from engine.report.compare_charts import minmax_indices


def drawn_history(
    db: Engine, run_ids: Iterable[int], keys: Iterable[str], max_points: int
) -> pd.DataFrame:
    """The runs' series as `metric_history` columns (run_id, key, step, value, wall_time), at
    most `max_points` points per (run, key), in run, key and step order; logged NaNs and
    infinite values (nothing to draw) are left out."""
    ids = list(run_ids)
    parts: dict[str, list[np.ndarray]] = {c: [] for c in metric_store.HISTORY_COLUMNS}
    for key in dict.fromkeys(keys):
        for series in metric_store.drawable_series(db, ids, key):
            finite = np.flatnonzero(np.isfinite(series.values))
            keep = finite[minmax_indices(series.values[finite], max_points)]
            parts["run_id"].append(np.full(len(keep), series.run_id, dtype=np.int64))
            parts["key"].append(np.full(len(keep), key, dtype=object))
            parts["step"].append(series.steps[keep])
            parts["value"].append(series.values[keep])
            parts["wall_time"].append(series.wall_times[keep])
    if not parts["run_id"]:
        return pd.DataFrame({c: [] for c in metric_store.HISTORY_COLUMNS})
    frame = pd.DataFrame({c: np.concatenate(v) for c, v in parts.items()})
    return frame.sort_values(["run_id", "key", "step"], kind="stable", ignore_index=True)
