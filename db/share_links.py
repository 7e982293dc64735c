"""Share links (reads): read-only links to one view, found by the hash of their token. The token
itself is never stored; engine/services/share_links.py makes, hashes and checks it. Writes:
db/writes/share_links.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, or_, select

from db.models import share_links
from db.session import reading


@dataclass(frozen=True)
class ShareLinkRecord:
    id: int
    kind: str  # "run", "compare" or "model"
    target: dict[str, Any]  # {"run": 3}, {"runs": [3, 4]}, {"model": "name"} or {"model_run": 7}
    created_by: str
    created_at: datetime
    expires_at: datetime | None  # None: never
    revoked_at: datetime | None
    revoked_by: str | None
    last_opened_at: datetime | None
    opens: int

    def live_at(self, now: datetime) -> bool:
        """Not revoked and not expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


def _select():  # noqa: ANN202 - a Select
    return select(
        share_links.c.id,
        share_links.c.kind,
        share_links.c.target,
        share_links.c.created_by,
        share_links.c.created_at,
        share_links.c.expires_at,
        share_links.c.revoked_at,
        share_links.c.revoked_by,
        share_links.c.last_opened_at,
        share_links.c.opens,
    )


def _record(row: Any) -> ShareLinkRecord:  # noqa: ANN401 - a Row
    values = dict(row._mapping)
    values["target"] = dict(values["target"] or {})
    return ShareLinkRecord(**values)


def get_link(db: Engine, link_id: int) -> ShareLinkRecord | None:
    with reading(db) as conn:
        row = conn.execute(_select().where(share_links.c.id == link_id)).first()
    return None if row is None else _record(row)


def link_by_hash(db: Engine, token_hash: str) -> ShareLinkRecord | None:
    with reading(db) as conn:
        row = conn.execute(_select().where(share_links.c.token_hash == token_hash)).first()
    return None if row is None else _record(row)


def live_links(db: Engine, now: datetime, created_by: str | None = None) -> list[ShareLinkRecord]:
    """Links not revoked and not expired at `now`, newest first; of one user when given."""
    stmt = (
        _select()
        .where(
            share_links.c.revoked_at.is_(None),
            or_(share_links.c.expires_at.is_(None), share_links.c.expires_at > now),
        )
        .order_by(share_links.c.created_at.desc(), share_links.c.id.desc())
    )
    if created_by is not None:
        stmt = stmt.where(share_links.c.created_by == created_by)
    with reading(db) as conn:
        return [_record(r) for r in conn.execute(stmt)]
