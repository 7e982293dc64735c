"""Users: argon2 password hashes, login with a lockout that survives restarts, session expiry.

The DB keeps the hashes and the failure counts (db/users.py); this module is the only one that
sees a password.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine

from db import users as user_store
from db.session import utcnow
from db.writes import users as user_writes
from engine.core.errors import SeedlabError
from engine.core.settings import Settings
from engine.services import audit
from engine.services.permissions import ROLES, Actor, Permission, check

MIN_PASSWORD_LENGTH = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
_hasher = PasswordHasher()  # argon2id with the library's current recommended costs
# Verified against when the user does not exist, so a wrong name costs as long as a wrong
# password and timing does not tell which names exist.
_DUMMY_HASH = _hasher.hash("not a password of anyone")

FIRST_ADMIN_HINT = "seedlab users add NAME --role admin"


class LoginError(SeedlabError):
    """Wrong name or password, or a locked account; the message says which is safe to say."""


def max_failures() -> int:
    return Settings.from_env().login_max_failures


def lockout() -> timedelta:
    return timedelta(minutes=Settings.from_env().login_lockout_min)


def session_lifetime() -> timedelta:
    return timedelta(hours=Settings.from_env().session_hours)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise SeedlabError(
            f"User name {name!r} is not allowed: use 1-100 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit."
        )
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SeedlabError(
            f"The password is too short: use at least {MIN_PASSWORD_LENGTH} characters."
        )


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise SeedlabError(f"role must be one of {', '.join(ROLES)}; got {role!r}")


# ---------------------------------------------------------------- managing users


def add_user(db: Engine, actor: Actor, name: str, password: str, role: str) -> None:
    check(actor, Permission.MANAGE_USERS)
    name = check_name(name)
    _check_role(role)
    check_password(password)
    try:
        user_writes.add_user(db, name, hash_password(password), role)
    except user_store.DuplicateUserName:
        raise SeedlabError(
            f"A user named {name!r} already exists. Change their password with "
            f"`seedlab users passwd {name}`."
        ) from None
    audit.record(db, actor.name, "user_add", f"user {name}", f"role {role}")


def change_password(db: Engine, actor: Actor, name: str, password: str) -> None:
    """Admins for anyone; a user for themselves. Ends that user's open sessions."""
    if actor.name != name:
        check(actor, Permission.MANAGE_USERS)
    check_password(password)
    try:
        user_writes.set_password_hash(db, name, hash_password(password))
    except user_store.UserNotFound as exc:
        raise SeedlabError(str(exc).strip("'\"")) from None
    audit.record(db, actor.name, "user_passwd", f"user {name}")


def _keeps_an_admin(db: Engine, name: str) -> None:
    user = user_store.get_user(db, name)
    if user is None:
        raise SeedlabError(f"No user {name!r}. See them all with `seedlab users list`.")
    if user.role == "admin" and user_store.count_users(db, "admin") == 1:
        raise SeedlabError(
            f"{name!r} is the only admin; add another admin first "
            f"({FIRST_ADMIN_HINT}), or nobody could manage users from the dashboard."
        )


def set_role(db: Engine, actor: Actor, name: str, role: str) -> None:
    check(actor, Permission.MANAGE_USERS)
    _check_role(role)
    if role != "admin":
        _keeps_an_admin(db, name)
    user_writes.set_role(db, name, role)
    audit.record(db, actor.name, "user_role", f"user {name}", f"role {role}")


def remove_user(db: Engine, actor: Actor, name: str) -> None:
    """The user's runs and datasets stay, with their name as owner (admins can act on them)."""
    check(actor, Permission.MANAGE_USERS)
    _keeps_an_admin(db, name)
    user_writes.remove_user(db, name)
    audit.record(db, actor.name, "user_remove", f"user {name}")


def unlock_user(db: Engine, actor: Actor, name: str) -> None:
    check(actor, Permission.MANAGE_USERS)
    if user_store.get_user(db, name) is None:
        raise SeedlabError(f"No user {name!r}. See them all with `seedlab users list`.")
    user_writes.record_login_reset(db, name)
    audit.record(db, actor.name, "user_unlock", f"user {name}")


# ---------------------------------------------------------------- logging in


def _minutes(delta: timedelta) -> str:
    minutes = max(1, int(delta.total_seconds() // 60 + (delta.total_seconds() % 60 > 0)))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def authenticate(db: Engine, name: str, password: str, now: datetime | None = None) -> Actor:
    """The user, if the password is right and the account is not locked; else LoginError.

    Each wrong password counts in the DB; the `max_failures()`-th locks the account for
    `lockout()`. A locked account refuses even the right password until the lock ends.
    """
    now = now or utcnow()
    name = name.strip()
    user = user_store.get_user(db, name)
    if user is None:
        verify_password(_DUMMY_HASH, password)
        raise LoginError("Wrong user name or password.")
    if user.locked_until is not None and user.locked_until > now:
        raise LoginError(
            f"Too many failed logins: {name!r} is locked for {_minutes(user.locked_until - now)} "
            f"more. An admin can unlock it now: seedlab users unlock {name}"
        )
    if not verify_password(user.password_hash, password):
        after = user_writes.record_failed_login(
            db, name, max_failures=max_failures(), lock_until=now + lockout()
        )
        if after is not None and after.locked_until is not None and after.locked_until > now:
            audit.record(db, name, "login_locked", f"user {name}", f"{max_failures()} failures")
            raise LoginError(
                f"Too many failed logins: {name!r} is locked for {_minutes(lockout())}."
            )
        raise LoginError("Wrong user name or password.")
    if _hasher.check_needs_rehash(user.password_hash):
        user_writes.set_password_hash(db, name, hash_password(password))
        user = user_store.get_user(db, name) or user
    user_writes.record_login(db, name)
    audit.record(db, name, "login", f"user {name}")
    return Actor(user.name, user.role)


def session_stamp(db: Engine, name: str) -> datetime | None:
    """What a session remembers at login; a password change moves it and ends the session."""
    user = user_store.get_user(db, name)
    return None if user is None else user.password_changed_at


def session_actor(
    db: Engine,
    name: str,
    logged_in_at: datetime,
    stamp: datetime | None,
    now: datetime | None = None,
) -> Actor | None:
    """The user of a live session, read fresh from the DB (a role change applies at once),
    or None when the session expired, the user was removed or their password changed."""
    now = now or utcnow()
    if now - logged_in_at > session_lifetime():
        return None
    user = user_store.get_user(db, name)
    if user is None or user.password_changed_at != stamp:
        return None
    return Actor(user.name, user.role)


def record_logout(db: Engine, name: str) -> None:
    """The audit entry for a user who logged out (the session itself lives in the browser)."""
    audit.record(db, name, "logout", f"user {name}")


def has_users(db: Engine) -> bool:
    return user_store.count_users(db) > 0
