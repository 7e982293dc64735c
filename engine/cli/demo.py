"""`seedlab demo fill`: synthetic finished runs for trying Seedlab at scale."""

from __future__ import annotations

from typing import Annotated

import typer

from engine.cli.common import actor, ready

app = typer.Typer(help="Synthetic data for trying Seedlab at scale.", no_args_is_help=True)


@app.command("fill")
def demo_fill(
    project: Annotated[
        str, typer.Option(help="Project to fill (created if missing)")
    ] = "Load test",
    runs: Annotated[int, typer.Option(min=1, help="Synthetic runs to add")] = 1000,
    steps: Annotated[int, typer.Option(min=1, help="Points per metric curve")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
) -> None:
    """Fill a project with synthetic finished runs (5 curves each), written in bulk."""
    from engine.services.demo_fill import fill_project_as

    settings, db = ready()

    def progress(done: int, total: int) -> None:
        typer.echo(f"  {done:,}/{total:,} runs", err=True)

    result = fill_project_as(
        settings, db, actor(), project=project, runs=runs, steps=steps, seed=seed, progress=progress
    )
    typer.echo(
        f"Added {result.runs:,} runs ({result.points:,} metric points) to project "
        f"{result.project_name!r} in {result.seconds:.1f} s."
    )
