"""User rows: name, role, password hash (made by the caller; db/ never sees a password),
and the failed-login count and lockout that must survive a restart. Reads; the writes are
db/writes/users.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select

from db.models import USER_ROLES, users
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
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None


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
