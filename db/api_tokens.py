"""API tokens (reads): a user's tokens for the HTTP API, by the hash of the token. The token
itself is never stored; engine/services/api_tokens.py makes and hashes it. Writes:
db/writes/api_tokens.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from db.models import api_tokens, users
from db.session import reading


@dataclass(frozen=True)
class TokenRecord:
    id: int
    user: str
    prefix: str
    label: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class TokenOwner:
    """Who a presented token belongs to, read fresh (a role change applies at once)."""

    token_id: int
    user: str
    role: str
    last_used_at: datetime | None


def _select():  # noqa: ANN202 - a Select
    return select(
        api_tokens.c.id,
        users.c.name.label("user"),
        api_tokens.c.prefix,
        api_tokens.c.label,
        api_tokens.c.created_at,
        api_tokens.c.last_used_at,
    ).join(users, users.c.id == api_tokens.c.user_id)


def list_tokens(db: Engine, user: str | None = None) -> list[TokenRecord]:
    """Tokens, newest first; of one user when `user` is given."""
    stmt = _select().order_by(api_tokens.c.created_at.desc(), api_tokens.c.id.desc())
    if user is not None:
        stmt = stmt.where(users.c.name == user)
    with reading(db) as conn:
        return [TokenRecord(**r._mapping) for r in conn.execute(stmt)]


def get_token(db: Engine, token_id: int) -> TokenRecord | None:
    with reading(db) as conn:
        row = conn.execute(_select().where(api_tokens.c.id == token_id)).first()
    return None if row is None else TokenRecord(**row._mapping)


def owner_of(db: Engine, token_hash: str) -> TokenOwner | None:
    stmt = (
        select(
            api_tokens.c.id.label("token_id"),
            users.c.name.label("user"),
            users.c.role,
            api_tokens.c.last_used_at,
        )
        .join(users, users.c.id == api_tokens.c.user_id)
        .where(api_tokens.c.token_hash == token_hash)
    )
    with reading(db) as conn:
        row = conn.execute(stmt).first()
    return None if row is None else TokenOwner(**row._mapping)
