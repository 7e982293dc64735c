"""What every `seedlab` command module shares: settings and a migrated database, the CLI's
actor, JSON output, and the one error path.

Errors: a command raises SeedlabError (or `fail(...)`, which raises one); the root group
(engine/cli/main.py) prints it as one line `error: …` on stderr and exits non-zero. Commands
catch nothing they would only print.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, NoReturn

import typer
from sqlalchemy import Engine

from db.migrate import UnknownSchemaVersion, upgrade_to_head
from db.session import get_db
from engine.core.errors import SeedlabError
from engine.core.settings import Settings
from engine.services.permissions import Actor, cli_actor


class CliError(SeedlabError):
    """A refusal the CLI itself makes (no such run, a bad combination of options); `exit_code`
    is the status `seedlab` exits with (1 unless a command documents another)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop the command: `error: MESSAGE` on stderr, exit status `code`."""
    raise CliError(message, code)


def error_exit(exc: SeedlabError) -> typer.Exit:
    """Print the one line a user sees for `exc`; the Exit to raise with its status."""
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(getattr(exc, "exit_code", 1))


def settings() -> Settings:
    return Settings.from_env()


def ready(current: Settings | None = None) -> tuple[Settings, Engine]:
    """Settings and a migrated database (cheap when already at head)."""
    current = current or Settings.from_env()
    current.ensure_dirs()
    db = get_db(current)
    try:
        upgrade_to_head(db)
    except UnknownSchemaVersion as exc:
        fail(str(exc))
    return current, db


def actor() -> Actor:
    """Who the CLI acts as: a local admin named `cli:<OS user>` in the audit log."""
    return cli_actor()


def _json_default(value: Any) -> Any:  # noqa: ANN401 - whatever json.dumps cannot write
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds") + "Z"
    return str(value)


def print_json(data: Any) -> None:  # noqa: ANN401 - any JSON-able value
    typer.echo(json.dumps(data, indent=2, default=_json_default))


def fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
