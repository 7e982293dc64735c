"""Users: argon2 password hashes, logins limited per client address and per user, and
server-side sessions.

The DB keeps the hashes, the login attempts and the sessions (db/users.py); this module is the
only one that sees a password or a session's secret.

A login is three steps (`authenticate`): one short transaction reserves the attempt — it counts
the failed and still unchecked attempts of the user name and of the client address and refuses
when either has reached its limit; the password is checked outside any transaction (argon2, about
0.3 s: SQLite's write lock is never held across it); a second short transaction records the
outcome. Parallel attempts see each other's reservations, so however many arrive at once, no
more passwords are checked than the limit allows.

The limits slow an attacker without handing them a way to lock a user out: an address may fail
`login_max_failures` times, a user name (from all addresses) the higher
`login_user_max_failures`; past its limit, each key waits `login_lockout_min`, doubling with every
further failure. One address therefore slows itself down long before it could lock anyone out,
and the real user's own typos are forgiven by their next successful login from the same address.
An address the user logged in from in the last 30 days is not held back by the user name's count
at all (only by its own), so attackers elsewhere cannot keep the real user out; an admin's unlock
(`seedlab users unlock NAME`, the Admin page) forgives everything at once. IPv6 clients are
counted by their /64 network.
A wrong password, an unknown name and a user-level lock get the same sentence after the same
work (a dummy hash is checked when there is no user or the user is locked).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
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


# Failed attempts older than this count for nothing (and are deleted).
FAILURE_WINDOW = timedelta(hours=24)
# A user's successful login from an address makes it known for this long: from there, the user
# name's own limit does not apply (the address's does).
KNOWN_ADDRESS_DAYS = timedelta(days=30)
# The delay doubles with each failure past the limit, up to 2**10 times the base.
_MAX_DOUBLINGS = 10
WRONG = (
    "Wrong user name or password. After repeated failures an account waits a while before "
    "it can log in again; an admin can unlock it at once (seedlab users unlock NAME)."
)
# The client address when nothing better is known (the CLI, a test, a bare script).
UNKNOWN_ADDRESS = "unknown"


def max_failures() -> int:
    """Failed logins from one address before it waits."""
    return Settings.from_env().login_max_failures


def user_max_failures() -> int:
    """Failed logins for one user name, from all addresses, before it waits."""
    return Settings.from_env().login_user_max_failures


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
    """Also ends the user's open sessions: they log in again under the new role."""
    check(actor, Permission.MANAGE_USERS)
    _check_role(role)
    if role != "admin":
        _keeps_an_admin(db, name)
    user_writes.set_role(db, name, role)
    audit.record(db, actor.name, "user_role", f"user {name}", f"role {role}")


def remove_user(db: Engine, actor: Actor, name: str) -> None:
    """Ends their sessions at once. The user's runs and datasets stay, with their name as owner
    (admins can act on them)."""
    check(actor, Permission.MANAGE_USERS)
    _keeps_an_admin(db, name)
    user_writes.remove_user(db, name)
    audit.record(db, actor.name, "user_remove", f"user {name}")


def unlock_user(db: Engine, actor: Actor, name: str) -> None:
    """Forgive the user's failed logins from every address, so they can log in at once."""
    check(actor, Permission.MANAGE_USERS)
    if user_store.get_user(db, name) is None:
        raise SeedlabError(f"No user {name!r}. See them all with `seedlab users list`.")
    user_writes.clear_login_failures(db, name)
    audit.record(db, actor.name, "user_unlock", f"user {name}")


# ---------------------------------------------------------------- logging in


class AddressWaits(LoginError):
    """Too many failed logins from this client address. Says nothing about any user."""

    def __init__(self, message: str, minutes: int) -> None:
        super().__init__(message)
        self.minutes = minutes


