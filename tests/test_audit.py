"""The audit log: one entry per action, with who, what and when; read by admins (page, CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from db import audit
from db import datasets as dataset_store
from db.session import writing
from db.writes import audit as audit_writes
from engine.cli.main import app
from engine.services import accounts, sweep_actions
from engine.services import datasets as dataset_actions
from engine.services import projects as project_actions
from engine.services import runs as run_actions
from engine.services.permissions import LOCAL_ADMIN, Actor, PermissionDenied, cli_actor
from tests.support.data import resume_checkpoint

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


def trail(db) -> list[tuple[str, str, str]]:  # noqa: ANN001
    """(user, action, target), oldest first."""
    return [(e.user, e.action, e.target) for e in reversed(audit.list_entries(db, limit=1000))]


def test_record_and_list(db):
    audit_writes.record(db, "ana", "launch", "run 1", "dataset iris")
    with writing(db) as conn:  # inside the transaction of the change it describes
        audit_writes.record(conn, "bob", "delete", "run 1")
    entries = audit.list_entries(db)
    assert [(e.user, e.action, e.target, e.detail) for e in entries] == [
        ("bob", "delete", "run 1", ""),
        ("ana", "launch", "run 1", "dataset iris"),
    ]
    assert [e.user for e in audit.list_entries(db, user="ana")] == ["ana"]
    assert [e.action for e in audit.list_entries(db, action="delete")] == ["delete"]
    assert entries[0].at >= entries[1].at


def test_every_action_leaves_an_entry(settings, db, demo_datasets):
    admin = cli_actor()
    accounts.add_user(db, admin, "mia", PASSWORD, "member")
    mia = Actor("mia", "member")
    record = dataset_actions.upload_dataset(
        settings, db, mia, b"a,b\n1,x\n2,y\n3,x\n4,y\n", filename="t.csv", name="t", target="b"
    )
    assert record.owner == "mia"
    run_id = run_actions.launch_run(db, mia, "iris", {"epochs": 1})
    run_actions.cancel_run(db, mia, run_id)
    resume_checkpoint(settings, run_id, epoch=1)  # resume reads its epoch from it
    assert run_actions.resume(settings, db, mia, run_id) == 1
    run_actions.cancel_run(db, mia, run_id)
    run_actions.rename_run(db, mia, run_id, "renamed")
    run_actions.set_archived(db, mia, [run_id], True)
    run_actions.delete_run(settings, db, mia, run_id)
    dataset_actions.delete_dataset(settings, db, mia, dataset_store.get_dataset_by_name(db, "t"))
    project_id = project_actions.create_project(db, mia, "team")
    sweep_id = sweep_actions.launch_sweep(
        db,
        mia,
        "iris",
        {"space": {"learning_rate": {"low": 1e-3, "high": 1e-2, "log": True}}, "max_trials": 2},
    )
    sweep_actions.cancel_sweep(db, mia, sweep_id)
    accounts.change_password(db, mia, "mia", "a new password")
    accounts.set_role(db, admin, "mia", "viewer")
    accounts.remove_user(db, admin, "mia")
    assert trail(db) == [
        (admin.name, "user_add", "user mia"),
        ("mia", "upload", f"dataset {record.id} t"),
        ("mia", "launch", f"run {run_id}"),
        ("mia", "cancel", f"run {run_id}"),
        ("mia", "resume", f"run {run_id}"),
        ("mia", "cancel", f"run {run_id}"),
        ("mia", "rename", f"run {run_id}"),
        ("mia", "archive", f"run {run_id}"),
        ("mia", "delete", f"run {run_id}"),
        ("mia", "delete", f"dataset {record.id} t"),
        ("mia", "create_project", f"project {project_id} team"),
        ("mia", "launch", f"sweep {sweep_id}"),
        ("mia", "cancel", f"sweep {sweep_id}"),
        ("mia", "user_passwd", "user mia"),
        (admin.name, "user_role", "user mia"),
        (admin.name, "user_remove", "user mia"),
    ]


def test_a_refused_action_writes_nothing(settings, db, demo_datasets):
    with pytest.raises(PermissionDenied):
        run_actions.launch_run(db, Actor("vic", "viewer"), "iris", {"epochs": 1})
    assert trail(db) == []


def test_logins_and_lockouts_are_recorded(db, monkeypatch):
    monkeypatch.setenv("SEEDLAB_LOGIN_MAX_FAILURES", "2")
    accounts.add_user(db, cli_actor(), "ana", PASSWORD, "member")
    accounts.authenticate(db, "ana", PASSWORD)
    for _ in range(2):
        with pytest.raises(accounts.LoginError):
            accounts.authenticate(db, "ana", "guess guess")
    # Since issue 22 every refused attempt is one entry (the same work whether the name exists,
    # the password is wrong or the user is waiting).
    assert [a for _, a, _ in trail(db)] == ["user_add", "login", "login_failed", "login_failed"]
    with pytest.raises(accounts.AddressWaits):
        accounts.authenticate(db, "ana", PASSWORD)
    assert len(trail(db)) == 4  # a waiting address gets no entry (nor a password check)


def test_cli_users_and_audit_commands(settings, db, demo_datasets):
    runner = CliRunner()
    added = runner.invoke(
        app, ["users", "add", "root", "--role", "admin", "--password-stdin"], input=PASSWORD + "\n"
    )
    assert added.exit_code == 0, added.output
    assert accounts.authenticate(db, "root", PASSWORD).role == "admin"
    short = runner.invoke(app, ["users", "passwd", "root", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 8" in short.output
    assert runner.invoke(app, ["runs", "submit", "--dataset", "iris"]).exit_code == 0
    listed = runner.invoke(app, ["users", "list"])
    assert "root" in listed.output and "admin" in listed.output
    out = runner.invoke(app, ["audit", "list"]).output
    assert "user_add" in out and "launch" in out and cli_actor().name in out
    removed = runner.invoke(app, ["users", "remove", "root"])
    assert removed.exit_code == 1 and "only admin" in removed.output


def test_admin_page_shows_the_audit_log(settings, db, demo_datasets, monkeypatch):
    monkeypatch.delenv("SEEDLAB_AUTH", raising=False)  # localhost: the local admin
    run_actions.launch_run(db, LOCAL_ADMIN, "iris", {"epochs": 1})
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=30).run()
    at.switch_page("views/admin.py")
    at.run()
    assert not at.exception
    log = at.dataframe[-1].value
    assert list(log["action"]) == ["launch"] and list(log["user"]) == ["local"]
