"""Files a run produced (checkpoint, report, log), with size and checksum. Writes:
db/writes/artifacts.py."""

from __future__ import annotations

from typing import Any

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


# ---------------------------------------------------------------- moved to db.writes (transitional)
# The writes of this module now live in db/writes/artifacts.py. engine/cli/* and engine/execution/*
# (restructured on other branches during issue 17) still reach some of them here; this lazy
# forward keeps them working until they import db.writes.artifacts (or call a service) themselves.
# Delete it then: while it is here, importing this module can still reach a write.
_MOVED_TO_WRITES = frozenset({"add_artifact"})


def __getattr__(name: str) -> Any:  # noqa: ANN401
    if name in _MOVED_TO_WRITES:
        from db.writes import artifacts as writes

        return getattr(writes, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
