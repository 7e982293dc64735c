"""The service layer: every write is one engine.services function that checks the permission
itself and writes exactly one audit entry. A refused call raises PermissionDenied, changes
nothing and writes no entry, whichever page, CLI command or crafted request made it."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from db import audit, projects, registry, sweeps
from db import datasets as dataset_store
from db import runs as run_store
from db import users as user_store
from db.writes import runs as run_writes
from engine.core.run_files import checkpoint_path
from engine.core.settings import Settings
from engine.services import accounts, demo_fill, model_registry, sweep_actions
from engine.services import datasets as dataset_actions
from engine.services import projects as project_actions
from engine.services import runs as run_actions
from engine.services.launch import submit_run
from engine.services.permissions import Actor, PermissionDenied, cli_actor
from tests.support.data import resume_checkpoint

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
VIEWER = Actor("vic", "viewer")
MEMBER = Actor("mia", "member")
ADMIN = Actor("root", "admin")
CSV = b"a,b\n1,x\n2,y\n3,x\n4,y\n"
SWEEP = {"space": {"learning_rate": {"low": 1e-3, "high": 1e-2, "log": True}}, "max_trials": 2}


def trail(db: Engine) -> list[tuple[str, str, str, str]]:
    """(user, action, target, detail), oldest first."""
    entries = reversed(audit.list_entries(db, limit=10_000))
    return [(e.user, e.action, e.target, e.detail) for e in entries]


def state(settings: Settings, db: Engine) -> dict[str, Any]:
    """Everything a write could change, to prove that a refused one changed nothing."""
    return {
        "runs": [
            (r.id, r.name, r.status, r.archived, r.notes, tuple(r.tags), r.cancel_requested)
            for r in run_store.list_runs(db, limit=1000)
        ],
        "datasets": [(d.id, d.name) for d in dataset_store.list_datasets(db)],
        "dataset_files": sorted(p.name for p in settings.datasets_dir.iterdir()),
        "projects": [(p.id, p.name) for p in projects.list_projects(db)],
        "sweeps": [(s.id, s.status) for s in sweeps.list_sweeps(db)],
        "models": [(v.name, v.version, v.stage) for v in registry.list_versions(db)],
        "users": [
            (u.name, u.role, u.password_hash, u.password_changed_at)
            for u in user_store.list_users(db)
        ],
    }


def finished_run(settings: Settings, db: Engine, owner: str, *, model_file: bool = True) -> int:
    """A completed run of `owner`, finished the way a worker does (no training: a model.pt
    placeholder is all registering needs)."""
    run_id = submit_run(db, "iris", {"epochs": 1}, name="service source", owner=owner)
    assert run_writes.claim_next_run(db, "test-worker") == run_id
    run_writes.finish_run(db, run_id, "completed")
    if model_file:
        checkpoint_path(settings, run_id).parent.mkdir(parents=True, exist_ok=True)
        checkpoint_path(settings, run_id).write_bytes(b"model")
    return run_id


def queued_run(db: Engine, owner: str) -> int:
    return submit_run(db, "iris", {"epochs": 1}, owner=owner)


def resumable_run(settings: Settings, db: Engine, owner: str) -> int:
    run_id = queued_run(db, owner)
    run_writes.request_cancel(db, run_id)
    resume_checkpoint(settings, run_id, epoch=1)  # resume reads its epoch from it
    return run_id


def sweep_with_a_completed_trial(db: Engine, owner: str) -> int:
    sweep_id = sweep_actions.launch_sweep(db, ADMIN, "iris", SWEEP)
    trial = submit_run(db, "iris", {"epochs": 1}, sweep_id=sweep_id, owner=owner)
    assert run_writes.claim_next_run(db, "test-worker") == trial
    run_writes.record_progress(db, trial, [("val_loss", 1, 0.5, 1.7e9)])
    run_writes.finish_run(db, trial, "completed")
    return sweep_id


def registered(settings: Settings, db: Engine, owner: str) -> str:
    run_id = finished_run(settings, db, owner)
    model_registry.register(settings, db, ADMIN, run_id, "svc-model", stage="staging")
    return "svc-model"


def a_file(path: Path) -> Path:
    path.write_bytes(CSV)
    return path


def a_user(db: Engine, name: str = "ana", role: str = "member") -> str:
    accounts.add_user(db, cli_actor(), name, PASSWORD, role)
    return name


@dataclass(frozen=True)
class Case:
    """One write: `setup` makes what it acts on (owned by MEMBER) and returns it; `act` does
    the write as `actor`; `allowed` is the least role that may do it."""

    name: str
    setup: Callable[[Settings, Engine], Any]
    act: Callable[[Settings, Engine, Actor, Any], Any]
    allowed: Actor = MEMBER


def _digits(settings: Settings, db: Engine) -> None:
    from engine.data.demo import register_demo_datasets

    register_demo_datasets(settings, db, images=True)


def _nothing(settings: Settings, db: Engine) -> None:
    return None


CASES = [
    # runs
    Case("launch", _nothing, lambda s, db, a, _: run_actions.launch_run(db, a, "iris", {})),
    # The demo run trains on the digits images, which the table-only fixture leaves out.
    Case("demo run", _digits, lambda s, db, a, _: run_actions.queue_demo_run(s, db, a)),
    Case(
        "cancel",
        lambda s, db: queued_run(db, MEMBER.name),
        lambda s, db, a, run: run_actions.cancel_run(db, a, run),
    ),
    Case(
        "resume",
        lambda s, db: resumable_run(s, db, MEMBER.name),
        lambda s, db, a, run: run_actions.resume(s, db, a, run),
    ),
    Case(
        "edit",
        lambda s, db: queued_run(db, MEMBER.name),
        lambda s, db, a, run: run_actions.edit_run(
            db, a, run, name="new name", tags=["x", "y"], notes="a note"
        ),
    ),
    Case(
        "rename",
        lambda s, db: queued_run(db, MEMBER.name),
        lambda s, db, a, run: run_actions.rename_run(db, a, run, "renamed"),
    ),
    Case(
        "tag",
        lambda s, db: [queued_run(db, MEMBER.name), queued_run(db, MEMBER.name)],
        lambda s, db, a, runs: run_actions.tag_runs(db, a, runs, add=["keep"], remove=["old"]),
    ),
    Case(
        "note",
        lambda s, db: [queued_run(db, MEMBER.name)],
        lambda s, db, a, runs: run_actions.set_notes(db, a, runs, "why"),
    ),
    Case(
        "archive",
        lambda s, db: [queued_run(db, MEMBER.name)],
        lambda s, db, a, runs: run_actions.set_archived(db, a, runs, True),
    ),
    Case(
        "delete run",
        lambda s, db: finished_run(s, db, MEMBER.name),
        lambda s, db, a, run: run_actions.delete_run(s, db, a, run),
    ),
    Case(
        "html report",
        lambda s, db: finished_run(s, db, MEMBER.name, model_file=False),
        lambda s, db, a, run: run_actions.html_report(s, db, a, run),
    ),
    Case(
        "html report file",
        lambda s, db: finished_run(s, db, MEMBER.name, model_file=False),
        lambda s, db, a, run: run_actions.write_html_report(s, db, a, run, s.home / "r.html"),
    ),
    Case(
        "demo fill",
        _nothing,
        lambda s, db, a, _: demo_fill.fill_project_as(s, db, a, project="load", runs=2, steps=2),
    ),
    # datasets
    Case(
        "upload",
        _nothing,
        lambda s, db, a, _: dataset_actions.upload_dataset(
            s, db, a, CSV, filename="t.csv", name="t", target="b"
        ),
    ),
    Case(
        "add file",
        lambda s, db: a_file(s.home / "t.csv"),
        lambda s, db, a, path: dataset_actions.add_dataset_file(
            s, db, a, path, name="t", target="b"
        ),
    ),
    Case(
        "demo datasets", _nothing, lambda s, db, a, _: dataset_actions.add_demo_datasets(s, db, a)
    ),
    Case(
        "delete dataset",
        lambda s, db: dataset_actions.upload_dataset(
            s, db, MEMBER, CSV, filename="t.csv", name="t", target="b"
        ),
        lambda s, db, a, record: dataset_actions.delete_dataset(s, db, a, record),
    ),
    # projects
    Case("project", _nothing, lambda s, db, a, _: project_actions.create_project(db, a, "team")),
    # sweeps
    Case("sweep", _nothing, lambda s, db, a, _: sweep_actions.launch_sweep(db, a, "iris", SWEEP)),
    Case(
        "cancel sweep",
        lambda s, db: sweep_actions.launch_sweep(db, MEMBER, "iris", SWEEP),
        lambda s, db, a, sweep: sweep_actions.cancel_sweep(db, a, sweep),
    ),
    Case(
        "launch best",
        lambda s, db: sweep_with_a_completed_trial(db, MEMBER.name),
        lambda s, db, a, sweep: sweep_actions.launch_best(db, a, sweep),
    ),
    # the model registry
    Case(
        "register",
        lambda s, db: finished_run(s, db, MEMBER.name),
        lambda s, db, a, run: model_registry.register(s, db, a, run, "m", stage="production"),
    ),
    Case(
        "promote",
        lambda s, db: registered(s, db, MEMBER.name),
        lambda s, db, a, name: model_registry.promote(db, a, name, 1, "production"),
    ),
    Case(
        "unregister",
        lambda s, db: registered(s, db, MEMBER.name),
        lambda s, db, a, name: model_registry.unregister(db, a, name, 1),
    ),
    # users: admins only
    Case(
        "add user",
        _nothing,
        lambda s, db, a, _: accounts.add_user(db, a, "newcomer", PASSWORD, "viewer"),
        ADMIN,
    ),
    Case(
        "role",
        lambda s, db: a_user(db),
        lambda s, db, a, name: accounts.set_role(db, a, name, "admin"),
        ADMIN,
    ),
    Case(
        "passwd",
        lambda s, db: a_user(db),
        lambda s, db, a, name: accounts.change_password(db, a, name, "another password"),
        ADMIN,
    ),
    Case(
        "unlock",
        lambda s, db: a_user(db),
        lambda s, db, a, name: accounts.unlock_user(db, a, name),
        ADMIN,
    ),
    Case(
        "end sessions",
        lambda s, db: a_user(db),
        lambda s, db, a, name: accounts.end_sessions(db, a, name),
        ADMIN,
    ),
    Case(
        "remove user",
        lambda s, db: [a_user(db), a_user(db, "second-admin", "admin")],
        lambda s, db, a, _: accounts.remove_user(db, a, "ana"),
        ADMIN,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_viewer_is_refused_and_nothing_is_written(
    settings: Settings, db: Engine, demo_datasets: list[str], case: Case
) -> None:
    target = case.setup(settings, db)
    before, entries = state(settings, db), trail(db)
    with pytest.raises(PermissionDenied):
        case.act(settings, db, VIEWER, target)
    assert state(settings, db) == before
    assert trail(db) == entries


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_allowed_role_gets_exactly_one_audit_entry(
    settings: Settings, db: Engine, demo_datasets: list[str], case: Case
) -> None:
    target = case.setup(settings, db)
    entries = trail(db)
    case.act(settings, db, case.allowed, target)
    after = trail(db)
    assert after[: len(entries)] == entries
    assert len(after) == len(entries) + 1, after[len(entries) :]
    assert after[-1][0] == case.allowed.name


def test_member_only_on_what_they_own(settings: Settings, db: Engine, demo_datasets) -> None:
    """The OWNED actions refuse a member on another member's run; nothing changes."""
    theirs = queued_run(db, "max")
    before, entries = state(settings, db), trail(db)
    for act in (
        lambda: run_actions.cancel_run(db, MEMBER, theirs),
        lambda: run_actions.edit_run(db, MEMBER, theirs, name="mine", tags=[], notes=""),
        lambda: run_actions.tag_runs(db, MEMBER, [theirs], add=["mine"]),
        lambda: run_actions.set_notes(db, MEMBER, [theirs], "mine"),
    ):
        with pytest.raises(PermissionDenied, match="belongs to max"):
            act()
    assert state(settings, db) == before and trail(db) == entries


