"""Served-model writes: turn serving on (a new row or a re-enabled one), off, a new token hash,
and the request log with its pruning.

Reads: db/serving.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update

from db.models import serve_requests, served_models
from db.session import utcnow, writing

# The request log keeps this many newest rows per model, so it cannot grow without bound.
KEEP_REQUESTS = 10_000
# Pruning is a DELETE over the model's rows: done once every this many logged requests (the
# log may run this far over KEEP_REQUESTS in between).
PRUNE_EVERY = 200


def upsert_served(
    db: Engine, name: str, *, token_hash: str | None, token_prefix: str | None, actor: str
) -> None:
    """Serving on for `name`. A new row needs a token hash; an existing row keeps its token
    unless `token_hash` is given."""
    now = utcnow()
    with writing(db) as conn:
        exists = conn.execute(
            select(served_models.c.id).where(served_models.c.name == name)
        ).scalar()
        if exists is None:
            assert token_hash is not None and token_prefix is not None
            conn.execute(
                insert(served_models).values(
                    name=name,
                    token_hash=token_hash,
                    token_prefix=token_prefix,
                    enabled=True,
                    created_by=actor,
                    created_at=now,
                    token_created_at=now,
                )
            )
            return
        values: dict[str, object] = {"enabled": True}
        if token_hash is not None:
            values.update(token_hash=token_hash, token_prefix=token_prefix, token_created_at=now)
        conn.execute(update(served_models).where(served_models.c.id == exists).values(**values))


def set_enabled(db: Engine, name: str, enabled: bool) -> bool:
    """False when `name` has no serving row."""
    with writing(db) as conn:
        result = conn.execute(
            update(served_models).where(served_models.c.name == name).values(enabled=enabled)
        )
        return result.rowcount > 0


def set_token(db: Engine, name: str, *, token_hash: str, token_prefix: str) -> bool:
    """A new token for `name` (the old one stops working at once); False when not served."""
    with writing(db) as conn:
        result = conn.execute(
            update(served_models)
            .where(served_models.c.name == name)
            .values(token_hash=token_hash, token_prefix=token_prefix, token_created_at=utcnow())
        )
        return result.rowcount > 0


def log_request(
    db: Engine,
    name: str,
    *,
    version: int | None,
    status: int,
    latency_ms: float,
    items: int,
    client: str,
    error: str | None = None,
    at: datetime | None = None,
) -> int:
    """Add one request to the log; every PRUNE_EVERY rows, drop the model's rows beyond the
    newest KEEP_REQUESTS. Returns the row's id."""
    with writing(db) as conn:
        row_id = conn.execute(
            insert(serve_requests).values(
                model=name,
                version=version,
                at=at or utcnow(),
                status=status,
                latency_ms=latency_ms,
                items=items,
                client=client[:100],
                error=error,
            )
        ).inserted_primary_key[0]
        if row_id % PRUNE_EVERY == 0:
            _prune(conn, name)
        return row_id


def prune_requests(db: Engine, name: str, keep: int = KEEP_REQUESTS) -> None:
    with writing(db) as conn:
        _prune(conn, name, keep)


def _prune(conn, name: str, keep: int = KEEP_REQUESTS) -> None:  # noqa: ANN001 - a Connection
    oldest_kept = conn.execute(
        select(serve_requests.c.id)
        .where(serve_requests.c.model == name)
        .order_by(serve_requests.c.id.desc())
        .offset(keep - 1)
        .limit(1)
    ).scalar()
    if oldest_kept is not None:
        conn.execute(
            delete(serve_requests).where(
                serve_requests.c.model == name, serve_requests.c.id < oldest_kept
            )
        )
