"""The `seedlab` command: a front end like the dashboard, calling the same functions.

Errors exit non-zero with one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from db import datasets as dataset_store
from db import runs as run_store
from db.migrate import UnknownSchemaVersion, upgrade_to_head
from db.models import FINISHED_STATUSES, RUN_STATUSES
from db.records import RunRecord
from db.session import get_db
from engine.core import catalog
from engine.core.config import load_config_file, parse_overrides
from engine.core.errors import SeedlabError
from engine.core.paths import PROJECT_ROOT
from engine.core.run_files import log_path, tail
from engine.core.settings import Settings
from engine.services.permissions import cli_actor
from engine.services.recovery import settle_for_readers

# The pages and the HTTP routes beside them (/api/v1/health, …) on one port: dashboard/web.py.
DASHBOARD_APP = PROJECT_ROOT / "dashboard" / "web.py"

app = typer.Typer(
    help="Seedlab: upload datasets, launch training runs, browse results.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
datasets_app = typer.Typer(help="Add and list datasets.", no_args_is_help=True)
runs_app = typer.Typer(
    help="Submit, list, inspect, cancel and wait for runs.", no_args_is_help=True
)
engine_app = typer.Typer(help="What the engine is running, where.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
app.add_typer(runs_app, name="runs")
app.add_typer(engine_app, name="engine")
projects_app = typer.Typer(help="List and create projects.", no_args_is_help=True)
demo_app = typer.Typer(help="Synthetic data for trying Seedlab at scale.", no_args_is_help=True)
app.add_typer(projects_app, name="projects")
app.add_typer(demo_app, name="demo")


def _fail(message: str, code: int = 1) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _ready() -> tuple[Settings, Any]:
    """Settings and a migrated database (cheap when already at head)."""
    settings = Settings.from_env()
    settings.ensure_dirs()
    db = get_db(settings)
    try:
        upgrade_to_head(db)
    except UnknownSchemaVersion as exc:
        _fail(str(exc))
    return settings, db


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds") + "Z"
    return str(value)


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=_json_default))


def _settings() -> Settings:
    return Settings.from_env()


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


# ------------------------------------------------------------------ set-up


@app.command()
def init(
    demo: Annotated[bool, typer.Option(help="Register the bundled demo datasets.")] = True,
) -> None:
    """Create SEEDLAB_HOME, migrate the database to the current schema, add demo datasets."""
    from engine.data.demo import register_demo_datasets

    settings, db = _ready()
    added = register_demo_datasets(settings, db) if demo else []
    typer.echo(f"Seedlab home: {settings.home}")
    typer.echo(f"Database: {settings.db_url_shown} (schema up to date)")
    if added:
        typer.echo(f"Demo datasets added: {', '.join(added)}")


# ------------------------------------------------------------------ datasets


@datasets_app.command("add")
def datasets_add(
    file: Annotated[
        Path, typer.Argument(help="CSV, TSV or Parquet file, or a ZIP of image class folders")
    ],
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the file name)")] = None,
    target: Annotated[
        str | None, typer.Option(help="Column to predict (default: the last)")
    ] = None,
    kind: Annotated[
        str,
        typer.Option(
            help="auto (a table whose content is one free-text column is text), tabular or text"
        ),
    ] = "auto",
    text_column: Annotated[
        str | None, typer.Option(help="Text datasets: the column with the texts (implies text)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the dataset as JSON")] = False,
) -> None:
    """Validate a table (or a ZIP of images, one folder per class) and store it as a dataset."""
    from engine.services.actions import add_dataset_file

    settings, db = _ready()
    try:
        record = add_dataset_file(
            settings,
            db,
            cli_actor(),
            file,
            name=name,
            target=target,
            kind=kind,
            text_column=text_column,
        )
    except SeedlabError as exc:
        _fail(str(exc))
    if as_json:
        _print_json(record.to_dict())
        return
    if record.kind == "image":
        typer.echo(
            f"Added image dataset {record.name!r} (id {record.id}): {record.n_rows} images in "
            f"{len(record.schema['classes'])} classes: {', '.join(record.schema['classes'][:10])}"
        )
        return
    extra = ""
    if record.task == "classification":
        extra = f", classes: {', '.join(record.schema['classes'][:10])}"
    inputs = f"{len(record.schema['features'])} features"
    if record.kind == "text":
        inputs = f"text in column {record.schema['text_column']!r}"
    typer.echo(
        f"Added dataset {record.name!r} (id {record.id}): {record.n_rows} rows, "
        f"{inputs}, target {record.target!r} → {record.task}{extra}"
    )


@datasets_app.command("list")
def datasets_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List datasets."""
    _, db = _ready()
    records = dataset_store.list_datasets(db)
    if as_json:
        _print_json(
            [
                {k: v for k, v in r.to_dict().items() if k != "schema"}
                | {"features": r.schema["features"]}
                for r in records
            ]
        )
        return
    if not records:
        typer.echo("No datasets yet. Add one: seedlab datasets add FILE --name N --target COL")
        return
    typer.echo(f"{'id':>4}  {'name':<24} {'kind':<8} {'task':<15} {'rows':>8}  target")
    for r in records:
        typer.echo(
            f"{r.id:>4}  {r.name[:24]:<24} {r.kind:<8} {r.task:<15} {r.n_rows:>8}  {r.target}"
        )


