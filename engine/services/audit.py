"""The audit trail as the services write it: one entry per action that succeeded.

Every service function that changes something ends with `record(db, actor, ...)`, so the
entry names the acting user as the permission check saw them. Reading the log is
db.audit.list_entries (the Admin page, `seedlab audit list`).
"""

from __future__ import annotations

from sqlalchemy import Engine

from db.writes import audit as audit_writes
from engine.services.permissions import Actor


def record(db: Engine, actor: Actor | str, action: str, target: str, detail: str = "") -> None:
    """Append one entry, e.g. record(db, actor, "launch", "run 12", "dataset iris"). `actor` is a
    name only where no Actor exists yet (a login, a logout)."""
    name = actor if isinstance(actor, str) else actor.name
    audit_writes.record(db, name, action, target, detail)
