"""`seedlab storage [--json]`, `seedlab storage clean`, `seedlab backup PATH`,
`seedlab restore PATH`: disk use, the clean-up by retention rules, and a backup of the
database and SEEDLAB_HOME together (engine/services/storage.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import actor, print_json, ready, settings
from engine.services import storage
from engine.services.storage import format_bytes

# `seedlab storage …`
app = typer.Typer(help="Disk use per project, run and dataset; clean up old run files.")
# `seedlab backup` and `seedlab restore` (the root adds this group without a name).
backup_app = typer.Typer()


@app.callback(invoke_without_command=True)
def storage_report(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    top: Annotated[int, typer.Option(min=0, help="How many of the largest runs to list")] = 10,
) -> None:
    """Disk use of SEEDLAB_HOME: total, per project, the largest runs, each dataset."""
    if ctx.invoked_subcommand is not None:
        return
    current, db = ready()
    report = storage.usage(current, db, max_age_s=0)
    if as_json:
        print_json(report.to_dict())
        return
    typer.echo(f"SEEDLAB_HOME {report.home}: {format_bytes(report.total_bytes)}")
    on_server = storage.sqlite_path(current) is None
    shown = "on the database server" if on_server else format_bytes(report.database_bytes)
    typer.echo(f"  database      {shown}")
    typer.echo(f"  runs          {format_bytes(report.runs_bytes)} ({len(report.runs)} runs)")
    typer.echo(f"  datasets      {format_bytes(report.datasets_bytes)}")
    if report.orphan_run_bytes:
        typer.echo(f"  run folders without a run {format_bytes(report.orphan_run_bytes)}")
    typer.echo(f"  other         {format_bytes(report.other_bytes)}")
    typer.echo("Projects:")
    for name, size in sorted(report.projects.items(), key=lambda kv: -kv[1]):
        typer.echo(f"  {name:<30} {format_bytes(size):>10}")
    largest = sorted(report.runs, key=lambda r: -r.bytes)[:top]
    if largest:
        typer.echo("Largest runs:")
        for r in largest:
            kept = f"  kept: {r.kept_because}" if r.kept_because else ""
            typer.echo(
                f"  #{r.id:<6} {r.name[:30]:<30} {format_bytes(r.bytes):>10}  {r.status}{kept}"
            )
    if report.datasets:
        typer.echo("Datasets:")
        for d in report.datasets:
            typer.echo(f"  {d.name[:30]:<30} {format_bytes(d.bytes):>10}")
    if report.versions:
        typer.echo("Dataset versions (an edited version shares its parent's data):")
        for v in report.versions:
            data = "own data" if v.own_base else "shared data"
            typer.echo(
                f"  {v.dataset[:24] + '@' + str(v.number):<30} {format_bytes(v.bytes):>10}  "
                f"{data}, {v.runs} run(s)"
            )


@app.command("clean")
def storage_clean(
    older_than: Annotated[
        str, typer.Option(help="Runs finished more than this long ago: 30d, 12h, 2w")
    ] = "30d",
    dry_run: Annotated[bool, typer.Option(help="List what would go; delete nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON")] = False,
) -> None:
    """Delete resume checkpoints, exports and variants of old finished runs, and dataset
    versions no run trained on that a newer version replaced. Never a run tagged `keep` or one
    a registered model version comes from, never model.pt or metrics."""
    current, db = ready()
    plan = storage.clean(current, db, actor(), storage.parse_age(older_than), dry_run=dry_run)
    if as_json:
        print_json(plan.to_dict())
        return
    for item in plan.items:
        typer.echo(f"  {item.path:<50} {format_bytes(item.bytes):>10}  ({item.reason})")
    for run_id, why in sorted(plan.kept.items()):
        typer.echo(f"  kept: run {run_id} ({why})")
    verb = "Would free" if dry_run else "Freed"
    typer.echo(f"{verb} {format_bytes(plan.bytes)} in {len(plan.items)} items.")


@backup_app.command("backup")
def backup(
    path: Annotated[Path, typer.Argument(help="The archive to write: .tar, .tar.gz or .tgz")],
) -> None:
    """Back up the database and SEEDLAB_HOME into one archive; safe while the engine runs."""
    manifest = storage.backup(*ready(), actor(), path)
    typer.echo(
        f"Backed up {manifest['runs']} runs and {manifest['datasets']} datasets into "
        f"{manifest['path']} ({format_bytes(manifest['bytes'])})."
    )


@backup_app.command("restore")
def restore(
    path: Annotated[Path, typer.Argument(help="An archive `seedlab backup` wrote")],
) -> None:
    """Restore a backup into a new SEEDLAB_HOME (and database); refuses a home in use."""
    current = settings()
    manifest = storage.restore(current, actor(), path)
    typer.echo(
        f"Restored {manifest.get('runs')} runs and {manifest.get('datasets')} datasets into "
        f"{current.home}. Start the engine (seedlab up) to resume runs that were in progress."
    )
