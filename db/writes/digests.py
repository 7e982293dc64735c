"""Storing curve digests (db/models.SqlMetricDigest): a finished run's series at a fixed
resolution, written when the run finishes and, for runs from before (or bulk-filled ones),
the first time a chart reads them (engine/services/curves.py). Reads: db/metrics.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import SQLAlchemyError

from db import metrics as metric_store
from db.metrics import Digest
from db.models import metric_digests
from db.session import writing

log = logging.getLogger(__name__)


def _row(digest: Digest) -> dict:
    s = digest.series
    last_step, last_value, low, high = digest.version
    return {
        "run_id": s.run_id,
        "key": s.key,
        "resolution": digest.resolution,
        "last_step": int(last_step),
        "last_value": float(last_value),
        "min_value": float(low),
        "max_value": float(high),
        "points": digest.points,
        "first_step": digest.first_step,
        "final_step": digest.final_step,
        "step_bytes": np.ascontiguousarray(s.steps, dtype="<i8").tobytes(),
        "value_bytes": np.ascontiguousarray(s.values, dtype="<f8").tobytes(),
        "wall_time_bytes": np.ascontiguousarray(s.wall_times, dtype="<f8").tobytes(),
    }


def store_digests(db: Engine, digests: list[Digest]) -> None:
    """Replace the stored digests of these (run, key)s, in one transaction."""
    if not digests:
        return
    with writing(db) as conn:
        for digest in digests:
            conn.execute(
                delete(metric_digests).where(
                    metric_digests.c.run_id == digest.series.run_id,
                    metric_digests.c.key == digest.series.key,
                )
            )
        conn.execute(insert(metric_digests), [_row(d) for d in digests])


def write_run_digests(db: Engine, run_id: int) -> int:
    """Digest every series of a run (called once it has finished); returns how many."""
    return write_digests(db, [run_id])


def write_digests(db: Engine, run_ids: Iterable[int]) -> int:
    """Digest every series of finished runs, stored in one transaction; returns how many.

    A digest is a copy the charts can rebuild: if writing it fails (the database busy or away
    for a moment, the run deleted meanwhile), the run's end is not held up, and the first
    chart that reads the run writes it instead.
    """
    ids = list(run_ids)
    try:
        digests = [
            metric_store.digest_of(series, version)
            for series, version in metric_store.series_for_digest(db, ids)
        ]
        store_digests(db, digests)
    except SQLAlchemyError as exc:
        log.warning("runs %s: curve digests not stored (%s); charts read them whole", ids, exc)
        return 0
    return len(digests)


def drop_digests(db: Engine, run_ids: Iterable[int]) -> None:
    """Forget the runs' digests (the next chart read rebuilds them): for benchmarks and repairs."""
    ids = sorted({int(i) for i in run_ids})
    with writing(db) as conn:
        conn.execute(delete(metric_digests).where(metric_digests.c.run_id.in_(ids)))
