"""The audit log: who did what to which thing, when. One call per action: `record(...)`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select

from db.models import audit_log
from db.session import reading, utcnow, writing

TARGET_MAX = 200


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    user: str
    action: str
    target: str
    detail: str


def record(db: Engine | Connection, user: str, action: str, target: str, detail: str = "") -> None:
    """Append one entry, e.g. record(db, "ana", "launch", "run 12", "dataset iris").

    Pass a Connection to write it in the same transaction as the change it describes.
    """
    values = dict(
        at=utcnow(),
        user_name=user,
        action=action,
        target=str(target)[:TARGET_MAX],
        detail=detail,
    )
    if isinstance(db, Connection):
        db.execute(insert(audit_log).values(**values))
        return
    with writing(db) as conn:
        conn.execute(insert(audit_log).values(**values))


def list_entries(
    db: Engine,
    *,
    user: str | None = None,
    action: str | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """Newest first."""
    stmt = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit)
    if user is not None:
        stmt = stmt.where(audit_log.c.user_name == user)
    if action is not None:
        stmt = stmt.where(audit_log.c.action == action)
    with reading(db) as conn:
        rows = conn.execute(stmt).all()
    return [AuditEntry(r.id, r.at, r.user_name, r.action, r.target, r.detail or "") for r in rows]
