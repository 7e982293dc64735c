"""`seedlab users add|passwd|role|unlock|remove|list|sessions|end-sessions`: dashboard logins.

The CLI acts as a local admin (shell access to this machine is access to the database anyway);
the audit log names it `cli:<OS user>`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy import Engine

from db import users as user_store
from engine.cli.common import actor, fail, ready
from engine.services import accounts, api_tokens
from engine.services.permissions import ROLES

app = typer.Typer(help="Dashboard users (used when access control is on).", no_args_is_help=True)

RoleOption = Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}")]
PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from stdin (one line)")
]


def _db() -> Engine:
    return ready()[1]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@app.command("add")
def users_add(
    name: str, role: RoleOption = "member", password_stdin: PasswordStdin = False
) -> None:
    """Add a user (the password is prompted for, or read with --password-stdin)."""
    db = _db()
    accounts.check_name(name)
    if role not in ROLES:
        fail(f"--role must be one of {', '.join(ROLES)}; got {role!r}")
    accounts.add_user(db, actor(), name, _password(password_stdin), role)
    typer.echo(f"Added {role} {name.strip()!r}.")


@app.command("passwd")
def users_passwd(name: str, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password (ends their open sessions and any lockout)."""
    db = _db()
    if user_store.get_user(db, name) is None:
        fail(f"No user {name!r}. See them all with `seedlab users list`.")
    accounts.change_password(db, actor(), name, _password(password_stdin))
    typer.echo(f"Password of {name!r} changed.")


@app.command("role")
def users_role(name: str, role: str) -> None:
    """Give a user another role (viewer, member or admin)."""
    accounts.set_role(_db(), actor(), name, role)
    typer.echo(f"{name!r} is now {role}.")


@app.command("unlock")
def users_unlock(name: str) -> None:
    """Let a user log in at once after too many failed logins (forgives them, from every
    address)."""
    accounts.unlock_user(_db(), actor(), name)
    typer.echo(f"{name!r} unlocked.")


@app.command("remove")
def users_remove(name: str) -> None:
    """Remove a user; their runs and datasets stay (admins can act on them)."""
    accounts.remove_user(_db(), actor(), name)
    typer.echo(f"Removed {name!r}.")


@app.command("token")
def users_token(
    name: str,
    label: Annotated[str, typer.Option(help="What the token is for, e.g. the machine")] = "",
) -> None:
    """Make an API token for NAME and print it (only now; keep it secret). The SDK logs to this
    server with SEEDLAB_URL and SEEDLAB_TOKEN set to it, with NAME's permissions."""
    token = api_tokens.create_token(_db(), actor(), name, label)
    typer.echo(token)
    typer.echo(
        f"API token for {name!r}: shown only now. Use it as SEEDLAB_TOKEN; revoke it with "
        "`seedlab users revoke ID` (IDs: `seedlab users tokens`).",
        err=True,
    )


@app.command("tokens")
def users_tokens(name: Annotated[str | None, typer.Argument()] = None) -> None:
    """API tokens (all users', or NAME's): id, user, first characters, label, last use."""
    tokens = api_tokens.list_tokens(_db(), actor(), name)
    if not tokens:
        typer.echo(f"No API tokens. Make one: seedlab users token {name or 'NAME'}")
        return
    typer.echo(f"{'id':>4} {'user':<24} {'token':<14} {'last used':<20} label")
    for t in tokens:
        used = t.last_used_at.isoformat(sep=" ", timespec="seconds") if t.last_used_at else "-"
        typer.echo(f"{t.id:>4} {t.user:<24} {t.prefix + '…':<14} {used:<20} {t.label}")


@app.command("revoke")
def users_revoke(token_id: int) -> None:
    """Revoke an API token by its id (`seedlab users tokens`); it stops working at once."""
    api_tokens.revoke_token(_db(), actor(), token_id)
    typer.echo(f"Token {token_id} revoked.")


@app.command("list")
def users_list() -> None:
    """Users, their roles, last login and any lockout."""
    users = user_store.list_users(_db())
    if not users:
        typer.echo(f"No users. Add the first admin: {accounts.FIRST_ADMIN_HINT}")
        return
    db = _db()
    typer.echo(f"{'name':<24} {'role':<7} {'last login':<20} logins wait until (UTC)")
    for u in users:
        last = u.last_login_at.isoformat(sep=" ", timespec="seconds") if u.last_login_at else "-"
        until = accounts.locked_until(db, u.name)
        locked = until.isoformat(sep=" ", timespec="seconds") if until else ""
        typer.echo(f"{u.name:<24} {u.role:<7} {last:<20} {locked}")


@app.command("sessions")
def users_sessions(name: str) -> None:
    """A user's open dashboard sessions (times in UTC)."""
    found = accounts.list_sessions(_db(), actor(), name)
    if not found:
        typer.echo(f"{name!r} has no open session.")
        return
    typer.echo(f"{'session':<8} {'from':<40} {'started':<20} {'last seen':<20} ends")
    for s in found:
        times = [
            t.isoformat(sep=" ", timespec="seconds")
            for t in (s.created_at, s.last_seen_at, s.expires_at)
        ]
        typer.echo(f"{s.id:<8} {s.address:<40} {times[0]:<20} {times[1]:<20} {times[2]}")


@app.command("end-sessions")
def users_end_sessions(
    name: str,
    session: Annotated[
        int | None, typer.Option(help="Only this session (see `users sessions`)")
    ] = None,
) -> None:
    """Log a user out everywhere (or of one session) at once."""
    ended = accounts.end_sessions(_db(), actor(), name, session)
    typer.echo(f"Ended {ended} session{'s' if ended != 1 else ''} of {name!r}.")
