"""Writing a run moved in from another tracker (MLflow, TensorBoard) in one transaction: the
finished run, its tags and its whole metric history, so an import stopped half way leaves
whole runs only.

Reads: db/imports.py (which runs came from where), db/runs.py and db/metrics.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert

from db.metrics import Point
from db.models import run_tags, runs
from db.session import writing
from db.writes.metrics import insert_points

# Points per INSERT: SQLite binds at most 32766 parameters (5 per point).
CHUNK = 5000


def insert_finished_run(
    db: Engine,
    *,
    name: str,
    project_id: int,
    config: dict[str, Any],
    status: str,
    created_at: datetime,
    finished_at: datetime | None,
    points: list[Point],
    tags: Iterable[str] = (),
    notes: str = "",
    error: str | None = None,
    owner: str | None = None,
    source: str = "sdk",
) -> int:
    """Insert a finished run (no dataset, no worker) with its tags and points; its id."""
    with writing(db) as conn:
        run_id = conn.execute(
            insert(runs).values(
                name=name,
                dataset_id=None,
                config=config,
                status=status,
                cancel_requested=False,
                created_at=created_at,
                started_at=created_at,
                heartbeat_at=finished_at or created_at,
                finished_at=finished_at or created_at,
                error=error,
                notes=notes,
                project_id=project_id,
                archived=False,
                attempts=0,
                owner=owner,
                source=source,
            )
        ).inserted_primary_key[0]
        unique_tags = list(dict.fromkeys(t.strip()[:100] for t in tags if t.strip()))
        if unique_tags:
            conn.execute(insert(run_tags), [{"run_id": run_id, "tag": t} for t in unique_tags])
        for start in range(0, len(points), CHUNK):
            insert_points(conn, run_id, points[start : start + CHUNK])
        return run_id
