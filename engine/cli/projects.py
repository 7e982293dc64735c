"""`seedlab projects list|create`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from db import projects as project_store
from engine.cli.common import actor, print_json, ready

app = typer.Typer(help="List and create projects.", no_args_is_help=True)


@app.command("list")
def projects_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List projects with their number of runs."""
    _, db = ready()
    records = project_store.list_projects(db)
    if as_json:
        print_json([asdict(p) for p in records])
        return
    typer.echo(f"{'id':>4}  {'runs':>7}  name")
    for p in records:
        typer.echo(f"{p.id:>4}  {p.n_runs:>7}  {p.name}")


@app.command("create")
def projects_create(
    name: str, description: Annotated[str, typer.Option(help="One line about it")] = ""
) -> None:
    """Create a project; prints its id."""
    from engine.services.projects import create_project

    _, db = ready()
    typer.echo(create_project(db, actor(), name, description))
