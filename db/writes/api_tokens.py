"""API token writes: add (the hash only), revoke, and the last-used time.

Reads: db/api_tokens.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update

from db.models import api_tokens, users
from db.session import utcnow, writing
from db.users import UserNotFound


def add_token(db: Engine, user: str, *, token_hash: str, prefix: str, label: str = "") -> int:
    with writing(db) as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.name == user)).scalar()
        if user_id is None:
            raise UserNotFound(f"No user {user!r}.")
        return conn.execute(
            insert(api_tokens).values(
                user_id=user_id,
                token_hash=token_hash,
                prefix=prefix,
                label=label,
                created_at=utcnow(),
                last_used_at=None,
            )
        ).inserted_primary_key[0]


def remove_token(db: Engine, token_id: int) -> bool:
    with writing(db) as conn:
        return conn.execute(delete(api_tokens).where(api_tokens.c.id == token_id)).rowcount > 0


def mark_used(db: Engine, token_id: int, at: datetime | None = None) -> None:
    with writing(db) as conn:
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.id == token_id)
            .values(last_used_at=at or utcnow())
        )
