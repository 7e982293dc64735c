"""Files a run produced (checkpoint, report, log), with size and checksum. Writes:
db/writes/artifacts.py."""

from __future__ import annotations

from sqlalchemy import Engine, select

from db.models import artifacts
from db.records import ArtifactRecord
from db.session import reading


def list_artifacts(db: Engine, run_id: int) -> list[ArtifactRecord]:
    with reading(db) as conn:
        rows = conn.execute(
            select(artifacts).where(artifacts.c.run_id == run_id).order_by(artifacts.c.id)
        ).all()
    return [ArtifactRecord(**r._mapping) for r in rows]