def test_users_are_managed_by_admins_only(db: Engine) -> None:
    name = a_user(db)
    entries = trail(db)
    with pytest.raises(PermissionDenied):
        accounts.set_role(db, MEMBER, name, "admin")
    with pytest.raises(PermissionDenied):
        accounts.change_password(db, MEMBER, name, "another password")
    assert user_store.get_user(db, name).role == "member" and trail(db) == entries


def test_the_demo_run_adds_missing_demo_datasets_as_an_upload(settings, db) -> None:  # noqa: ANN001
    """Two writes, two entries: the demo datasets (an upload) and the run (a launch)."""
    run_id = run_actions.queue_demo_run(settings, db, MEMBER)
    assert [(a, t) for _, a, t, _ in trail(db)] == [
        ("upload", "demo datasets"),
        ("launch", f"run {run_id}"),
    ]
    assert run_store.get_run(db, run_id).owner == MEMBER.name


def test_what_the_entries_say(settings: Settings, db: Engine, demo_datasets) -> None:
    run_id = finished_run(settings, db, MEMBER.name)
    run_actions.tag_runs(db, MEMBER, [run_id], add=["keep", "best"], remove=["old"])
    run_actions.html_report(settings, db, MEMBER, run_id)
    version = model_registry.register(settings, db, MEMBER, run_id, "churn", stage="staging")
    model_registry.promote(db, MEMBER, "churn", version.version, "production")
    accounts.end_session(db, accounts.start_session(db, MEMBER).token)
    assert trail(db) == [
        ("mia", "tag", f"run {run_id}", "+keep,best -old"),
        ("mia", "export", f"run {run_id}", "html report"),
        ("mia", "register", f"run {run_id}", "churn v1 (staging)"),
        ("mia", "promote", "model churn v1", "production"),
        ("mia", "logout", "user mia", ""),
    ]


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_pages_import_no_db_write_module() -> None:
    """Pages write only through engine.services (the import-linter contract checks this
    transitively; this names the file that breaks it)."""
    offenders = {}
    for path in sorted((ROOT / "dashboard").rglob("*.py")):
        writes = sorted(m for m in _imported_modules(path) if m.startswith("db.writes"))
        if writes:
            offenders[str(path.relative_to(ROOT))] = writes
    assert offenders == {}
