"""Remote stream writes: create a run the SDK logs over HTTP (with its client key, in one
transaction), and advance its applied-lines count. Reads: db/remote_streams.py."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, insert, update

from db.models import DEFAULT_PROJECT_ID, remote_streams, runs
from db.session import writing
from db.writes.runs import sdk_run_values


def create_remote_run(
    db: Engine,
    *,
    client_key: str,
    name: str,
    config: dict[str, Any],
    owner: str,
    project_id: int = DEFAULT_PROJECT_ID,
    dataset_id: int | None = None,
    lines_applied: int = 1,
) -> int:
    """An SDK run (`running` from the start, source "sdk") and its stream row, together: a
    create sent twice with one key makes one run (IntegrityError for the second)."""
    with writing(db) as conn:
        values = sdk_run_values(name, config, project_id, dataset_id, owner)
        run_id = conn.execute(insert(runs).values(**values)).inserted_primary_key[0]
        conn.execute(
            insert(remote_streams).values(
                run_id=run_id, client_key=client_key, lines_applied=lines_applied
            )
        )
    return run_id


def advance(db: Engine, run_id: int, lines_applied: int) -> None:
    """Move the count forward, never back (a late duplicate request cannot undo progress)."""
    with writing(db) as conn:
        conn.execute(
            update(remote_streams)
            .where(
                remote_streams.c.run_id == run_id, remote_streams.c.lines_applied < lines_applied
            )
            .values(lines_applied=lines_applied)
        )
