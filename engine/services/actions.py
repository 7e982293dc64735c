"""Every change a user can ask for, checked and audited in one place.

The dashboard and the CLI call these (never the bare db/engine functions) with the acting
user; each one checks the role table (permissions.py) against the target's owner before
it touches anything, and writes one audit entry after it succeeded. So a refused action changes
nothing, whichever page or crafted request asked for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from db import runs as run_store
from db import sweeps as sweep_store
from db.records import DatasetRecord
from db.writes import audit as audit_writes
from db.writes import projects as project_writes
from db.writes import run_edits
from db.writes import runs as run_writes
from engine.core.config import RunConfig
from engine.core.errors import SeedlabError
from engine.core.settings import Settings
from engine.services.permissions import Actor, Permission, check


def _run_owner(db: Engine, run_id: int) -> str | None:
    run = run_store.get_run(db, run_id)
    if run is None:
        raise SeedlabError(f"No run {run_id}.")
    return run.owner


def check_run(db: Engine, actor: Actor, permission: Permission, run_id: int) -> None:
    """Refuse unless `actor` may do `permission` to this run (its owner counts)."""
    check(actor, permission, _run_owner(db, run_id), what=f"run {run_id}")


# ---------------------------------------------------------------- datasets


def upload_dataset(
    settings: Settings, db: Engine, actor: Actor, raw: bytes, **ingest: Any
) -> DatasetRecord:
    """engine.data.datasets.ingest_bytes (filename, name, target, kind, text_column) as `actor`."""
    from engine.data.datasets import ingest_bytes

    check(actor, Permission.UPLOAD)
    record = ingest_bytes(settings, db, raw, owner=actor.name, **ingest)
    audit_writes.record(db, actor.name, "upload", f"dataset {record.id} {record.name}", record.kind)
    return record


def add_dataset_file(
    settings: Settings, db: Engine, actor: Actor, path: Path, **ingest: Any
) -> DatasetRecord:
    """engine.data.datasets.ingest_file as `actor` (the CLI's upload)."""
    from engine.data.datasets import ingest_file

    check(actor, Permission.UPLOAD)
    record = ingest_file(settings, db, path, owner=actor.name, **ingest)
    audit_writes.record(db, actor.name, "upload", f"dataset {record.id} {record.name}", str(path))
    return record


def add_demo_datasets(settings: Settings, db: Engine, actor: Actor) -> list[str]:
    from engine.data.demo import register_demo_datasets

    check(actor, Permission.UPLOAD)
    added = register_demo_datasets(settings, db)
    if added:
        audit_writes.record(db, actor.name, "upload", "demo datasets", ", ".join(added))
    return added


def delete_dataset(settings: Settings, db: Engine, actor: Actor, record: DatasetRecord) -> None:
    from engine.data import datasets

    check(actor, Permission.DELETE, record.owner, what=f"dataset {record.name!r}")
    datasets.delete_dataset(settings, db, record)
    audit_writes.record(db, actor.name, "delete", f"dataset {record.id} {record.name}")


# ---------------------------------------------------------------- runs


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
    detail = f"dataset {dataset_ref}" + (f", from run {parent}" if parent else "")
    audit_writes.record(db, actor.name, "launch", f"run {run_id}", detail)
    return run_id


def cancel_run(db: Engine, actor: Actor, run_id: int) -> str:
    """Ask a run to stop; returns its status after the request (db.runs.request_cancel)."""
    check_run(db, actor, Permission.CANCEL, run_id)
    status = run_writes.request_cancel(db, run_id)
    if status is None:
        raise SeedlabError(f"No run {run_id}.")
    if status in ("queued", "running", "cancelled"):
        audit_writes.record(db, actor.name, "cancel", f"run {run_id}", f"was {status}")
    return status


def resume(settings: Settings, db: Engine, actor: Actor, run_id: int) -> int:
    """Queue a cancelled or failed run again; returns the epoch it resumes after."""
    from engine.services.recovery import resume_run

    check_run(db, actor, Permission.RESUME, run_id)
    epoch = resume_run(settings, db, run_id)
    audit_writes.record(db, actor.name, "resume", f"run {run_id}", f"after epoch {epoch}")
    return epoch


def delete_run(settings: Settings, db: Engine, actor: Actor, run_id: int) -> bool:
    """Delete a finished run and its files; returns whether its folder is gone too."""
    from engine.services import run_admin

    check_run(db, actor, Permission.DELETE, run_id)
    files_gone = run_admin.delete_run(settings, db, run_id)
    audit_writes.record(db, actor.name, "delete", f"run {run_id}")
    return files_gone


def edit_runs(
    db: Engine,
    actor: Actor,
    run_ids: Iterable[int],
    action: str,
    change: Callable[[list[int]], Any],
    detail: str = "",
) -> None:
    """Apply `change(run_ids)` (a db.run_edits call: tags, note, archive, rename) after checking
    every run; one refused run refuses them all, so a bulk edit is never half done."""
    ids = list(run_ids)
    for run_id in ids:
        check_run(db, actor, Permission.EDIT, run_id)
    try:
        change(ids)
    except (LookupError, ValueError) as exc:
        raise SeedlabError(str(exc).strip("'\"")) from exc
    target = f"run {ids[0]}" if len(ids) == 1 else f"runs {', '.join(map(str, ids))}"
    audit_writes.record(db, actor.name, action, target, detail)


def rename_run(db: Engine, actor: Actor, run_id: int, name: str) -> None:
    edit_runs(db, actor, [run_id], "rename", lambda ids: run_edits.rename_run(db, ids[0], name))


def set_archived(db: Engine, actor: Actor, run_ids: Iterable[int], archived: bool) -> None:
    edit_runs(
        db,
        actor,
        run_ids,
        "archive" if archived else "unarchive",
        lambda ids: run_edits.set_archived(db, ids, archived),
    )


def create_project(db: Engine, actor: Actor, name: str, description: str = "") -> int:
    check(actor, Permission.CREATE_PROJECT)
    try:
        project = project_writes.create_project(db, name, description)
    except ValueError as exc:
        raise SeedlabError(str(exc)) from exc
    audit_writes.record(db, actor.name, "create_project", f"project {project.id} {project.name}")
    return project.id


# ---------------------------------------------------------------- sweeps


def launch_sweep(db: Engine, actor: Actor, dataset_ref: str | int, spec: Any, **submit: Any) -> int:
    """engine.services.sweeps.submit_sweep as `actor`; its trials are owned by `actor` too."""
    from engine.services import sweeps

    check(actor, Permission.LAUNCH)
    sweep_id = sweeps.submit_sweep(db, dataset_ref, spec, owner=actor.name, **submit)
    audit_writes.record(db, actor.name, "launch", f"sweep {sweep_id}", f"dataset {dataset_ref}")
    return sweep_id


def cancel_sweep(db: Engine, actor: Actor, sweep_id: int) -> str | None:
    from engine.services import sweeps

    sweep = sweep_store.get_sweep(db, sweep_id)
    if sweep is None:
        return None
    check(actor, Permission.CANCEL, sweep.owner, what=f"sweep {sweep_id}")
    status = sweeps.cancel_sweep(db, sweep_id)
    audit_writes.record(db, actor.name, "cancel", f"sweep {sweep_id}")
    return status


def launch_best(db: Engine, actor: Actor, sweep_id: int, **kwargs: Any) -> int:
    from engine.services import sweeps

    check(actor, Permission.LAUNCH)
    run_id = sweeps.launch_best(db, sweep_id, owner=actor.name, **kwargs)
    audit_writes.record(db, actor.name, "launch", f"run {run_id}", f"best of sweep {sweep_id}")
    return run_id
