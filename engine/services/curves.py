"""What the charts draw of long metric series, chosen in SQL (db.metrics.downsampled_series):
per run, the first and last points and the lowest and highest point of each of equal stretches
of steps, so Compare of 100 runs × 10,000 steps reads 30,000 rows out of the database instead
of 1,000,000, and no DataFrame of the whole history is built.

The drawn series are kept in memory (a few hundred KB for a 100-run comparison), keyed by the
run's summary of that metric (last step and value, min, max), which changes with every point
written: reopening Compare, changing its scale, or the Run page's refresh of a finished run
read only the small summary rows again; a running run's new points are read at once.

Below that cache, a finished run is drawn from its stored digest (db/models.SqlMetricDigest,
DIGEST_POINTS points at most, written when the run finished): a first read after a restart, or
in another process, reads one row per run instead of walking its points. A finished run with
no digest matching its summary (a run from before digests, a bulk-filled one, points written
since) gets one, picked in SQL, stored for the next read. Running and queued runs are read live.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from db import metrics as metric_store
from db.models import FINISHED_STATUSES
from db.writes import digests as digest_writes

# (database, run, key, max_points, summary) → (steps, values, wall times) as drawn.
Drawn = tuple[np.ndarray, np.ndarray, np.ndarray]
# At most 2,000 series × 2,000 points × 24 bytes (96 MB); a 100-run comparison holds ~1 MB.
CACHE_SERIES = 2000
_cache: OrderedDict[tuple, Drawn] = OrderedDict()
log = logging.getLogger(__name__)
_lock = threading.Lock()  # the dashboard serves each browser session from its own thread


def _cached(key: tuple) -> Drawn | None:
    with _lock:
        found = _cache.get(key)
        if found is not None:
            _cache.move_to_end(key)
        return found


def _store(key: tuple, drawn: Drawn) -> None:
    with _lock:
        _cache[key] = drawn
        _cache.move_to_end(key)
        while len(_cache) > CACHE_SERIES:
            _cache.popitem(last=False)


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def drawn_history(
    db: Engine, run_ids: Iterable[int], keys: Iterable[str], max_points: int
) -> pd.DataFrame:
    """The runs' series as `metric_history` columns (run_id, key, step, value, wall_time), at
    most `max_points` points per (run, key), in run, key and step order; logged NaNs and
    infinite values (nothing to draw) are left out."""
    ids = list(dict.fromkeys(int(i) for i in run_ids))
    where = str(db.url)
    parts: dict[str, list[np.ndarray]] = {c: [] for c in metric_store.HISTORY_COLUMNS}
    for key in dict.fromkeys(keys):
        versions = metric_store.series_versions(db, ids, key)
        cache_keys = {r: (where, r, key, max_points, v) for r, v in versions.items()}
        drawn = {r: _cached(k) for r, k in cache_keys.items()}
        missing = [r for r, d in drawn.items() if d is None]
        for series in _read(db, missing, key, versions, max_points):
            got = (series.steps, series.values, series.wall_times)
            drawn[series.run_id] = got
            _store(cache_keys[series.run_id], got)
        for run_id in sorted(r for r, d in drawn.items() if d is not None):
            steps, values, walls = drawn[run_id]
            parts["run_id"].append(np.full(len(steps), run_id, dtype=np.int64))
            parts["key"].append(np.full(len(steps), key, dtype=object))
            parts["step"].append(steps)
            parts["value"].append(values)
            parts["wall_time"].append(walls)
    if not parts["run_id"]:
        return pd.DataFrame({c: [] for c in metric_store.HISTORY_COLUMNS})
    frame = pd.DataFrame({c: np.concatenate(v) for c, v in parts.items()})
    return frame.sort_values(["run_id", "key", "step"], kind="stable", ignore_index=True)


def _read(
    db: Engine, run_ids: list[int], key: str, versions: dict, max_points: int
) -> list[metric_store.MetricSeries]:
    """The drawn series of runs not in memory: finished runs from their digests (stored first
    where missing or stale), the others, and requests finer than a digest, chosen in SQL."""
    if not run_ids:
        return []
    live: list[int] = run_ids
    found: list[metric_store.MetricSeries] = []
    if max_points <= metric_store.DIGEST_POINTS:
        statuses, digests = metric_store.stored_digests(db, run_ids, key)
        live = [r for r in run_ids if statuses.get(r) not in FINISHED_STATUSES]
        finished = [r for r in run_ids if statuses.get(r) in FINISHED_STATUSES]
        valid = {
            r: digests[r]
            for r in finished
            if r in digests
            and digests[r].version == versions[r]
            and digests[r].resolution == metric_store.DIGEST_POINTS
        }
        stale = [r for r in finished if r not in valid]
        if stale:
            valid.update(_heal(db, stale, key))
        found = [valid[r].drawn(max_points) for r in finished if r in valid]
        # A run left without a digest (its summary went meanwhile: points discarded) is read
        # live, as a running run is.
        live += [r for r in finished if r not in valid]
    if live:
        found += metric_store.downsampled_series(db, live, key, max_points)
    return [s for s in found if len(s)]


def _heal(db: Engine, run_ids: list[int], key: str) -> dict[int, metric_store.Digest]:
    """Digests of finished runs that had none (or a stale one), picked in SQL, stored for the
    next read, in this process or another."""
    made = {d.series.run_id: d for d in metric_store.digests_in_sql(db, run_ids, key)}
    try:
        digest_writes.store_digests(db, list(made.values()))
    except SQLAlchemyError as exc:  # a reader never fails for a cache it could not write
        log.warning("curve digests of %d run(s) were not stored (%s)", len(made), exc)
    return made