@datasets_app.command("show")
def datasets_show(
    ref: Annotated[str, typer.Argument(help="Dataset id or name")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show a dataset's profile."""
    from engine.data.columns import profile_table
    from engine.services.launch import find_dataset

    _, db = _ready()
    try:
        record = find_dataset(db, ref)
    except SeedlabError as exc:
        _fail(str(exc))
    if as_json:
        _print_json(record.to_dict())
        return
    if record.kind == "image":
        typer.echo(f"{record.name} (id {record.id}): {record.n_rows} images, task {record.task}")
        stats = record.schema["image_stats"]
        typer.echo(
            f"width {stats['width']}, height {stats['height']}, modes {stats['modes']}; "
            f"auto image_size {record.schema['auto_image_size']}, "
            f"channels {record.schema['auto_channels']}"
        )
        for name, count in record.schema["class_counts"].items():
            typer.echo(f"  {name:<24} {count:>7}")
        return
    typer.echo(
        f"{record.name} (id {record.id}): {record.n_rows} rows, target {record.target!r}, "
        f"task {record.task}"
    )
    typer.echo(profile_table(record).to_string(index=False))


# ------------------------------------------------------------------ runs


def _run_json(run: RunRecord) -> dict[str, Any]:
    data = run.to_dict()
    data["summary"] = run.summary
    data["test_metrics"] = {k: v["last"] for k, v in run.summary.items() if k.startswith("test_")}
    return data


@runs_app.command("submit")
def runs_submit(
    dataset: Annotated[str, typer.Option(help="Dataset name or id")],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="key=value config override")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="JSON/YAML file of config values")] = None,
    name: Annotated[str | None, typer.Option(help="Run name")] = None,
    project: Annotated[str | None, typer.Option(help="Project name (default: Default)")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag (repeatable)")] = None,
) -> None:
    """Queue a training run; prints its id."""
    from engine.services.actions import launch_run
    from engine.services.run_admin import find_project

    _, db = _ready()
    try:
        values = load_config_file(config) if config else {}
        values.update(parse_overrides(set_ or []))
        project_id = find_project(db, project).id if project else None
        run_id = launch_run(
            db,
            cli_actor(),
            dataset,
            values,
            name=name,
            project_id=project_id,
            tags=tuple(tag or ()),
        )
    except SeedlabError as exc:
        _fail(str(exc))
    typer.echo(run_id)


@runs_app.command("clone")
def runs_clone(
    run_id: int,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="key=value config override")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Run name")] = None,
) -> None:
    """Queue a copy of a run's config (with overrides); prints the new id."""
    from engine.services.actions import launch_run

    _, db = _ready()
    source = run_store.get_run(db, run_id)
    if source is None:
        _fail(f"No run {run_id}.")
    try:
        values = dict(source.config) | parse_overrides(set_ or [])
        new_id = launch_run(
            db, cli_actor(), source.dataset_id, values, name=name, parent_run_id=source.id
        )
    except SeedlabError as exc:
        _fail(str(exc))
    typer.echo(new_id)


