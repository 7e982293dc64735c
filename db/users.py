"""User rows: name, role, password hash (made by the caller; db/ never sees a password); their
sessions and login attempts, which must survive a restart. Reads; the writes are
db/writes/users.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select

from db.models import USER_ROLES, login_attempts, sessions, users
from db.session import reading


class DuplicateUserName(ValueError):
    pass


class UserNotFound(LookupError):
    pass


@dataclass(frozen=True)
class UserRecord:
    id: int
    name: str
    password_hash: str
    role: str
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class SessionRecord:
    id: int
    user_name: str
    address: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class FailureCount:
    """Failed (or still unchecked) login attempts of one user name or one address since some
    time, and when the latest was made."""

    count: int
    latest: datetime | None


def _check_role(role: str) -> None:
    if role not in USER_ROLES:
        raise ValueError(f"role must be one of {', '.join(USER_ROLES)}; got {role!r}")


def get_user(db: Engine, name: str) -> UserRecord | None:
    with reading(db) as conn:
        row = conn.execute(select(users).where(users.c.name == name)).first()
    return None if row is None else UserRecord(**row._mapping)


def list_users(db: Engine) -> list[UserRecord]:
    with reading(db) as conn:
        rows = conn.execute(select(users).order_by(users.c.name)).all()
    return [UserRecord(**r._mapping) for r in rows]


def count_users(db: Engine, role: str | None = None) -> int:
    stmt = select(func.count()).select_from(users)
    if role is not None:
        stmt = stmt.where(users.c.role == role)
    with reading(db) as conn:
        return conn.execute(stmt).scalar_one()


_SESSION_COLUMNS = (
    sessions.c.id,
    sessions.c.user_name,
    sessions.c.address,
    sessions.c.created_at,
    sessions.c.last_seen_at,
    sessions.c.expires_at,
    sessions.c.revoked_at,
)


def find_session(db: Engine, token_hash: str) -> SessionRecord | None:
    with reading(db) as conn:
        row = conn.execute(
            select(*_SESSION_COLUMNS).where(sessions.c.token_hash == token_hash)
        ).first()
    return None if row is None else SessionRecord(**row._mapping)


def list_sessions(
    db: Engine, user_name: str, *, open_at: datetime | None = None
) -> list[SessionRecord]:
    """A user's sessions, newest first; with `open_at`, only those neither revoked nor expired
    then."""
    stmt = select(*_SESSION_COLUMNS).where(sessions.c.user_name == user_name)
    if open_at is not None:
        stmt = stmt.where(sessions.c.revoked_at.is_(None), sessions.c.expires_at > open_at)
    with reading(db) as conn:
        rows = conn.execute(stmt.order_by(sessions.c.created_at.desc(), sessions.c.id.desc())).all()
    return [SessionRecord(**r._mapping) for r in rows]


COUNTED_OUTCOMES = ("pending", "failed")


def failures_since(
    db: Engine, since: datetime, *, user_name: str | None = None, address: str | None = None
) -> FailureCount:
    """Failed and unchecked attempts not cleared since `since`, of a user name or an address
    (for showing a lock; the decision itself is taken inside db.writes.users.reserve_login)."""
    with reading(db) as conn:
        return count_failures(conn, since, user_name=user_name, address=address)


def count_failures(
    conn: Connection, since: datetime, *, user_name: str | None = None, address: str | None = None
) -> FailureCount:
    column = login_attempts.c.user_name if user_name is not None else login_attempts.c.address
    key = user_name if user_name is not None else address
    row = conn.execute(
        select(func.count(), func.max(login_attempts.c.at)).where(
            column == key,
            login_attempts.c.at >= since,
            login_attempts.c.outcome.in_(COUNTED_OUTCOMES),
            login_attempts.c.cleared.is_(False),
        )
    ).one()
    return FailureCount(count=row[0], latest=row[1])
