"""User writes: add, password hash (made by the caller; db/ never sees a password), role,
remove; the login attempts behind the lockout; sessions.

Reads: db/users.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from db.models import login_attempts, sessions, users
from db.session import utcnow, writing
from db.users import (
    DuplicateUserName,
    FailureCount,
    UserNotFound,
    UserRecord,
    _check_role,
    count_failures,
)


def add_user(db: Engine, name: str, password_hash: str, role: str) -> UserRecord:
    _check_role(role)
    now = utcnow()
    values = dict(
        name=name,
        password_hash=password_hash,
        role=role,
        created_at=now,
        password_changed_at=now,
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
    """A new password also ends the user's open sessions and forgives their failed logins."""
    now = utcnow()
    with writing(db) as conn:
        changed = conn.execute(
            update(users)
            .where(users.c.name == name)
            .values(password_hash=password_hash, password_changed_at=now)
        ).rowcount
        if changed == 0:
            raise UserNotFound(f"No user {name!r}.")
        _revoke_all(conn, name, now)
        _clear_failures(conn, name)


def set_role(db: Engine, name: str, role: str) -> None:
    """A new role also ends the user's open sessions: they log in again under it."""
    _check_role(role)
    with writing(db) as conn:
        if conn.execute(update(users).where(users.c.name == name).values(role=role)).rowcount == 0:
            raise UserNotFound(f"No user {name!r}.")
        _revoke_all(conn, name, utcnow())


def remove_user(db: Engine, name: str) -> None:
    with writing(db) as conn:
        if conn.execute(delete(users).where(users.c.name == name)).rowcount == 0:
            raise UserNotFound(f"No user {name!r}.")
        _revoke_all(conn, name, utcnow())


def record_login(db: Engine, name: str) -> None:
    _update(db, name, last_login_at=utcnow())


# ---------------------------------------------------------------- login attempts

# What a reservation's caller decides from the user name's and the address's failures and
# whether the user logged in from this address before: None to check the password, or why not.
Decision = Callable[[FailureCount, FailureCount, bool], str | None]


def reserve_login(
    db: Engine,
    user_name: str,
    address: str,
    *,
    now: datetime,
    since: datetime,
    known_since: datetime,
    decide: Decision,
) -> tuple[int | None, str | None]:
    """Count the failed and still unchecked attempts of `user_name` and of `address` since
    `since`, see whether `user_name` logged in from `address` since `known_since`, let `decide`
    refuse or not, and add this attempt, all in one short transaction: ("pending" row id, None)
    when the password may be checked; (row id or None, the refusal) when not. SQLite's BEGIN
    IMMEDIATE and PostgreSQL's table lock below make reservations take turns, so parallel
    attempts see each other's pending rows and never exceed the limit; the password itself is
    checked after this transaction, not inside it."""
    with writing(db) as conn:
        if conn.dialect.name == "postgresql":
            # Self-conflicting, so two reservations cannot both count before either inserts.
            conn.execute(text("LOCK TABLE login_attempts IN SHARE ROW EXCLUSIVE MODE"))
        by_user = count_failures(conn, since, user_name=user_name)
        by_address = count_failures(conn, since, address=address)
        known = (
            conn.execute(
                select(login_attempts.c.id)
                .where(
                    login_attempts.c.user_name == user_name,
                    login_attempts.c.address == address,
                    login_attempts.c.outcome == "ok",
                    login_attempts.c.at >= known_since,
                )
                .limit(1)
            ).first()
            is not None
        )
        refusal = decide(by_user, by_address, known)
        if refusal == "address":
            # A flooding address gets no row (nor a password hash): its count is what stops it.
            return None, refusal
        # Rows that count for nothing any more go (successes are kept longer: they make an
        # address known).
        conn.execute(delete(login_attempts).where(login_attempts.c.at < known_since))
        conn.execute(
            delete(login_attempts).where(
                login_attempts.c.at < since, login_attempts.c.outcome != "ok"
            )
        )
        attempt_id = conn.execute(
            insert(login_attempts).values(
                user_name=user_name,
                address=address,
                at=now,
                outcome="refused" if refusal else "pending",
                cleared=False,
            )
        ).inserted_primary_key[0]
    return attempt_id, refusal


def finish_login(
    db: Engine, attempt_id: int, outcome: str, *, forgive_before: datetime | None = None
) -> None:
    """Record the password check's outcome. An "ok" with `forgive_before` also clears that
    user's earlier failures from the same address (the real user's own typos), and only those:
    failures from elsewhere keep counting."""
    with writing(db) as conn:
        conn.execute(
            update(login_attempts)
            .where(login_attempts.c.id == attempt_id, login_attempts.c.outcome != "refused")
            .values(outcome=outcome)
        )
        if outcome == "ok" and forgive_before is not None:
            row = conn.execute(
                login_attempts.select().where(login_attempts.c.id == attempt_id)
            ).one()
            conn.execute(
                update(login_attempts)
                .where(
                    login_attempts.c.user_name == row.user_name,
                    login_attempts.c.address == row.address,
                    login_attempts.c.outcome == "failed",
                    login_attempts.c.at <= forgive_before,
                )
                .values(cleared=True)
            )


def clear_login_failures(db: Engine, name: str) -> None:
    """An admin's unlock: the user's failed attempts, from every address, count no more."""
    with writing(db) as conn:
        _clear_failures(conn, name)


def _clear_failures(conn: Connection, name: str) -> None:
    conn.execute(
        update(login_attempts)
        .where(login_attempts.c.user_name == name, login_attempts.c.cleared.is_(False))
        .values(cleared=True)
    )


# ---------------------------------------------------------------- sessions


def start_session(
    db: Engine,
    token_hash: str,
    user_name: str,
    address: str,
    *,
    now: datetime,
    expires_at: datetime,
) -> int:
    with writing(db) as conn:
        return conn.execute(
            insert(sessions).values(
                token_hash=token_hash,
                user_name=user_name,
                address=address,
                created_at=now,
                last_seen_at=now,
                expires_at=expires_at,
                revoked_at=None,
            )
        ).inserted_primary_key[0]


def touch_session(db: Engine, session_id: int, now: datetime) -> None:
    with writing(db) as conn:
        conn.execute(update(sessions).where(sessions.c.id == session_id).values(last_seen_at=now))


def revoke_session(db: Engine, session_id: int, *, user_name: str | None = None) -> bool:
    """End one session now (of `user_name` only, when given); False if none was open."""
    stmt = update(sessions).where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
    if user_name is not None:
        stmt = stmt.where(sessions.c.user_name == user_name)
    with writing(db) as conn:
        return conn.execute(stmt.values(revoked_at=utcnow())).rowcount > 0


def revoke_sessions(db: Engine, user_name: str) -> int:
    """End all of a user's open sessions now; how many were open."""
    with writing(db) as conn:
        return _revoke_all(conn, user_name, utcnow())


def _revoke_all(conn: Connection, user_name: str, now: datetime) -> int:
    return conn.execute(
        update(sessions)
        .where(sessions.c.user_name == user_name, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount
