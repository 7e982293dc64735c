"""Runs the SDK logs over the HTTP API (reads): the client's key for each, and how many of its
spool lines the server has applied. Writes: db/writes/remote_streams.py."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from db.models import remote_streams
from db.session import reading


@dataclass(frozen=True)
class RemoteStream:
    run_id: int
    client_key: str
    lines_applied: int


def by_key(db: Engine, client_key: str) -> RemoteStream | None:
    with reading(db) as conn:
        row = conn.execute(
            select(remote_streams).where(remote_streams.c.client_key == client_key)
        ).first()
    return None if row is None else RemoteStream(**row._mapping)


def by_run(db: Engine, run_id: int) -> RemoteStream | None:
    with reading(db) as conn:
        row = conn.execute(select(remote_streams).where(remote_streams.c.run_id == run_id)).first()
    return None if row is None else RemoteStream(**row._mapping)
