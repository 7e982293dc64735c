"""`seedlab runs submit|clone|list|show|cancel|resume|wait|logs|tag|note|rename|archive|delete`.

What is made from a finished run (export, compress, variants, importance, report) is in
engine/cli/export.py, in the same `runs` group (engine/cli/main.py puts them together).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine

from db import runs as run_store
from db.models import FINISHED_STATUSES, RUN_STATUSES
from db.records import RunRecord
from engine.cli.common import actor, fail, fmt, print_json, ready
from engine.core import catalog, verdicts
from engine.core.config import load_config_file, parse_overrides
from engine.core.presets import PRESET_NAMES, preset_for_dataset
from engine.core.provenance import read_code
from engine.core.run_files import log_path, tail
from engine.services.recovery import settle_for_readers

app = typer.Typer(help="Submit, list, inspect, cancel and wait for runs.", no_args_is_help=True)

RunIds = Annotated[list[int], typer.Argument(help="Run ids")]
Overrides = Annotated[list[str] | None, typer.Option("--set", help="key=value config override")]


def _run_json(run: RunRecord) -> dict[str, Any]:
    data = run.to_dict()
    # The dataset version it trained on; runs from before versions trained on version 1.
    data["dataset_version"] = run.dataset_version or (1 if run.dataset_id is not None else None)
    data["summary"] = run.summary
    data["test_metrics"] = {k: v["last"] for k, v in run.summary.items() if k.startswith("test_")}
    # The verdict (engine/ml/verdict.py): [] and null when the run has none (not completed,
    # or completed before verdicts existed; "verdict" itself is then null).
    data["warnings"] = verdicts.warnings_of(run.verdict)
    data["baseline"] = run.verdict.get("baseline") if isinstance(run.verdict, dict) else None
    return data


def _dataset_text(run: RunRecord) -> str:
    """ "iris@2": the exact version it trained on (runs from before versions: version 1)."""
    if run.dataset_name is None:
        return "—"  # an SDK run on no Seedlab dataset
    return f"{run.dataset_name}@{run.dataset_version or 1}"


def _get_run(db: Engine, run_id: int) -> RunRecord:
    run = run_store.get_run(db, run_id)
    if run is None:
        fail(f"No run {run_id}.")
    return run


@app.command("submit")
def runs_submit(
    dataset: Annotated[
        str | None,
        typer.Option(
            help="Dataset name or id; NAME@N trains on version N (default: latest); optional "
            "with --recipe"
        ),
    ] = None,
    recipe: Annotated[
        str | None, typer.Option(help="Run a registered recipe; --set gives its parameters")
    ] = None,
    set_: Overrides = None,
    config: Annotated[Path | None, typer.Option(help="JSON/YAML file of config values")] = None,
    name: Annotated[str | None, typer.Option(help="Run name")] = None,
    project: Annotated[str | None, typer.Option(help="Project name (default: Default)")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag (repeatable)")] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help=f"{' / '.join(PRESET_NAMES)}: epochs, early stopping and model size in one "
            "choice (default: balanced, the suggested settings); --config and --set win over it"
        ),
    ] = None,
) -> None:
    """Queue a training run; prints its id."""
    from engine.services.launch import find_dataset
    from engine.services.run_admin import find_project
    from engine.services.runs import launch_run

    current, db = ready()
    if recipe is not None:
        from engine.services.recipes import submit_recipe_run

        values = load_config_file(config) if config else {}
        values.update(parse_overrides(set_ or []))
        device = str(values.pop("device", "auto"))
        typer.echo(
            submit_recipe_run(
                current,
                db,
                actor(),
                recipe,
                values,
                dataset=dataset,
                device=device,
                name=name,
                project_id=find_project(db, project).id if project else None,
                tags=tuple(tag or ()),
            )
        )
        return
    if dataset is None:
        fail("Give --dataset (a dataset name or id), or --recipe to run a registered script.")
    values = load_config_file(config) if config else {}
    values.update(parse_overrides(set_ or []))
    if preset is not None:
        record = find_dataset(db, dataset)
        model = str(values.get("model", "auto"))
        values = {**preset_for_dataset(preset.strip().lower(), record, model), **values}
    project_id = find_project(db, project).id if project else None
    run_id = launch_run(
        db, actor(), dataset, values, name=name, project_id=project_id, tags=tuple(tag or ())
    )
    typer.echo(run_id)


@app.command("clone")
def runs_clone(
    run_id: int,
    set_: Overrides = None,
    name: Annotated[str | None, typer.Option(help="Run name")] = None,
) -> None:
    """Queue a copy of a run's config (with overrides); prints the new id."""
    from engine.services.runs import launch_run

    current, db = ready()
    source = _get_run(db, run_id)
    if source.source == "recipe":  # its own code snapshot, whatever the recipe is now
        from engine.services.recipes import clone_recipe_run

        typer.echo(clone_recipe_run(current, db, actor(), run_id, parse_overrides(set_ or [])))
        return
    values = dict(source.config) | parse_overrides(set_ or [])
    new_id = launch_run(
        db,
        actor(),
        source.dataset_id,
        values,
        name=name,
        parent_run_id=source.id,
        dataset_version=source.dataset_version or 1,  # a copy trains on the same data
    )
    typer.echo(new_id)