def whole_minutes(delta: timedelta) -> int:
    """A wait in minutes, rounded up, at least 1."""
    return max(1, int(delta.total_seconds() // 60 + (delta.total_seconds() % 60 > 0)))


def wait_sentence(minutes: int) -> str:
    return (
        f"Too many failed logins from your address: try again in {minutes} "
        f"minute{'s' if minutes != 1 else ''}."
    )


def _wait_until(failures: user_store.FailureCount, limit: int, base: timedelta) -> datetime | None:
    """When a key past its limit may try again: the latest failure plus the base delay, doubled
    for each failure beyond the limit. None: below the limit."""
    if failures.count < limit or failures.latest is None:
        return None
    return failures.latest + base * 2 ** min(failures.count - limit, _MAX_DOUBLINGS)


def locked_until(db: Engine, name: str, now: datetime | None = None) -> datetime | None:
    """Until when logins for this user name wait, from any address (None: they do not)."""
    now = now or utcnow()
    failures = user_store.failures_since(db, now - FAILURE_WINDOW, user_name=name)
    until = _wait_until(failures, user_max_failures(), lockout())
    return until if until is not None and until > now else None


def address_key(address: str) -> str:
    """What the per-address limit counts: an IPv4 address as is, an IPv6 address by its /64
    network (one customer's usual allocation, so a client cannot step through its own block)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def authenticate(
    db: Engine,
    name: str,
    password: str,
    now: datetime | None = None,
    *,
    address: str = UNKNOWN_ADDRESS,
) -> Actor:
    """The user, if the password is right and neither the address nor the user name is waiting
    after too many failures; else LoginError (AddressWaits for the address's own limit)."""
    now = now or utcnow()
    name = name.strip()[:100]
    address = address_key(address)
    settings = Settings.from_env()
    base = timedelta(minutes=settings.login_lockout_min)
    waits: dict[str, datetime] = {}

    def decide(
        by_user: user_store.FailureCount, by_address: user_store.FailureCount, known: bool
    ) -> str | None:
        # Runs inside the reservation's transaction: the counts include parallel attempts. An
        # address the user logged in from lately is not held back by the user name's count
        # (attackers elsewhere cannot keep the real user out), only by its own.
        checks = [("address", by_address, settings.login_max_failures)]
        if not known:
            checks.append(("user", by_user, settings.login_user_max_failures))
        for key, failures, limit in checks:
            until = _wait_until(failures, limit, base)
            if until is not None and until > now:
                waits[key] = until
                return key
        return None

    attempt, refusal = user_writes.reserve_login(
        db,
        name,
        address,
        now=now,
        since=now - FAILURE_WINDOW,
        known_since=now - KNOWN_ADDRESS_DAYS,
        decide=decide,
    )
    if refusal == "address":
        minutes = whole_minutes(waits["address"] - now)
        raise AddressWaits(wait_sentence(minutes), minutes)
    assert attempt is not None
    user = user_store.get_user(db, name)
    # The same work whatever the case: one argon2 check (a dummy hash when there is no user or
    # the user name is waiting), one write; so neither the answer nor its time tells them apart.
    checked_hash = user.password_hash if user is not None and refusal is None else _DUMMY_HASH
    right = verify_password(checked_hash, password) and checked_hash is not _DUMMY_HASH
    user_writes.finish_login(
        db, attempt, "ok" if right else "failed", forgive_before=now if right else None
    )
    if not right or user is None:
        # One audit entry per refused attempt, whatever the reason (the same work each time).
        why = "; this user name is waiting after too many failures" if refusal == "user" else ""
        audit.record(db, name, "login_failed", f"user {name}", f"from {address}{why}")
        raise LoginError(WRONG)
    if _hasher.check_needs_rehash(user.password_hash):
        user_writes.set_password_hash(db, name, hash_password(password))
        user = user_store.get_user(db, name) or user
    user_writes.record_login(db, name)
    audit.record(db, name, "login", f"user {name}")
    return Actor(user.name, user.role)


# ---------------------------------------------------------------- sessions


@dataclass(frozen=True)
class Session:
    """A session just started: `token` goes into the browser's cookie and nowhere else."""

    id: int
    token: str
    expires_at: datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: Engine, actor: Actor, address: str = UNKNOWN_ADDRESS) -> Session:
    """A new session for a user who just logged in (a random 256-bit token from `secrets`)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    expires = now + session_lifetime()
    session_id = user_writes.start_session(
        db, _token_hash(token), actor.name, address[:64], now=now, expires_at=expires
    )
    return Session(session_id, token, expires)


# A session's "last seen" is written at most this often: a click is not a write.
_TOUCH_EVERY = timedelta(minutes=1)


def session_actor(db: Engine, token: str | None, now: datetime | None = None) -> Actor | None:
    """The user of an open session, read fresh from the DB (so a removed user is out at once),
    or None when the token is unknown, revoked or expired."""
    if not token or not isinstance(token, str):
        return None
    now = now or utcnow()
    found = user_store.find_session(db, _token_hash(token))
    if found is None or found.revoked_at is not None or found.expires_at <= now:
        return None
    user = user_store.get_user(db, found.user_name)
    if user is None:
        return None
    if now - found.last_seen_at >= _TOUCH_EVERY:
        user_writes.touch_session(db, found.id, now)
    return Actor(user.name, user.role)


def end_session(db: Engine, token: str | None) -> str | None:
    """Log out: the session is revoked at once (a copied cookie opens nothing after this).
    The user's name, or None when the token named no open session."""
    if not token or not isinstance(token, str):
        return None
    found = user_store.find_session(db, _token_hash(token))
    if found is None or not user_writes.revoke_session(db, found.id):
        return None
    audit.record(db, found.user_name, "logout", f"user {found.user_name}")
    return found.user_name


def list_sessions(db: Engine, actor: Actor, name: str) -> list[user_store.SessionRecord]:
    """A user's open sessions, newest first (admins for anyone; a user for themselves)."""
    if actor.name != name:
        check(actor, Permission.MANAGE_USERS)
    return user_store.list_sessions(db, name, open_at=utcnow())


def end_sessions(db: Engine, actor: Actor, name: str, session_id: int | None = None) -> int:
    """End one of a user's sessions (by its id) or all of them; how many were open."""
    if actor.name != name:
        check(actor, Permission.MANAGE_USERS)
    if session_id is None:
        ended = user_writes.revoke_sessions(db, name)
    else:
        ended = int(user_writes.revoke_session(db, session_id, user_name=name))
    audit.record(
        db,
        actor.name,
        "end_sessions",
        f"user {name}",
        "all" if session_id is None else f"session {session_id}",
    )
    return ended


def has_users(db: Engine) -> bool:
    return user_store.count_users(db) > 0
