"""User writes: add, password hash (made by the caller; db/ never sees a password), role,
remove, and the login counters behind the lockout.

Reads: db/users.py.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from db.models import users
from db.session import utcnow, writing
from db.users import DuplicateUserName, UserNotFound, UserRecord, _check_role


def add_user(db: Engine, name: str, password_hash: str, role: str) -> UserRecord:
    _check_role(role)
    now = utcnow()
    values = dict(
        name=name,
        password_hash=password_hash,
        role=role,
        created_at=now,
        password_changed_at=now,
        failed_logins=0,
        locked_until=None,
        last_login_at=None,
    )
    try:
        with writing(db) as conn:
            new_id = conn.execute(insert(users).values(**values)).inserted_primary_key[0]
    except IntegrityError as exc:
        raise DuplicateUserName(name) from exc
    return UserRecord(id=new_id, **values)


def _update(db: Engine, name: str, **values: object) -> None:
    with writing(db) as conn:
        if conn.execute(update(users).where(users.c.name == name).values(**values)).rowcount == 0:
            raise UserNotFound(f"No user {name!r}.")


def set_password_hash(db: Engine, name: str, password_hash: str) -> None:
    """A new password also ends the user's open sessions and any lockout."""
    _update(
        db,
        name,
        password_hash=password_hash,
        password_changed_at=utcnow(),
        failed_logins=0,
        locked_until=None,
    )


def set_role(db: Engine, name: str, role: str) -> None:
    _check_role(role)
    _update(db, name, role=role)


def remove_user(db: Engine, name: str) -> None:
    with writing(db) as conn:
        if conn.execute(delete(users).where(users.c.name == name)).rowcount == 0:
            raise UserNotFound(f"No user {name!r}.")


def record_failed_login(
    db: Engine, name: str, *, max_failures: int, lock_until: datetime
) -> UserRecord | None:
    """Count one failed attempt in one statement (two tabs cannot lose a count); the attempt
    that reaches `max_failures` locks the account until `lock_until`. None: no such user."""
    with writing(db) as conn:
        conn.execute(
            update(users)
            .where(users.c.name == name)
            .values(failed_logins=users.c.failed_logins + 1)
        )
        conn.execute(
            update(users)
            .where(users.c.name == name, users.c.failed_logins >= max_failures)
            .values(locked_until=lock_until, failed_logins=0)
        )
        row = conn.execute(select(users).where(users.c.name == name)).first()
    return None if row is None else UserRecord(**row._mapping)


def record_login_reset(db: Engine, name: str) -> None:
    """Clear the failure count and any lockout (an admin's unlock)."""
    _update(db, name, failed_logins=0, locked_until=None)


def record_login(db: Engine, name: str) -> None:
    _update(db, name, failed_logins=0, locked_until=None, last_login_at=utcnow())
