"""Recording a file a run produced (checkpoint, report, log, export), with size and checksum.

Reads: db/artifacts.py.
"""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert

from db.models import artifacts
from db.session import utcnow, writing


def add_artifact(
    db: Engine, run_id: int, *, kind: str, path: str, size_bytes: int, sha256: str
) -> int:
    """Record a file; a second record of the same run, kind and path replaces the first."""
    with writing(db) as conn:
        conn.execute(
            delete(artifacts).where(
                artifacts.c.run_id == run_id, artifacts.c.kind == kind, artifacts.c.path == path
            )
        )
        return conn.execute(
            insert(artifacts).values(
                run_id=run_id,
                kind=kind,
                path=path,
                bytes=size_bytes,
                sha256=sha256,
                created_at=utcnow(),
            )
        ).inserted_primary_key[0]


def forget_artifacts(db: Engine, run_id: int, paths: list[str]) -> int:
    """Drop the rows of files a clean-up deleted (paths relative to the run's folder); returns
    how many rows went."""
    if not paths:
        return 0
    with writing(db) as conn:
        return conn.execute(
            delete(artifacts).where(artifacts.c.run_id == run_id, artifacts.c.path.in_(paths))
        ).rowcount
