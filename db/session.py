"""Engine construction (SQLite pragmas, or a PostgreSQL pool) and the read/write scopes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, event, make_url

_READ_ONLY = "seedlab_read_only"
SQLITE_PRAGMAS = ("journal_mode=WAL", "busy_timeout=10000", "foreign_keys=ON", "synchronous=NORMAL")


def utcnow() -> datetime:
    """Naive UTC timestamp: SQLite has no time zones, so every stored time is UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def make_engine(url: str) -> Engine:
    """Create an Engine; for SQLite, WAL + busy timeout + foreign keys and write-locking BEGINs;
    for PostgreSQL (and any other server), a checked pool."""
    if not url.startswith("sqlite"):
        return create_engine(
            url,
            # A server restart or an idle timeout kills pooled connections; pre-ping replaces
            # them instead of failing the next claim or heartbeat.
            pool_pre_ping=True,
            pool_recycle=1800,
            # Writes rely on row locks (FOR UPDATE, SKIP LOCKED in claims) and guarded UPDATEs,
            # which is what READ COMMITTED is for; readers ask for a snapshot in reading().
            isolation_level="READ COMMITTED",
            connect_args=_server_connect_args(url),
        )

    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        # Let SQLAlchemy's "begin" event below issue BEGIN itself.
        dbapi_conn.isolation_level = None
        for pragma in SQLITE_PRAGMAS:
            dbapi_conn.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        # Writers take the lock up front (IMMEDIATE), so two writers queue on busy_timeout
        # instead of failing with "database is locked" when a read upgrades to a write.
        # Readers use a plain deferred BEGIN: under WAL they never block the writer.
        if conn.get_execution_options().get(_READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _server_connect_args(url: str) -> dict[str, object]:
    if url.startswith("postgresql"):
        # Fail fast with a clear driver error instead of hanging on an unreachable server.
        return {"connect_timeout": 10, "application_name": "seedlab"}
    return {}


def _read_options(engine: Engine) -> dict[str, object]:
    if engine.dialect.name == "postgresql":
        # One snapshot for the whole read (as SQLite's WAL gives), and no accidental writes.
        return {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
    return {_READ_ONLY: True}


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for queries only (a snapshot; never takes SQLite's write lock)."""
    with engine.connect().execution_options(**_read_options(engine)) as conn:
        with conn.begin():
            yield conn


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One short write transaction: commits on success, rolls back on error."""
    with engine.begin() as conn:
        yield conn


class HasDbUrl(Protocol):
    """What get_db needs of the settings (engine.core.settings.Settings has it)."""

    db_url: str


@cache
def _engine_for(url: str) -> Engine:
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
    return make_engine(url)


def get_db(settings: HasDbUrl) -> Engine:
    """One SQLAlchemy Engine (connection pool) per URL per process."""
    return _engine_for(settings.db_url)
