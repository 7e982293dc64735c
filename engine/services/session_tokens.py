"""Signed login tokens for the dashboard's session cookie, so a reload or a new tab stays logged in.

A token names the user, the login time and the password stamp (`accounts.session_stamp`) and is
signed with HMAC-SHA256 under a random key kept in SEEDLAB_HOME (created on first use, mode
600). It grants nothing by itself: `accounts.session_actor` still checks expiry, that the user
exists and that the password did not change since, at every click.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from datetime import datetime
from pathlib import Path

KEY_FILE = "session.key"


def secret_key(home: Path) -> bytes:
    """This server's signing key, made on first use. Two processes starting at once (two
    dashboard sessions, the dashboard and the CLI) get the same key, and neither ever reads a
    file still being written: the key is written whole to a temp file (owner only), then
    linked into place, which fails if another process linked its key first."""
    path = home / KEY_FILE
    if path.exists():
        return path.read_bytes()
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)
    except FileExistsError:
        key = path.read_bytes()  # the first process's key wins
    finally:
        tmp.unlink(missing_ok=True)
    return key


def _sign(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def issue(key: bytes, name: str, logged_in_at: datetime, stamp: datetime | None) -> str:
    payload = {"n": name, "a": logged_in_at.isoformat(), "s": stamp.isoformat() if stamp else None}
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"{body}.{_sign(key, body)}"


def read(key: bytes, token: str | None) -> tuple[str, datetime, datetime | None] | None:
    """(name, login time, password stamp) of a token signed with `key`; None for anything else."""
    if not token or token.count(".") != 1:
        return None
    body, signature = token.split(".")
    if not hmac.compare_digest(signature, _sign(key, body)):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        stamp = datetime.fromisoformat(payload["s"]) if payload["s"] else None
        return str(payload["n"]), datetime.fromisoformat(payload["a"]), stamp
    except (ValueError, KeyError, TypeError):
        return None
