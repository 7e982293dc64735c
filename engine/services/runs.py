"""Every change a user makes to runs, checked and audited: launch, cancel, resume, edit (name,
tags, note, archive), delete, and the HTML report (a read-out of a run, audited as an export).

The dashboard and the CLI call these with the acting user; each checks the role table
(permissions.py) against the run's owner before it touches anything, and writes one audit
entry after it succeeded. So a refused action changes nothing, whichever page or crafted
request asked for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from db import runs as run_store
from db.writes import run_edits
from db.writes import runs as run_writes
from engine.core.catalog import DEFAULT_MODEL
from engine.core.config import RunConfig
from engine.core.errors import SeedlabError
from engine.core.settings import Settings
from engine.services import audit
from engine.services.alerts import notify_run_ended
from engine.services.permissions import Actor, Permission, check


def _run_owner(db: Engine, run_id: int) -> str | None:
    run = run_store.get_run(db, run_id)
    if run is None:
        raise SeedlabError(f"No run {run_id}.")
    return run.owner


def check_run(db: Engine, actor: Actor, permission: Permission, run_id: int) -> None:
    """Refuse unless `actor` may do `permission` to this run (its owner counts)."""
    check(actor, permission, _run_owner(db, run_id), what=f"run {run_id}")


def launch_run(
    db: Engine,
    actor: Actor,
    dataset_ref: str | int,
    values: dict[str, Any] | RunConfig,
    **submit: Any,
) -> int:
    """engine.services.launch.submit_run as `actor`, who becomes the run's owner."""
    from engine.services.launch import submit_run

    check(actor, Permission.LAUNCH)
    run_id = submit_run(db, dataset_ref, values, owner=actor.name, **submit)
    parent = submit.get("parent_run_id")
    detail = audit.dataset_label(db, dataset_ref) + (f", from run {parent}" if parent else "")
    audit.record(db, actor, "launch", f"run {run_id}", detail)
    return run_id


def queue_demo_run(settings: Settings, db: Engine, actor: Actor, dataset: str | None = None) -> int:
    """Queue the demo run as `actor`: a few seconds of visible learning on the handwritten
    digits (engine/data/demo_run.py DEMO_RUN_CONFIG), or default settings on another demo
    `dataset`; the demo datasets are added first if it is missing (an upload of its own,
    checked and audited as such). `seedlab init` and `seedlab up` add them ahead, so a click
    imports nothing of the demo data's (scikit-learn, Pillow: seconds on a busy machine)."""
    from engine.data.demo_run import DEMO_RUN_CONFIG, DEMO_RUN_DATASET
    from engine.services.launch import find_dataset

    check(actor, Permission.LAUNCH)
    name = dataset or DEMO_RUN_DATASET
    try:
        record = find_dataset(db, name)
    except SeedlabError:
        from engine.services.datasets import add_demo_datasets

        add_demo_datasets(settings, db, actor)
        record = find_dataset(db, name)
    # The kind's default family, named: a demo run does not race `model=auto`'s candidates.
    values = RunConfig.model_validate(
        DEMO_RUN_CONFIG if dataset is None else {"model": DEFAULT_MODEL[record.kind]}
    )
    return launch_run(db, actor, name, values, name=f"{name} demo")


def cancel_run(db: Engine, actor: Actor, run_id: int) -> str:
    """Ask a run to stop; returns its status after the request (db.writes.runs.request_cancel)."""
    check_run(db, actor, Permission.CANCEL, run_id)
    status = run_writes.request_cancel(db, run_id)
    if status is None:
        raise SeedlabError(f"No run {run_id}.")
    if status in ("queued", "running", "cancelled"):
        audit.record(db, actor, "cancel", f"run {run_id}", f"was {status}")
    if status == "cancelled":  # a queued run ends here (a running one when its runner stops)
        notify_run_ended(db, None, run_id)
    return status


def resume(settings: Settings, db: Engine, actor: Actor, run_id: int) -> int:
    """Queue a cancelled or failed run again; returns the epoch it resumes after."""
    from engine.services.recovery import resume_run

    check_run(db, actor, Permission.RESUME, run_id)
    epoch = resume_run(settings, db, run_id)
    audit.record(db, actor, "resume", f"run {run_id}", f"after epoch {epoch}")
    return epoch


def delete_run(settings: Settings, db: Engine, actor: Actor, run_id: int) -> bool:
    """Delete a finished run and its files; returns whether its folder is gone too."""
    from engine.services import run_admin

    check_run(db, actor, Permission.DELETE, run_id)
    files_gone = run_admin.delete_run(settings, db, run_id)
    audit.record(db, actor, "delete", f"run {run_id}")
    return files_gone


