"""The model registry: stage rules in the database, the CLI round trip, the Models page, and the
Run page's "Register model" control."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from db import audit, registry
from db import runs as run_store
from db.models import model_versions
from db.registry import RegistryError
from db.session import utcnow, writing
from db.writes import registry as registry_writes
from db.writes import runs as run_writes
from engine.cli.main import app
from engine.core.errors import SeedlabError
from engine.services.launch import submit_run
from engine.services.run_admin import delete_run
from tests.support.data import completed_run
from tests.support.pages import button, open_page, texts


def finished(db, status: str = "completed") -> int:  # noqa: ANN001
    """A run taken to a final status the way a worker does (no training: the registry's rules
    live in the database and need no model file)."""
    run_id = submit_run(db, "iris", {"epochs": 1}, name="registry source")
    assert run_writes.claim_next_run(db, "test-worker") == run_id
    run_writes.finish_run(db, run_id, status)
    return run_id


def stages(db, name: str) -> dict[int, str]:  # noqa: ANN001
    return {v.version: v.stage for v in registry.list_versions(db, name)}


def test_versions_count_up_and_one_production_per_name(db, demo_datasets):
    runs = [finished(db) for _ in range(4)]
    first = registry_writes.register_version(db, runs[0], "churn")
    second = registry_writes.register_version(db, runs[1], "churn", stage="staging")
    other = registry_writes.register_version(db, runs[2], "other")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert second.stage == "staging" and second.run_id == runs[1]

    registry_writes.set_stage(db, "churn", 1, "production")
    assert registry.production_version(db, "churn").version == 1
    # Promoting another version archives the one that was in production, in one transaction.
    registry_writes.set_stage(db, "churn", 2, "production")
    assert stages(db, "churn") == {1: "archived", 2: "production"}
    # Registering straight into production does the same.
    third = registry_writes.register_version(db, runs[3], "churn", stage="production")
    assert third.version == 3
    assert stages(db, "churn") == {1: "archived", 2: "archived", 3: "production"}

    models = {m.name: m for m in registry.list_models(db)}
    assert list(models) == ["churn", "other"]
    churn = models["churn"]
    assert [v.version for v in churn.versions] == [3, 2, 1]
    assert churn.production.version == 3 and churn.run_id == runs[3]
    # Without production, the newest version that is not archived is the default.
    registry_writes.set_stage(db, "churn", 3, "archived")
    registry_writes.set_stage(db, "churn", 1, "staging")
    assert registry.production_version(db, "churn") is None
    assert registry.get_model(db, "churn").default.version == 1
    assert models["other"].default.version == 1 and models["other"].production is None
    # A version carries its run's test metrics (what the Models page and Playground show).
    run_writes.record_progress(db, runs[3], [("test_accuracy", 1, 0.75, 0.0)])
    assert registry.get_version(db, "churn", 3).metrics == {"test_accuracy": 0.75}


def test_the_database_itself_refuses_a_second_production_version(db, demo_datasets):
    run_a, run_b = finished(db), finished(db)
    registry_writes.register_version(db, run_a, "m", stage="production")
    now = utcnow()
    row = {"name": "m", "run_id": run_b, "description": "", "created_at": now}
    with pytest.raises(IntegrityError), writing(db) as conn:
        conn.execute(
            insert(model_versions).values(
                **row, version=2, stage="production", stage_changed_at=now
            )
        )
    with pytest.raises(IntegrityError), writing(db) as conn:  # version numbers are unique
        conn.execute(
            insert(model_versions).values(**row, version=1, stage="none", stage_changed_at=now)
        )
    with pytest.raises(IntegrityError), writing(db) as conn:  # stages are checked
        conn.execute(
            insert(model_versions).values(**row, version=2, stage="live", stage_changed_at=now)
        )
    assert stages(db, "m") == {1: "production"}


def test_refusals_say_what_to_do(db, demo_datasets):
    done, failed = finished(db), finished(db, "failed")
    with pytest.raises(RegistryError, match="only a completed run has a model"):
        registry_writes.register_version(db, failed, "m")
    with pytest.raises(RegistryError, match="No run 999"):
        registry_writes.register_version(db, 999, "m")
    with pytest.raises(RegistryError, match="stage must be one of none, staging, production"):
        registry_writes.register_version(db, done, "m", stage="live")
    with pytest.raises(RegistryError, match="cannot be empty"):
        registry_writes.register_version(db, done, "   ")
    with pytest.raises(RegistryError, match="control characters"):
        registry_writes.register_version(db, done, "a\nb")
    registry_writes.register_version(db, done, "m")
    with pytest.raises(RegistryError, match="already version 1 of 'm'"):
        registry_writes.register_version(db, done, "m")
    with pytest.raises(RegistryError, match="'m' has no version 7; its versions are 1"):
        registry_writes.set_stage(db, "m", 7, "staging")
    with pytest.raises(RegistryError, match="No registered model 'nope'"):
        registry_writes.set_stage(db, "nope", 1, "staging")
    registry_writes.set_stage(db, "m", 1, "production")
    with pytest.raises(RegistryError, match="in production; archive it or promote another"):
        registry_writes.delete_version(db, "m", 1)
    # Nothing half-stored: one version, still in production.
    assert stages(db, "m") == {1: "production"}


def test_concurrent_promotes_leave_exactly_one_production(db, demo_datasets):
    for _ in range(4):
        registry_writes.register_version(db, finished(db), "m")
    errors: list[Exception] = []

    def promote(version: int) -> None:
        try:
            for _ in range(5):
                registry_writes.set_stage(db, "m", version, "production")
        except Exception as exc:  # noqa: BLE001 (collected and asserted below)
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(v,)) for v in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    final = stages(db, "m")
    assert list(final.values()).count("production") == 1
    assert set(final.values()) == {"production", "archived"}


def test_a_run_with_registered_versions_cannot_be_deleted(settings, db, demo_datasets):
    run_id = finished(db)
    registry_writes.register_version(db, run_id, "keep-me", stage="staging")
    with pytest.raises(SeedlabError, match=r"source of registered model version\(s\) 'keep-me' v1"):
        delete_run(settings, db, run_id)
    assert run_store.get_run(db, run_id) is not None
    registry_writes.delete_version(db, "keep-me", 1)
    assert delete_run(settings, db, run_id)
    assert run_store.get_run(db, run_id) is None
    # The foreign key holds too, whatever code deletes.
    other = finished(db)
    registry_writes.register_version(db, other, "k2")
    with pytest.raises(IntegrityError), writing(db) as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :id"), {"id": other})


def test_cli_round_trip(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    unfinished = finished(db, "failed")
    cli = CliRunner()

    def seedlab(*args: str) -> str:
        result = cli.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "Registered run" in seedlab(
        "models", "register", run_id, "iris-clf", "--stage", "staging"
    )
    listed = json.loads(seedlab("models", "list", "--json"))
    assert listed == [
        {
            "name": "iris-clf",
            "versions": 1,
            "latest_version": 1,
            "production_version": None,
            "default_version": 1,
            "default_run_id": run_id,
        }
    ]
    assert "is now production" in seedlab("models", "promote", "iris-clf", 1, "production")
    shown = json.loads(seedlab("models", "show", "iris-clf", "--json"))
    assert shown["default_version"] == 1
    version = shown["versions"][0]
    assert (version["stage"], version["run_id"], version["dataset"]) == (
        "production",
        run_id,
        "iris",
    )
    assert 0 <= version["metrics"]["test_accuracy"] <= 1
    assert "v1" in seedlab("models", "show", "iris-clf") and "iris-clf" in seedlab("models", "list")

    refused = cli.invoke(app, ["runs", "delete", str(run_id), "--yes"])
    assert refused.exit_code != 0 and "delete those versions first" in refused.output
    failed = cli.invoke(app, ["models", "register", str(unfinished), "iris-clf"])
    assert failed.exit_code != 0 and "has no model file" in failed.output
    bad_stage = cli.invoke(app, ["models", "promote", "iris-clf", "1", "live"])
    assert bad_stage.exit_code != 0 and "stage must be one of" in bad_stage.output
    seedlab("models", "promote", "iris-clf", 1, "archived")
    assert "Removed" in seedlab("models", "delete", "iris-clf", 1, "--yes")
    assert "Deleted run" in seedlab("runs", "delete", run_id, "--yes")
    assert "No registered models yet" in seedlab("models", "list")


def test_models_page_lists_and_promotes(settings, db, demo_datasets):
    runs = [finished(db) for _ in range(2)]
    run_writes.record_progress(db, runs[1], [("test_accuracy", 1, 0.875, 0.0)])
    registry_writes.register_version(db, runs[0], "<b>fraud</b>", stage="production")
    registry_writes.register_version(db, runs[1], "<b>fraud</b>", stage="staging")

    at = open_page("views/models.py")
    assert at.title[0].value == "Models"
    table = at.dataframe[0].value
    assert list(table["version"]) == [2, 1]
    assert list(table["stage"]) == ["staging", "production"]
    assert list(table["run"]) == [f"run?run={runs[1]}", f"run?run={runs[0]}"]
    assert table["test accuracy"].iloc[0] == pytest.approx(0.875)
    # The name is shown literally, never as markup.
    assert any("fraud" in str(h.value) and "<b>" not in str(h.value) for h in at.subheader)

    at.selectbox(key="models_version_<b>fraud</b>").set_value(2)
    at.selectbox(key="models_stage_<b>fraud</b>").set_value("production")
    button(at, "Apply").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert stages(db, "<b>fraud</b>") == {1: "archived", 2: "production"}
    assert "now production" in at.success[0].value
    # The service writes the one audit entry; the page adds none of its own.
    promoted = [(e.user, e.target, e.detail) for e in audit.list_entries(db, action="promote")]
    assert promoted == [("local", "model <b>fraud</b> v2", "production")]


def test_models_page_empty_state(settings, db):
    at = open_page("views/models.py")
    assert "No registered models yet" in at.info[0].value


def test_run_page_registers_a_completed_run(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    at = open_page("views/run_detail.py", run=str(run_id))
    at.text_input(key="register_name").set_value("iris-model")
    at.selectbox(key="register_stage").set_value("staging")
    button(at, "Register").click().run()
    assert not at.exception, [e.value for e in at.exception]
    version = registry.production_version(db, "iris-model") or registry.get_version(
        db, "iris-model", 1
    )
    assert (version.version, version.stage, version.run_id) == (1, "staging", run_id)
    # Shown on the page as literal text (markdown-escaped).
    assert "Registered as iris\\-model v1 \\(staging\\)" in texts(at.caption)
    assert "iris\\-model v1" in at.success[0].value
    registered = [(e.user, e.target) for e in audit.list_entries(db, action="register")]
    assert registered == [("local", f"run {run_id}")]
