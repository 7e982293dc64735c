"""`seedlab import mlflow|tensorboard`: a team's history from another tracker, copied into
Seedlab runs (engine/services/importing.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import actor, ready

app = typer.Typer(
    help="Copy runs from MLflow or TensorBoard into Seedlab (a team keeps its history).",
    no_args_is_help=True,
)

Project = Annotated[
    str | None,
    typer.Option(
        help="Put every run in this project (created if missing); default: a project "
        "named after each MLflow experiment / the log folder."
    ),
]


def _report(result, what: str) -> None:  # noqa: ANN001 - an ImportResult
    where = ", ".join(result.projects) or "Default"
    typer.echo(
        f"imported {len(result.imported)} runs from {what} into {where} "
        f"({result.points} metric points)"
        + (f"; {result.skipped} imported before, left as they are" if result.skipped else "")
    )
    for run_id, name in result.imported:
        typer.echo(f"  #{run_id} {name}")
    if result.renumbered:
        typer.echo(
            f"{result.renumbered} metric histories were logged without steps (all at one step): "
            "they are numbered 0, 1, 2… in the order logged."
        )
    if result.overwritten:
        typer.echo(
            f"{result.overwritten} values were logged again at a step already logged: as for "
            "Seedlab runs, the last value logged at a step is kept."
        )


@app.command("mlflow")
def import_mlflow(
    tracking_uri: Annotated[
        str, typer.Option("--tracking-uri", help="MLflow's database, e.g. sqlite:///mlflow.db")
    ],
    experiment: Annotated[
        str | None, typer.Option(help="Only this experiment (by name); default: all")
    ] = None,
    project: Project = None,
) -> None:
    """Experiments, runs, params, tags and full metric histories from an MLflow database."""
    from engine.services.importing import import_runs, read_mlflow

    settings, db = ready()
    source = read_mlflow(tracking_uri, experiment)
    result = import_runs(settings, db, actor(), source, what="mlflow", project=project)
    _report(result, "MLflow")


@app.command("tensorboard")
def import_tensorboard(
    logdir: Annotated[Path, typer.Argument(help="The folder TensorBoard reads (--logdir)")],
    project: Project = None,
) -> None:
    """Every folder of event files under LOGDIR becomes a run with its scalar histories."""
    from engine.services.importing import import_runs, read_tensorboard

    settings, db = ready()
    source = read_tensorboard(logdir)
    result = import_runs(settings, db, actor(), source, what="tensorboard", project=project)
    _report(result, "TensorBoard")
