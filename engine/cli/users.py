"""`seedlab users …` and `seedlab audit list`: dashboard logins and the audit log.

The CLI acts as a local admin (shell access to this machine is access to the database anyway);
the audit log names it `cli:<OS user>`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from db import audit
from db import users as user_store
from engine.core.errors import SeedlabError
from engine.services import accounts
from engine.services.permissions import ROLES, cli_actor

users_app = typer.Typer(
    help="Dashboard users (used when access control is on).", no_args_is_help=True
)
audit_app = typer.Typer(help="Who did what, when.", no_args_is_help=True)

RoleOption = Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}")]


def _db():  # noqa: ANN202
    from engine.cli import main as cli

    return cli._ready()[1]


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def users_add(
    name: str,
    role: RoleOption = "member",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (one line)")
    ] = False,
) -> None:
    """Add a user (the password is prompted for, or read with --password-stdin)."""
    db = _db()
    try:
        accounts.check_name(name)
        if role not in ROLES:
            raise SeedlabError(f"--role must be one of {', '.join(ROLES)}; got {role!r}")
        accounts.add_user(db, cli_actor(), name, _password(password_stdin), role)
    except SeedlabError as exc:
        _fail(str(exc))
    typer.echo(f"Added {role} {name.strip()!r}.")


@users_app.command("passwd")
def users_passwd(
    name: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (one line)")
    ] = False,
) -> None:
    """Set a user's password (ends their open sessions and any lockout)."""
    db = _db()
    if user_store.get_user(db, name) is None:
        _fail(f"No user {name!r}. See them all with `seedlab users list`.")
    try:
        accounts.change_password(db, cli_actor(), name, _password(password_stdin))
    except SeedlabError as exc:
        _fail(str(exc))
    typer.echo(f"Password of {name!r} changed.")


@users_app.command("role")
def users_role(name: str, role: str) -> None:
    """Give a user another role (viewer, member or admin)."""
    try:
        accounts.set_role(_db(), cli_actor(), name, role)
    except SeedlabError as exc:
        _fail(str(exc))
    typer.echo(f"{name!r} is now {role}.")


@users_app.command("unlock")
def users_unlock(name: str) -> None:
    """End a lockout after too many failed logins."""
    try:
        accounts.unlock_user(_db(), cli_actor(), name)
    except SeedlabError as exc:
        _fail(str(exc))
    typer.echo(f"{name!r} unlocked.")


@users_app.command("remove")
def users_remove(name: str) -> None:
    """Remove a user; their runs and datasets stay (admins can act on them)."""
    try:
        accounts.remove_user(_db(), cli_actor(), name)
    except SeedlabError as exc:
        _fail(str(exc))
    typer.echo(f"Removed {name!r}.")


@users_app.command("list")
def users_list() -> None:
    """Users, their roles, last login and any lockout."""
    users = user_store.list_users(_db())
    if not users:
        typer.echo(f"No users. Add the first admin: {accounts.FIRST_ADMIN_HINT}")
        return
    typer.echo(f"{'name':<24} {'role':<7} {'last login':<20} locked until")
    for u in users:
        last = u.last_login_at.isoformat(sep=" ", timespec="seconds") if u.last_login_at else "-"
        locked = u.locked_until.isoformat(sep=" ", timespec="seconds") if u.locked_until else ""
        typer.echo(f"{u.name:<24} {u.role:<7} {last:<20} {locked}")


@audit_app.command("list")
def audit_list(
    user: Annotated[str | None, typer.Option(help="Only this user")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. launch")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """The newest audit entries (times in UTC)."""
    entries = audit.list_entries(_db(), user=user, action=action, limit=limit)
    if not entries:
        typer.echo("No audit entries.")
        return
    for e in entries:
        when = e.at.isoformat(sep=" ", timespec="seconds")
        detail = f"  ({e.detail})" if e.detail else ""
        typer.echo(f"{when}Z  {e.user:<20} {e.action:<14} {e.target}{detail}")