def html_report(settings: Settings, db: Engine, actor: Actor, run_id: int) -> str:
    """The run's self-contained HTML report (engine.report.html_report). It carries the run's
    config, curves and results out of Seedlab, so it needs EXPORT and is audited as an export."""
    from engine.services.run_report import run_report_html

    check(actor, Permission.EXPORT, what=f"run {run_id}")
    page = run_report_html(settings, db, run_id)
    audit.record(db, actor, "export", f"run {run_id}", "html report")
    return page


def write_html_report(
    settings: Settings, db: Engine, actor: Actor, run_id: int, output: Path
) -> int:
    """`html_report` written to `output` atomically (`seedlab runs report`); returns its size in
    bytes. Checked and audited like the download."""
    from engine.services.run_report import write_run_report

    check(actor, Permission.EXPORT, what=f"run {run_id}")
    size = write_run_report(settings, db, run_id, output)
    audit.record(db, actor, "export", f"run {run_id}", "html report")
    return size


# ---------------------------------------------------------------- edits


def edit_runs(
    db: Engine,
    actor: Actor,
    run_ids: Iterable[int],
    action: str,
    change: Callable[[list[int]], Any],
    detail: str = "",
) -> None:
    """Apply `change(run_ids)` (db.writes.run_edits calls) after checking every run; one refused
    run refuses them all, so a bulk edit is never half done. Pages call the named edits below;
    this stays public for engine/cli/main.py until it calls them too."""
    ids = list(run_ids)
    for run_id in ids:
        check_run(db, actor, Permission.EDIT, run_id)
    try:
        change(ids)
    except (LookupError, ValueError) as exc:
        raise SeedlabError(str(exc).strip("'\"")) from exc
    target = f"run {ids[0]}" if len(ids) == 1 else f"runs {', '.join(map(str, ids))}"
    audit.record(db, actor, action, target, detail)


def edit_run(
    db: Engine, actor: Actor, run_id: int, *, name: str, tags: Iterable[str], notes: str
) -> None:
    """The Run page's form: name, the whole tag list and the note, saved as one edit."""
    wanted = list(tags)

    def save(ids: list[int]) -> None:
        run_edits.rename_run(db, ids[0], name)
        run_edits.set_tags(db, ids[0], wanted)
        run_edits.set_notes(db, ids, notes)

    edit_runs(db, actor, [run_id], "edit", save, f"name {name.strip()!r}")


def rename_run(db: Engine, actor: Actor, run_id: int, name: str) -> None:
    edit_runs(db, actor, [run_id], "rename", lambda ids: run_edits.rename_run(db, ids[0], name))


def tag_runs(
    db: Engine,
    actor: Actor,
    run_ids: Iterable[int],
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
) -> None:
    """Add and remove tags on each run (blank tags are ignored, as db.writes.run_edits does)."""
    added, removed = list(add), list(remove)

    def change(ids: list[int]) -> None:
        run_edits.add_tags(db, ids, added)
        run_edits.remove_tags(db, ids, removed)

    edit_runs(db, actor, run_ids, "tag", change, f"+{','.join(added)} -{','.join(removed)}")


def set_notes(db: Engine, actor: Actor, run_ids: Iterable[int], notes: str) -> None:
    """Replace the note of each run."""
    edit_runs(db, actor, run_ids, "note", lambda ids: run_edits.set_notes(db, ids, notes))


def set_archived(db: Engine, actor: Actor, run_ids: Iterable[int], archived: bool) -> None:
    edit_runs(
        db,
        actor,
        run_ids,
        "archive" if archived else "unarchive",
        lambda ids: run_edits.set_archived(db, ids, archived),
    )


def pin_baseline(db: Engine, actor: Actor, run_id: int, pinned: bool = True) -> int | None:
    """Pin the run as its project's baseline (the Runs page shows it first, Compare draws it in
    every chart), or unpin it; returns the project's baseline after the change."""
    from db import projects as project_store
    from db.writes import projects as project_writes

    check_run(db, actor, Permission.EDIT, run_id)
    run = run_store.get_run(db, run_id)
    if run is None:
        raise SeedlabError(f"No run {run_id}.")
    if project_store.get_project(db, run.project_id) is None:
        raise SeedlabError(f"Run {run_id}'s project no longer exists.")
    if pinned:
        project_writes.set_baseline(db, run.project_id, run_id)
    elif baseline_runs(db, [run.project_id]) == [run_id]:
        project_writes.set_baseline(db, run.project_id, None)
    audit.record(db, actor, "pin baseline" if pinned else "unpin baseline", f"run {run_id}")
    return next(iter(baseline_runs(db, [run.project_id])), None)


def baseline_runs(db: Engine, project_ids: Iterable[int]) -> list[int]:
    """The runs these projects pinned as their baselines (in project order, each once)."""
    from db import projects as project_store

    return project_store.baseline_run_ids(db, project_ids)