@runs_app.command("list")
def runs_list(
    status: Annotated[
        list[str] | None, typer.Option(help=f"One of {', '.join(RUN_STATUSES)}")
    ] = None,
    dataset: Annotated[str | None, typer.Option(help="Dataset name or id")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    project: Annotated[str | None, typer.Option(help="Only this project")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Runs with any of these tags")] = None,
    sort: Annotated[
        str, typer.Option(help="created_at, id, name, status, dataset, metric:KEY or param:NAME")
    ] = "created_at",
    ascending: Annotated[bool, typer.Option("--ascending", help="Smallest first")] = False,
    archived: Annotated[bool, typer.Option("--archived", help="Include archived runs")] = False,
) -> None:
    """List runs, newest first (or by --sort), with their main metrics."""
    from db.run_query import RunFilter, query_runs
    from engine.services.launch import find_dataset
    from engine.services.run_admin import find_project

    _, db = _ready()
    bad = [s for s in status or [] if s not in RUN_STATUSES]
    if bad:
        _fail(f"--status must be one of {', '.join(RUN_STATUSES)}; got {', '.join(bad)}")
    settle_for_readers(_settings(), db)  # no run shows `running` when no engine runs it
    try:
        flt = RunFilter(
            project_id=find_project(db, project).id if project else None,
            statuses=tuple(status or ()),
            dataset_ids=(find_dataset(db, dataset).id,) if dataset else (),
            tags=tuple(tag or ()),
            include_archived=archived,
        )
        runs = query_runs(db, flt, sort=sort, descending=not ascending, limit=limit)
    except (SeedlabError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        _print_json([_run_json(r) for r in runs])
        return
    if not runs:
        typer.echo("No runs. Queue one: seedlab runs submit --dataset iris")
        return
    typer.echo(
        f"{'id':>5}  {'status':<10} {'dataset':<16} {'name':<34} {'main metric':<22} duration"
    )
    for r in runs:
        main_key = next((k for k, _ in catalog.HEADLINE_METRIC.values() if k in r.summary), None)
        metric = f"{catalog.metric_label(main_key)} {_fmt(r.last(main_key))}" if main_key else ""
        duration = f"{r.duration_s:.1f}s" if r.duration_s is not None else ""
        typer.echo(
            f"{r.id:>5}  {r.status:<10} {r.dataset_name[:16]:<16} {r.name[:34]:<34} "
            f"{metric:<22} {duration}"
        )


@runs_app.command("show")
def runs_show(run_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Status, config, metrics and error of one run."""
    settings, db = _ready()
    settle_for_readers(settings, db)
    run = run_store.get_run(db, run_id)
    if run is None:
        _fail(f"No run {run_id}.")
    if as_json:
        _print_json(_run_json(run))
        return
    typer.echo(
        f"run {run.id} {run.name!r}: {run.status} (dataset {run.dataset_name}, "
        f"device {run.device or '-'})"
    )
    if run.error:
        typer.echo(f"error: {run.error}")
    for key, entry in sorted(run.summary.items()):
        typer.echo(f"  {key:<24} {_fmt(entry['last'])}  (step {entry['step']})")
    typer.echo("config: " + json.dumps(run.config))


@runs_app.command("cancel")
def runs_cancel(run_id: int) -> None:
    """Ask a queued or running run to stop."""
    from engine.services.actions import cancel_run

    _, db = _ready()
    try:
        status = cancel_run(db, cli_actor(), run_id)
    except SeedlabError as exc:
        _fail(str(exc))
    if status in ("completed", "failed"):
        _fail(f"Run {run_id} already ended ({status}); nothing to cancel.")
    if status == "cancelled":
        typer.echo(f"Run {run_id} cancelled.")
    else:
        typer.echo(f"Cancel requested; run {run_id} stops at its next flush (about a second).")


@runs_app.command("resume")
def runs_resume(run_id: int) -> None:
    """Queue a cancelled or failed run again; it continues after its last checkpointed epoch."""
    from engine.services.actions import resume

    settings, db = _ready()
    try:
        epoch = resume(settings, db, cli_actor(), run_id)
    except SeedlabError as exc:
        _fail(str(exc))
    typer.echo(f"Run {run_id} queued; it resumes after epoch {epoch}.")


@runs_app.command("wait")
def runs_wait(
    run_id: int,
    timeout: Annotated[float, typer.Option(help="Seconds to wait before giving up")] = 600.0,
) -> None:
    """Wait until a run ends; exit 0 if it completed, 1 otherwise."""
    settings, db = _ready()
    deadline = time.monotonic() + timeout
    while True:
        settle_for_readers(settings, db)
        run = run_store.get_run(db, run_id)
        if run is None:
            _fail(f"No run {run_id}.")
        if run.status in FINISHED_STATUSES:
            break
        if time.monotonic() > deadline:
            _fail(f"Run {run_id} is still {run.status} after {timeout:g} s.", code=3)
        time.sleep(0.5)
    typer.echo(f"Run {run_id} {run.status}." + (f" {run.error}" if run.error else ""))
    if run.status != "completed":
        raise typer.Exit(1)


@runs_app.command("logs")
def runs_logs(run_id: int, lines: Annotated[int, typer.Option(min=1)] = 100) -> None:
    """Print the tail of a run's log."""
    settings, _ = _ready()
    typer.echo(tail(log_path(settings, run_id), lines=lines) or f"No log for run {run_id} yet.")


# ------------------------------------------------------------------ projects, run edits, scale


@projects_app.command("list")
def projects_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List projects with their number of runs."""
    from dataclasses import asdict

    from db import projects as project_store

    _, db = _ready()
    records = project_store.list_projects(db)
    if as_json:
        _print_json([asdict(p) for p in records])
        return
    typer.echo(f"{'id':>4}  {'runs':>7}  name")
    for p in records:
        typer.echo(f"{p.id:>4}  {p.n_runs:>7}  {p.name}")


@projects_app.command("create")
def projects_create(
    name: str, description: Annotated[str, typer.Option(help="One line about it")] = ""
) -> None:
    """Create a project; prints its id."""
    from engine.services.actions import create_project

    _, db = _ready()
    try:
        typer.echo(create_project(db, cli_actor(), name, description))
    except SeedlabError as exc:
        _fail(str(exc))


def _edit_runs(db: Any, run_ids: list[int], action: str, change: Any) -> None:
    """A db.run_edits change through services.actions (checked, audited); errors as one line."""
    from engine.services.actions import edit_runs

    try:
        edit_runs(db, cli_actor(), run_ids, action, change)
    except SeedlabError as exc:
        _fail(str(exc))


@runs_app.command("tag")
def runs_tag(
    run_ids: Annotated[list[int], typer.Argument(help="Run ids")],
    add: Annotated[list[str] | None, typer.Option("--add", help="Tag to add (repeatable)")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="Tag to remove (repeatable)")
    ] = None,
) -> None:
    """Add or remove tags on one or more runs."""
    from db import run_edits

    _, db = _ready()
    if not add and not remove:
        _fail("Give --add TAG and/or --remove TAG.")
    _edit_runs(
        db,
        run_ids,
        "tag",
        lambda ids: (
            run_edits.add_tags(db, ids, add or []),
            run_edits.remove_tags(db, ids, remove or []),
        ),
    )
    for run_id in run_ids:
        run = run_store.get_run(db, run_id)
        typer.echo(f"run {run_id}: {', '.join(run.tags) if run and run.tags else '(no tags)'}")


@runs_app.command("note")
def runs_note(
    run_id: int, text: Annotated[str, typer.Argument(help="The note ('' clears)")]
) -> None:
    """Set a run's free-text note."""
    from db import run_edits

    _, db = _ready()
    _edit_runs(db, [run_id], "note", lambda ids: run_edits.set_notes(db, ids, text))
    typer.echo(f"Note of run {run_id} saved.")


@runs_app.command("rename")
def runs_rename(run_id: int, name: str) -> None:
    """Rename a run."""
    from db import run_edits

    _, db = _ready()
    _edit_runs(db, [run_id], "rename", lambda ids: run_edits.rename_run(db, ids[0], name))
    typer.echo(f"Run {run_id} renamed to {name.strip()!r}.")


@runs_app.command("archive")
def runs_archive(
    run_ids: Annotated[list[int], typer.Argument(help="Run ids")],
    undo: Annotated[bool, typer.Option("--undo", help="Unarchive instead")] = False,
) -> None:
    """Archive runs (hidden from the run list unless asked for; nothing is deleted)."""
    from db import run_edits

    _, db = _ready()
    _edit_runs(
        db,
        run_ids,
        "unarchive" if undo else "archive",
        lambda ids: run_edits.set_archived(db, ids, not undo),
    )
    typer.echo(f"{'Unarchived' if undo else 'Archived'} {len(run_ids)} run(s).")


@runs_app.command("delete")
def runs_delete(
    run_ids: Annotated[list[int], typer.Argument(help="Run ids")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Delete finished runs with their metrics and files (cannot be undone)."""
    from engine.services.actions import delete_run

    settings, db = _ready()
    if not yes and not typer.confirm(
        f"Delete {len(run_ids)} run(s) {', '.join(map(str, run_ids))} and their files?"
    ):
        _fail("Nothing deleted.")
    for run_id in run_ids:
        try:
            files_gone = delete_run(settings, db, cli_actor(), run_id)
        except SeedlabError as exc:
            _fail(str(exc))
        note = (
            "" if files_gone else f" (its folder {settings.run_dir(run_id)} could not be removed)"
        )
        typer.echo(f"Deleted run {run_id}{note}.")


@demo_app.command("fill")
def demo_fill(
    project: Annotated[
        str, typer.Option(help="Project to fill (created if missing)")
    ] = "Load test",
    runs: Annotated[int, typer.Option(min=1, help="Synthetic runs to add")] = 1000,
    steps: Annotated[int, typer.Option(min=1, help="Points per metric curve")] = 100,
    seed: Annotated[int, typer.Option(help="Random seed")] = 0,
) -> None:
    """Fill a project with synthetic finished runs (5 curves each), written in bulk."""
    from engine.services.demo_fill import fill_project

    settings, db = _ready()

    def progress(done: int, total: int) -> None:
        typer.echo(f"  {done:,}/{total:,} runs", err=True)

    result = fill_project(
        settings, db, project=project, runs=runs, steps=steps, seed=seed, progress=progress
    )
    typer.echo(
        f"Added {result.runs:,} runs ({result.points:,} metric points) to project "
        f"{result.project_name!r} in {result.seconds:.1f} s."
    )


# ------------------------------------------------------------------ processes


@app.command()
def worker(
    max_concurrent: Annotated[
        int,
        typer.Option(
            "--max-concurrent",
            "--cpu-cap",
            min=1,
            envvar="SEEDLAB_CPU_CAP",
            help="Runs at once on the CPU",
        ),
    ] = 1,
    gpu_cap: Annotated[
        int, typer.Option(min=1, envvar="SEEDLAB_GPU_CAP", help="Runs at once on each GPU")
    ] = 1,
    poll_interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls")] = 0.5,
    executor: Annotated[
        str,
        typer.Option(
            envvar="SEEDLAB_EXECUTOR",
            help="local (subprocesses on this machine) or ray (tasks on a Ray cluster)",
        ),
    ] = "local",
    address: Annotated[
        str,
        typer.Option(
            envvar="SEEDLAB_RAY_ADDRESS",
            help="Ray executor: HOST:PORT, ray://HOST:PORT, or auto (the cluster `seedlab "
            "cluster up` started, else Ray's own lookup)",
        ),
    ] = "auto",
) -> None:
    """Run the engine worker in the foreground (Ctrl-C stops it; its runs resume on next start)."""
    from engine.execution.worker import run_worker

    if executor not in ("local", "ray"):
        raise typer.BadParameter(f"{executor!r}: use local or ray", param_hint="--executor")
    settings, _ = _ready()
    run_worker(
        settings,
        max_concurrent,
        poll_interval,
        gpu_cap,
        executor=executor,
        ray_address=address,
    )


def _size(n: float | None) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


@engine_app.command("status")
def engine_status_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Is a worker alive, what is queued, what runs where, and each device's load."""
    from engine.services.engine_status import START_HINT, engine_status

    settings, db = _ready()
    status = engine_status(settings, db)
    if as_json:
        _print_json(status.to_dict())
        return
    if not status.alive:
        seen = status.last_seen
        when = f" (last heartbeat {status.heartbeat_age_s(seen):.0f} s ago)" if seen else " (never)"
        typer.echo(f"Engine not running{when}. {START_HINT}")
    for w in status.workers:
        typer.echo(
            f"worker {w.id} on {w.hostname} (pid {w.pid}): alive, heartbeat "
            f"{status.heartbeat_age_s(w):.1f} s ago, {w.max_concurrent} slots"
        )
    typer.echo(f"queued: {status.queued}   running: {len(status.running)}")
    for r in status.running:
        epoch = int(r.summary.get("train_loss", {}).get("step") or 0)
        typer.echo(
            f"  run {r.id} {r.name[:30]!r} on {r.device or '?'}: epoch {epoch}/"
            f"{r.config.get('epochs', '?')}"
        )
    for d in status.devices():
        util = "" if d.get("utilization") is None else f", {d['utilization']:.0f}% busy"
        typer.echo(
            f"  device {d['key']}: {d['name']}, memory {_size(d.get('memory_used'))} of "
            f"{_size(d.get('memory_total'))}{util}, runs {d['runs'] or '-'}"
        )
    kinds = {d.get("kind") for d in status.devices()}
    if status.alive and not kinds & {"cuda", "ray"}:
        typer.echo("  no GPU: runs train on the CPU")


def _dashboard_cmd(port: int, address: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(DASHBOARD_APP),
        "--server.port",
        str(port),
        "--server.address",
        address,
    ]


def _auth_notice(db: Any, address: str) -> None:
    """Access control follows the bind address (the dashboard reads it too); say so, and how
    to create the first admin when there are no users."""
    from engine.services.accounts import FIRST_ADMIN_HINT, has_users
    from engine.services.permissions import auth_required

    try:
        on = auth_required(address)
    except SeedlabError as exc:
        _fail(str(exc))
    if not on:
        return
    typer.echo(f"Access control is on (address {address}, SEEDLAB_AUTH): pages ask for a login.")
    if not has_users(db):
        typer.echo(f"No users yet: create the first admin with `{FIRST_ADMIN_HINT}`.")


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port to serve on")] = 8501,
    address: Annotated[
        str, typer.Option(help="Address to bind (not localhost: access control on)")
    ] = "localhost",
) -> None:
    """Serve the dashboard (the engine must run separately: seedlab worker). Binding another
    address than localhost turns access control on."""
    _, db = _ready()
    _auth_notice(db, address)
    os.chdir(PROJECT_ROOT)  # .streamlit/config.toml is read from the working directory
    os.execv(sys.executable, _dashboard_cmd(port, address))


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Dashboard port")] = 8501,
    address: Annotated[
        str, typer.Option(help="Address to bind (not localhost: access control on)")
    ] = "localhost",
    max_concurrent: Annotated[
        int, typer.Option("--max-concurrent", "--cpu-cap", min=1, help="Runs at once on the CPU")
    ] = 1,
    gpu_cap: Annotated[int, typer.Option(min=1, help="Runs at once on each GPU")] = 1,
) -> None:
    """Start the engine worker and the dashboard together; Ctrl-C stops both. Binding another
    address than localhost turns access control on."""
    from engine.data.demo import register_demo_datasets

    settings, db = _ready()
    _auth_notice(db, address)
    register_demo_datasets(settings, db)
    env = settings.child_env()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.execution.worker",
                "--max-concurrent",
                str(max_concurrent),
                "--gpu-cap",
                str(gpu_cap),
            ],
            env=env,
            cwd=PROJECT_ROOT,
        ),
        subprocess.Popen(_dashboard_cmd(port, address), env=env, cwd=PROJECT_ROOT),
    ]
    typer.echo(f"Seedlab is up: http://{address}:{port}  (Ctrl-C stops the engine and dashboard)")

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        failed = [p for p in procs if p.poll() not in (None, 0)]
        if failed:
            typer.echo("error: a Seedlab process exited; stopping the other.", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


# Registered last: cli_sweeps uses this module's helpers.
from engine.cli.sweeps import sweeps_app  # noqa: E402

app.add_typer(sweeps_app, name="sweeps")

from engine.cli.users import audit_app, users_app  # noqa: E402

app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")

# Model registry, feature importance and HTML reports (issue 7).
from engine.cli.models import register_commands  # noqa: E402

register_commands(app, runs_app)

# `seedlab runs export|compress|variants` (issue 7): engine/cli/export.py
from engine.cli.export import register as register_export_commands  # noqa: E402

register_export_commands(runs_app)

from engine.cli.predict import predict_command  # noqa: E402

app.command("predict")(predict_command)

# `seedlab cluster up|down|status` (issue 11): engine/cli/cluster.py
from engine.cli.cluster import cluster_app  # noqa: E402

app.add_typer(cluster_app, name="cluster")


def main() -> None:
    try:
        app()
    except SeedlabError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
