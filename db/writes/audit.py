"""Appending to the audit log. Services call `record(...)` once per action they did.

Reads: db/audit.py.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, insert

from db.audit import TARGET_MAX
from db.models import audit_log
from db.session import utcnow, writing


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
