"""Share link writes: add (the token's hash only), revoke, and count an opening.

Reads: db/share_links.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, update

from db.models import share_links
from db.session import utcnow, writing


def add_link(
    db: Engine,
    *,
    token_hash: str,
    kind: str,
    target: dict[str, Any],
    created_by: str,
    expires_at: datetime | None,
) -> int:
    with writing(db) as conn:
        return conn.execute(
            insert(share_links).values(
                token_hash=token_hash,
                kind=kind,
                target=target,
                created_by=created_by,
                created_at=utcnow(),
                expires_at=expires_at,
                revoked_at=None,
                revoked_by=None,
                last_opened_at=None,
                opens=0,
            )
        ).inserted_primary_key[0]


def revoke_link(db: Engine, link_id: int, by: str) -> bool:
    """Revoke a link not revoked yet; False when it was (the first revocation is kept)."""
    with writing(db) as conn:
        return (
            conn.execute(
                update(share_links)
                .where(share_links.c.id == link_id, share_links.c.revoked_at.is_(None))
                .values(revoked_at=utcnow(), revoked_by=by)
            ).rowcount
            > 0
        )


def mark_opened(db: Engine, link_id: int, at: datetime | None = None) -> None:
    """One more session opened the link (an UPDATE of the count, so two at once both count)."""
    with writing(db) as conn:
        conn.execute(
            update(share_links)
            .where(share_links.c.id == link_id)
            .values(last_opened_at=at or utcnow(), opens=share_links.c.opens + 1)
        )
