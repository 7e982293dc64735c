"""`seedlab audit list`: who did what, when."""

from __future__ import annotations

from typing import Annotated

import typer

from db import audit
from engine.cli.common import ready

app = typer.Typer(help="Who did what, when.", no_args_is_help=True)


@app.command("list")
def audit_list(
    user: Annotated[str | None, typer.Option(help="Only this user")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. launch")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
) -> None:
    """The newest audit entries (times in UTC)."""
    entries = audit.list_entries(ready()[1], user=user, action=action, limit=limit)
    if not entries:
        typer.echo("No audit entries.")
        return
    for e in entries:
        when = e.at.isoformat(sep=" ", timespec="seconds")
        detail = f"  ({e.detail})" if e.detail else ""
        typer.echo(f"{when}Z  {e.user:<20} {e.action:<14} {e.target}{detail}")
