"""The audit log: who did what to which thing, when. Reading it; the services append to it
(engine/services/audit.py, through db/writes/audit.py), one entry per action."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from db.models import audit_log
from db.session import reading

TARGET_MAX = 200


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    user: str
    action: str
    target: str
    detail: str


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
