"""Per-user tokens for the HTTP API (/api/v1): the SDK logging from another machine sends one
as `Authorization: Bearer <token>` (SEEDLAB_TOKEN).

A token acts as its user, with the user's role read fresh at every request, so the API allows
exactly what the pages allow (permissions.py): a viewer's token reads, it cannot log runs.
Only a SHA-256 of the token is stored (a random 256-bit token needs no slow hash: nobody can
guess it from its hash); the token is shown once, when made. Removing the user, or revoking
the token, ends it at the next request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import Engine

from db import api_tokens as token_store
from db import users as user_store
from db.api_tokens import TokenRecord
from db.session import utcnow
from db.writes import api_tokens as token_writes
from engine.core.errors import SeedlabError
from engine.services import audit
from engine.services.permissions import Actor, Permission, allowed, check

TOKEN_PREFIX = "sl_"
LABEL_MAX = 100
# The last-used time is a write; a busy uploader posting every second must not make one each.
_USED_EVERY = timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _may_manage(actor: Actor, user: str) -> None:
    """A user manages their own tokens; an admin anyone's."""
    if actor.name != user:
        check(actor, Permission.MANAGE_USERS)


def create_token(db: Engine, actor: Actor, user: str, label: str = "") -> str:
    """A new token for `user`; the only time it is ever readable. Raises SeedlabError for an
    unknown user or when `actor` may not."""
    _may_manage(actor, user)
    if user_store.get_user(db, user) is None:
        raise SeedlabError(
            f"No user {user!r}: tokens belong to users. Add them first "
            f"(seedlab users add {user} --role member)."
        )
    label = label.strip()
    if len(label) > LABEL_MAX:
        raise SeedlabError(f"The label is too long: use at most {LABEL_MAX} characters.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = token_writes.add_token(
        db, user, token_hash=hash_token(token), prefix=token[:10], label=label
    )
    audit.record(db, actor, "token_add", f"user {user}", f"token {token_id} {token[:10]}…")
    return token


def list_tokens(db: Engine, actor: Actor, user: str | None = None) -> list[TokenRecord]:
    """`actor`'s own tokens; an admin may ask for anyone's (`user`), or all (None)."""
    if allowed(actor, Permission.MANAGE_USERS):
        return token_store.list_tokens(db, user)
    return token_store.list_tokens(db, actor.name)


def revoke_token(db: Engine, actor: Actor, token_id: int) -> None:
    token = token_store.get_token(db, token_id)
    if token is None:
        raise SeedlabError(f"No token {token_id}: it may have been revoked already.")
    _may_manage(actor, token.user)
    token_writes.remove_token(db, token_id)
    audit.record(db, actor, "token_revoke", f"user {token.user}", f"token {token_id}")


def token_actor(db: Engine, token: str | None) -> Actor | None:
    """The user a token acts as, or None for a missing, wrong or revoked token (or a removed
    user)."""
    if not token or not token.startswith(TOKEN_PREFIX):
        return None
    owner = token_store.owner_of(db, hash_token(token))
    if owner is None:
        return None
    now = utcnow()
    if owner.last_used_at is None or now - owner.last_used_at > _USED_EVERY:
        token_writes.mark_used(db, owner.token_id, now)
    return Actor(owner.user, owner.role)
