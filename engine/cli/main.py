"""The `seedlab` command: a front end like the dashboard, calling the same functions.

This root only builds the app: each command group lives in its own module, which exposes a
`typer.Typer` named `app`, and is added here. Shared helpers are in engine/cli/common.py; no
command module imports this one.

Errors exit non-zero with one line `error: …` on stderr, never a traceback: a command raises
SeedlabError and `SeedlabGroup` prints it (for `main()` and for anything that invokes `app`).
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from engine.cli import (
    alerts,
    audit,
    cluster,
    datasets,
    demo,
    export,
    importing,
    models,
    predict,
    projects,
    recipes,
    runs,
    sdk,
    share,
    storage,
    sweeps,
    users,
)
from engine.cli import engine as engine_group
from engine.cli.common import error_exit
from engine.core.errors import SeedlabError


class SeedlabGroup(TyperGroup):
    """The root group: every command runs inside its `invoke`, so this is the one place a
    SeedlabError becomes `error: …` and an exit status."""

    def invoke(self, ctx: typer.Context) -> Any:  # noqa: ANN401 - whatever the command returns
        try:
            return super().invoke(ctx)
        except SeedlabError as exc:
            raise error_exit(exc) from None


app = typer.Typer(
    cls=SeedlabGroup,
    help="Seedlab: upload datasets, launch training runs, browse results.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# `seedlab runs …`: the run commands, then what is made from a completed run.
runs.app.add_typer(export.app)

# Top-level commands: init, worker, dashboard, up (and the `engine status` group); predict.
app.add_typer(engine_group.app)
app.add_typer(predict.app)
app.add_typer(datasets.app, name="datasets")
app.add_typer(runs.app, name="runs")
app.add_typer(projects.app, name="projects")
app.add_typer(demo.app, name="demo")
app.add_typer(sweeps.app, name="sweeps")
app.add_typer(users.app, name="users")
app.add_typer(audit.app, name="audit")
app.add_typer(models.app, name="models")
app.add_typer(cluster.app, name="cluster")
app.add_typer(importing.app, name="import")
app.add_typer(recipes.app, name="recipes")
app.add_typer(sdk.app, name="sdk")
app.add_typer(storage.app, name="storage")
app.add_typer(share.app, name="share")
app.add_typer(storage.backup_app)
app.add_typer(alerts.app, name="alerts")


def main() -> None:
    try:
        app()
    except SeedlabError as exc:  # raised outside a command (none today); the same one line
        typer.echo(f"error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))


if __name__ == "__main__":
    main()
