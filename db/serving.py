"""Served models (reads): which registered names answer predictions over HTTP, the target a
request resolves to (the serving row and the current production version, in one query), and
the request log. The token itself is never stored; engine/services/serving.py makes and hashes
it. Writes: db/writes/serving.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, Select, and_, func, select

from db.models import model_versions, serve_requests, served_models
from db.session import reading


@dataclass(frozen=True)
class ServedModel:
    name: str
    token_prefix: str
    enabled: bool
    created_by: str
    created_at: datetime
    token_created_at: datetime


@dataclass(frozen=True)
class ServeTarget:
    """What one request to `name` needs, read fresh: the token to compare with, whether serving
    is on, and the production version (None: nothing in production)."""

    name: str
    token_hash: str
    enabled: bool
    version: int | None
    run_id: int | None


@dataclass(frozen=True)
class ServeRequest:
    id: int
    model: str
    version: int | None
    at: datetime
    status: int
    latency_ms: float
    items: int
    client: str
    error: str | None


def _served_rows() -> Select:
    """The columns of a ServedModel (never the token's hash)."""
    return select(
        served_models.c.name,
        served_models.c.token_prefix,
        served_models.c.enabled,
        served_models.c.created_by,
        served_models.c.created_at,
        served_models.c.token_created_at,
    )


def get_served(db: Engine, name: str) -> ServedModel | None:
    stmt = _served_rows().where(served_models.c.name == name)
    with reading(db) as conn:
        row = conn.execute(stmt).first()
    return None if row is None else ServedModel(**row._mapping)


def list_served(db: Engine) -> list[ServedModel]:
    stmt = _served_rows().order_by(served_models.c.name)
    with reading(db) as conn:
        return [ServedModel(**r._mapping) for r in conn.execute(stmt)]


def target(db: Engine, name: str) -> ServeTarget | None:
    """The serving row of `name` joined to its production version (one query per request:
    a promotion applies to the very next request). None when `name` was never served."""
    production = and_(
        model_versions.c.name == served_models.c.name, model_versions.c.stage == "production"
    )
    stmt = (
        select(
            served_models.c.name,
            served_models.c.token_hash,
            served_models.c.enabled,
            model_versions.c.version,
            model_versions.c.run_id,
        )
        .select_from(served_models.outerjoin(model_versions, production))
        .where(served_models.c.name == name)
    )
    with reading(db) as conn:
        row = conn.execute(stmt).first()
    return None if row is None else ServeTarget(**row._mapping)


def recent_requests(db: Engine, name: str, limit: int = 100) -> list[ServeRequest]:
    """The newest requests to `name`, newest first."""
    stmt = (
        select(serve_requests)
        .where(serve_requests.c.model == name)
        .order_by(serve_requests.c.id.desc())
        .limit(limit)
    )
    with reading(db) as conn:
        return [ServeRequest(**r._mapping) for r in conn.execute(stmt)]


def request_count(db: Engine, name: str) -> int:
    """How many requests to `name` the log holds (it keeps the newest ones only)."""
    stmt = select(func.count()).select_from(serve_requests).where(serve_requests.c.model == name)
    with reading(db) as conn:
        return int(conn.execute(stmt).scalar() or 0)
