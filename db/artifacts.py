"""Files a run produced (checkpoint, report, log), with size and checksum."""

from __future__ import annotations

from sqlalchemy import Engine, delete, insert, select

from db.models import artifacts
from db.records import ArtifactRecord
from db.session import reading, utcnow, writing


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


def list_artifacts(db: Engine, run_id: int) -> list[ArtifactRecord]:
    with reading(db) as conn:
        rows = conn.execute(
            select(artifacts).where(artifacts.c.run_id == run_id).order_by(artifacts.c.id)
        ).all()
    return [ArtifactRecord(**r._mapping) for r in rows]