@app.command("list")
def runs_list(
    status: Annotated[
        list[str] | None, typer.Option(help=f"One of {', '.join(RUN_STATUSES)}")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset name or id; NAME@N: only runs on version N")
    ] = None,
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
    from engine.services.dataset_versions import resolve, split_ref
    from engine.services.launch import find_dataset
    from engine.services.run_admin import find_project

    settings, db = ready()
    bad = [s for s in status or [] if s not in RUN_STATUSES]
    if bad:
        fail(f"--status must be one of {', '.join(RUN_STATUSES)}; got {', '.join(bad)}")
    settle_for_readers(settings, db)  # no run shows `running` when no engine runs it
    try:
        flt = RunFilter(
            project_id=find_project(db, project).id if project else None,
            statuses=tuple(status or ()),
            dataset_ids=(find_dataset(db, dataset).id,) if dataset else (),
            tags=tuple(tag or ()),
            include_archived=archived,
            dataset_version=(
                resolve(db, dataset)[1].number
                if dataset and split_ref(dataset)[1] is not None
                else None
            ),
        )
        runs = query_runs(db, flt, sort=sort, descending=not ascending, limit=limit)
    except ValueError as exc:  # a --sort key the query does not know
        fail(str(exc))
    if as_json:
        print_json([_run_json(r) for r in runs])
        return
    if not runs:
        typer.echo("No runs. Queue one: seedlab runs submit --dataset iris")
        return
    typer.echo(
        f"{'id':>5}  {'status':<10} {'dataset':<16} {'name':<34} {'main metric':<22} "
        f"{'duration':<9} verdict"
    )
    for r in runs:
        main_key = next((k for k, _ in catalog.HEADLINE_METRIC.values() if k in r.summary), None)
        metric = f"{catalog.metric_label(main_key)} {fmt(r.last(main_key))}" if main_key else ""
        duration = f"{r.duration_s:.1f}s" if r.duration_s is not None else ""
        typer.echo(
            f"{r.id:>5}  {r.status:<10} {_dataset_text(r)[:16]:<16} {r.name[:34]:<34} "
            f"{metric:<22} {duration:<9} {verdicts.short_verdict(r.status, r.verdict)}"
        )


@app.command("show")
def runs_show(run_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Status, config, metrics and error of one run."""
    settings, db = ready()
    settle_for_readers(settings, db)
    run = _get_run(db, run_id)
    # What ran (engine/core/provenance.py): null before the run started.
    code = read_code(settings, run_id)
    if as_json:
        print_json({**_run_json(run), "code": code})
        return
    typer.echo(
        f"run {run.id} {run.name!r}: {run.status} (dataset {_dataset_text(run)}, "
        f"device {run.device or '-'}, source {run.source})"
    )
    if code:
        git = code.get("git") or {}
        commit = (git.get("commit") or "")[:12] or "no git checkout"
        changed = " with uncommitted changes" if git.get("dirty") else ""
        python = (code.get("python") or {}).get("version", "?")
        typer.echo(f"code: {commit}{changed}, Python {python}, on {code.get('host') or '?'}")
    if run.error:
        typer.echo(f"error: {run.error}")
    if run.status == "completed":
        verdict = run.verdict if isinstance(run.verdict, dict) else {}
        typer.echo(f"verdict: {verdict.get('summary') or verdicts.NO_VERDICT}")
        for warning in verdicts.warnings_of(run.verdict):
            typer.echo(f"warning {warning['code']}: {warning['message']} {warning['advice']}")
    for key, entry in sorted(run.summary.items()):
        typer.echo(f"  {key:<24} {fmt(entry['last'])}  (step {entry['step']})")
    typer.echo("config: " + json.dumps(run.config))


@app.command("cancel")
def runs_cancel(run_id: int) -> None:
    """Ask a queued or running run to stop."""
    from engine.services.runs import cancel_run

    _, db = ready()
    status = cancel_run(db, actor(), run_id)
    if status in ("completed", "failed"):
        fail(f"Run {run_id} already ended ({status}); nothing to cancel.")
    if status == "cancelled":
        typer.echo(f"Run {run_id} cancelled.")
    else:
        typer.echo(f"Cancel requested; run {run_id} stops at its next flush (about a second).")


@app.command("resume")
def runs_resume(run_id: int) -> None:
    """Queue a cancelled or failed run again; it continues after its last checkpointed epoch."""
    from engine.services.runs import resume

    settings, db = ready()
    epoch = resume(settings, db, actor(), run_id)
    if _get_run(db, run_id).source == "recipe":
        typer.echo(f"Run {run_id} queued; its script starts again with SEEDLAB_RESUMED=1.")
        return
    typer.echo(f"Run {run_id} queued; it resumes after epoch {epoch}.")


@app.command("wait")
def runs_wait(
    run_id: int,
    timeout: Annotated[float, typer.Option(help="Seconds to wait before giving up")] = 600.0,
) -> None:
    """Wait until a run ends; exit 0 if it completed, 1 otherwise (3 when --timeout passes)."""
    settings, db = ready()
    deadline = time.monotonic() + timeout
    while True:
        settle_for_readers(settings, db)
        run = _get_run(db, run_id)
        if run.status in FINISHED_STATUSES:
            break
        if time.monotonic() > deadline:
            fail(f"Run {run_id} is still {run.status} after {timeout:g} s.", code=3)
        time.sleep(0.5)
    typer.echo(f"Run {run_id} {run.status}." + (f" {run.error}" if run.error else ""))
    if run.status != "completed":
        raise typer.Exit(1)


@app.command("logs")
def runs_logs(run_id: int, lines: Annotated[int, typer.Option(min=1)] = 100) -> None:
    """Print the tail of a run's log."""
    settings, _ = ready()
    typer.echo(tail(log_path(settings, run_id), lines=lines) or f"No log for run {run_id} yet.")


@app.command("tag")
def runs_tag(
    run_ids: RunIds,
    add: Annotated[list[str] | None, typer.Option("--add", help="Tag to add (repeatable)")] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", help="Tag to remove (repeatable)")
    ] = None,
) -> None:
    """Add or remove tags on one or more runs."""
    from engine.services.runs import tag_runs

    _, db = ready()
    if not add and not remove:
        fail("Give --add TAG and/or --remove TAG.")
    tag_runs(db, actor(), run_ids, add or [], remove or [])
    for run_id in run_ids:
        run = run_store.get_run(db, run_id)
        typer.echo(f"run {run_id}: {', '.join(run.tags) if run and run.tags else '(no tags)'}")


@app.command("note")
def runs_note(
    run_id: int, text: Annotated[str, typer.Argument(help="The note ('' clears)")]
) -> None:
    """Set a run's free-text note."""
    from engine.services.runs import set_notes

    _, db = ready()
    set_notes(db, actor(), [run_id], text)
    typer.echo(f"Note of run {run_id} saved.")


@app.command("rename")
def runs_rename(run_id: int, name: str) -> None:
    """Rename a run."""
    from engine.services.runs import rename_run

    _, db = ready()
    rename_run(db, actor(), run_id, name)
    typer.echo(f"Run {run_id} renamed to {name.strip()!r}.")


@app.command("pin")
def runs_pin(
    run_id: int,
    undo: Annotated[bool, typer.Option("--undo", help="Unpin instead")] = False,
) -> None:
    """Pin a run as its project's baseline: first on the Runs page, drawn in every Compare."""
    from engine.services.runs import pin_baseline

    _, db = ready()
    pin_baseline(db, actor(), run_id, pinned=not undo)
    done = "unpinned" if undo else "pinned as its project's baseline"
    typer.echo(f"Run {run_id} {done}.")


@app.command("archive")
def runs_archive(
    run_ids: RunIds,
    undo: Annotated[bool, typer.Option("--undo", help="Unarchive instead")] = False,
) -> None:
    """Archive runs (hidden from the run list unless asked for; nothing is deleted)."""
    from engine.services.runs import set_archived

    _, db = ready()
    set_archived(db, actor(), run_ids, not undo)
    typer.echo(f"{'Unarchived' if undo else 'Archived'} {len(run_ids)} run(s).")


@app.command("delete")
def runs_delete(
    run_ids: RunIds,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Delete finished runs with their metrics and files (cannot be undone)."""
    from engine.services.runs import delete_run

    settings, db = ready()
    if not yes and not typer.confirm(
        f"Delete {len(run_ids)} run(s) {', '.join(map(str, run_ids))} and their files?"
    ):
        fail("Nothing deleted.")
    for run_id in run_ids:
        files_gone = delete_run(settings, db, actor(), run_id)
        note = (
            "" if files_gone else f" (its folder {settings.run_dir(run_id)} could not be removed)"
        )
        typer.echo(f"Deleted run {run_id}{note}.")
