"""Storage you can see and reclaim: disk use from the files, the clean-up by retention rules
(never what a registered model or a kept run needs), and backup/restore while the engine runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from db import audit
from db import runs as run_store
from db.artifacts import list_artifacts
from db.models import metrics
from db.session import get_db, reading
from db.writes import artifacts as artifact_writes
from engine.core.run_files import checkpoint_path, log_path, resume_path
from engine.core.settings import Settings
from engine.ml.checkpoints import checkpoint_epoch
from engine.services import model_registry, storage
from engine.services import runs as run_actions
from engine.services.launch import submit_run
from engine.services.permissions import LOCAL_ADMIN, Actor, PermissionDenied
from engine.services.storage import StorageError
from tests.support.commands import cli, cli_process
from tests.support.data import completed_run, resume_checkpoint
from tests.support.engine import start_worker, stop_worker
from tests.support.pages import button, open_page
from tests.support.waiting import wait_until


def _files_bytes(path: Path) -> int:
    return sum(
        (Path(folder) / name).stat().st_size for folder, _, names in os.walk(path) for name in names
    )


def db_of(settings: Settings) -> Engine:
    return get_db(settings)


def _extras(settings: Settings, run_id: int) -> dict[str, int]:
    """A resume checkpoint, an export and a variant in the run's folder, as the engine would
    leave them; returns their sizes by part."""
    resume_checkpoint(settings, run_id, epoch=2)
    folder = settings.run_dir(run_id)
    (folder / "exports").mkdir(exist_ok=True)
    (folder / "exports" / "model.onnx").write_bytes(b"x" * 3000)
    artifact_writes.add_artifact(
        db_of(settings),
        run_id,
        kind="onnx",
        path="exports/model.onnx",
        size_bytes=3000,
        sha256="0" * 64,
    )
    (folder / "variants").mkdir(exist_ok=True)
    (folder / "variants" / "model-int8.pt").write_bytes(b"y" * 5000)
    return {
        "checkpoint": resume_path(settings, run_id).stat().st_size
        + (folder / "resume.json").stat().st_size,
        "exports": 3000,
        "variants": 5000,
    }


def test_disk_use_matches_the_files(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    extras = _extras(settings, run_id)
    report = storage.usage(settings, db, max_age_s=0)

    run = next(r for r in report.runs if r.id == run_id)
    assert run.bytes == _files_bytes(settings.run_dir(run_id)) > 0
    assert run.parts["model"] == checkpoint_path(settings, run_id).stat().st_size
    for part, size in extras.items():
        assert run.parts[part] == size
    assert run.artifact_bytes > 0  # the engine registered model.pt, the report, the log
    assert report.projects == {run.project: run.bytes}
    for d in report.datasets:
        assert d.bytes == _files_bytes(settings.resolve(d.path)) > 0
    assert report.datasets_bytes == _files_bytes(settings.datasets_dir)
    assert report.total_bytes == _files_bytes(settings.home)

    # The CLI reports the same figures (measured again, not the cached report).
    result = cli("storage", "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["runs"][0]["bytes"] == run.bytes
    assert shown["datasets_bytes"] == report.datasets_bytes
    text = cli("storage").stdout
    assert "Largest runs:" in text and f"#{run_id}" in text


def test_clean_up_keeps_registered_and_kept_runs_and_a_dry_run_deletes_nothing(
    settings, db, demo_datasets
):
    registered, kept, plain = (completed_run(settings, db, "iris") for _ in range(3))
    for run_id in (registered, kept, plain):
        _extras(settings, run_id)
    model_registry.register(settings, db, LOCAL_ADMIN, registered, "flowers")
    run_actions.tag_runs(db, LOCAL_ADMIN, [kept], add=["keep"])
    before = {r: _files_bytes(settings.run_dir(r)) for r in (registered, kept, plain)}

    dry = cli("storage", "clean", "--older-than", "0d", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert {i["run_id"] for i in plan["items"]} == {plain}
    assert plan["kept"] == {str(registered): "model flowers v1", str(kept): "tag keep"}
    assert (
        plan["bytes"]
        == sum(i["bytes"] for i in plan["items"])
        == sum(_extras_sizes(settings, plain).values())
    )
    assert {r: _files_bytes(settings.run_dir(r)) for r in before} == before  # nothing went

    # Not old enough: a 30-day rule leaves runs finished today alone.
    assert not storage.plan_clean(settings, db, 30).items

    done = storage.clean(settings, db, LOCAL_ADMIN, older_than_days=0)
    assert done.deleted and done.bytes == plan["bytes"]
    folder = settings.run_dir(plain)
    assert not (folder / "resume.pt").exists() and not (folder / "exports").exists()
    assert not (folder / "variants").exists()
    assert checkpoint_path(settings, plain).is_file()  # the model and report stay
    assert (folder / "report.json").is_file()
    # What is left is what was there less what the plan listed, plus the line saying so.
    said = log_path(settings, plain).read_text().splitlines()[-1] + "\n"
    assert "storage clean-up removed" in said and "resume.pt" in said
    assert _files_bytes(folder) == before[plain] - plan["bytes"] + len(said.encode())
    paths = {a.path for a in list_artifacts(db, plain)}
    assert "model.pt" in paths and "exports/model.onnx" not in paths  # rows of gone files go
    assert "exports/model.onnx" in {a.path for a in list_artifacts(db, kept)}
    for run_id in (registered, kept):
        assert _files_bytes(settings.run_dir(run_id)) == before[run_id]
    assert model_registry.model_file(
        settings, model_registry.find_model(db, "flowers").versions[0]
    ).is_file()
    entry = audit.list_entries(db, action="storage_clean", limit=1)[0]
    assert "freed" in entry.detail
    # The run still opens: what it lost was only what a finished run no longer reads.
    assert run_store.get_run(db, plain).status == "completed"
    after = storage.usage(settings, db)  # measured again: the clean-up dropped the cache
    assert next(r for r in after.runs if r.id == plain).parts["checkpoint"] == 0


def _extras_sizes(settings: Settings, run_id: int) -> dict[str, int]:
    folder = settings.run_dir(run_id)
    return {
        name: _files_bytes(folder / name)
        if (folder / name).is_dir()
        else (folder / name).stat().st_size
        for name in storage.RECLAIMABLE
        if (folder / name).exists()
    }


def test_viewers_and_members_cannot_clean_up(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    _extras(settings, run_id)
    before = _files_bytes(settings.run_dir(run_id))
    for role in ("viewer", "member"):
        with pytest.raises(PermissionDenied, match=f"role \\({role}\\) cannot clean up"):
            storage.clean(settings, db, Actor("someone", role), older_than_days=0)
        with pytest.raises(PermissionDenied):
            storage.backup(settings, db, Actor("someone", role), settings.home.parent / "b.tar")
    assert _files_bytes(settings.run_dir(run_id)) == before
    assert not audit.list_entries(db, action="storage_clean")


def test_the_admin_page_shows_disk_use_and_cleans_up(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    _extras(settings, run_id)
    at = open_page("views/admin.py")
    frames = [f.value for f in at.dataframe]
    runs_table = next(f for f in frames if "checkpoint MB" in f.columns)
    assert list(runs_table["run"]) == [run_id]
    at.number_input(key="clean_days").set_value(0).run()
    label = next(b.label for b in at.button if b.label.startswith("Delete 4 items"))
    button(at, label).click().run()
    assert not at.exception
    assert not resume_path(settings, run_id).exists()
    assert "Freed" in "\n".join(s.value for s in at.success)


def test_an_age_that_is_not_one_is_refused_with_a_sentence():
    assert storage.parse_age("2w") == 14 and storage.parse_age("12h") == 0.5
    with pytest.raises(StorageError, match="such as 30d"):
        storage.parse_age("soon")


def _points(db: Engine, run_id: int) -> list[tuple]:
    with reading(db) as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(metrics.c.key, metrics.c.step, metrics.c.value)
                .where(metrics.c.run_id == run_id)
                .order_by(metrics.c.key, metrics.c.step)
            )
        ]


@pytest.mark.slow  # a worker process and the CLI as programs
def test_backup_while_the_engine_trains_restores_the_same_runs(
    settings, db, demo_datasets, tmp_path, monkeypatch
):
    finished = completed_run(settings, db, "iris")
    proc = start_worker()
    try:
        training = submit_run(
            db, "breast_cancer", {"epochs": 5000, "batch_size": 8, "early_stopping_patience": 0}
        )
        wait_until(
            lambda: (
                resume_path(settings, training).is_file()
                and (checkpoint_epoch(resume_path(settings, training)) or 0) >= 2
            ),
            timeout=120,
            what="the training run's second resume checkpoint",
        )
        archive = tmp_path / "backup" / "seedlab.tar.gz"
        result = cli_process("backup", str(archive))
        assert result.returncode == 0, result.stderr
        assert "Backed up 2 runs" in result.stdout
        assert run_store.get_run(db, training).status == "running"  # it trained throughout
        cli("runs", "cancel", str(training))
    finally:
        stop_worker(proc)

    # A home in use is refused, and nothing there changes.
    refused = cli_process("restore", str(archive))
    assert refused.returncode == 1 and "is not empty" in refused.stderr

    fresh = tmp_path / "fresh-home"
    monkeypatch.setenv("SEEDLAB_HOME", str(fresh))
    restored = cli_process("restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    new_settings = Settings.from_env()
    new_db = get_db(new_settings)
    source_runs = {r.id: (r.name, r.dataset_id) for r in run_store.list_runs(db)}
    assert {r.id: (r.name, r.dataset_id) for r in run_store.list_runs(new_db)} == source_runs
    assert run_store.get_run(new_db, finished).status == "completed"
    assert _points(new_db, finished) == _points(db, finished)
    assert checkpoint_path(new_settings, finished).read_bytes() == (
        checkpoint_path(settings, finished).read_bytes()
    )
    # The run caught mid-training: its points are the first ones of the source's, and its
    # checkpoint is no newer than them, so a resume continues with nothing lost or twice.
    caught = _points(new_db, training)
    assert caught and set(caught) <= set(_points(db, training))
    epochs = [v for k, _, v in caught if k == "epoch"]
    assert checkpoint_epoch(resume_path(new_settings, training)) <= max(epochs)
    assert run_store.get_run(new_db, training).status == "running"
    # The datasets came along: the restored home trains.
    listed = cli_process("runs", "list", "--json")
    assert listed.returncode == 0 and {r["id"] for r in json.loads(listed.stdout)} == set(
        source_runs
    )
    assert audit.list_entries(new_db, action="restore", limit=1)


def test_backup_refuses_another_database_server_and_a_path_inside_home(settings, db):
    with pytest.raises(StorageError, match="inside SEEDLAB_HOME"):
        storage.backup(settings, db, LOCAL_ADMIN, settings.home / "b.tar")
    other = Settings(home=settings.home, db_url="mysql+pymysql://u:secret@host/seedlab")
    with pytest.raises(StorageError, match="handle SQLite and PostgreSQL") as caught:
        storage.backup(other, db, LOCAL_ADMIN, settings.home.parent / "b.tar")
    assert "secret" not in str(caught.value)


@pytest.mark.backends("postgresql")
def test_backup_and_restore_on_postgresql(settings, db, demo_datasets, postgres_server, tmp_path):
    run_id = completed_run(settings, db, "iris")
    archive = tmp_path / "pg-backup.tar"
    manifest = storage.backup(settings, db, LOCAL_ADMIN, archive)
    assert manifest["database"] == "postgresql" and manifest["runs"] == 1
    fresh = Settings(home=tmp_path / "fresh", db_url=postgres_server.create_database())
    storage.restore(fresh, LOCAL_ADMIN, archive)
    new_db = get_db(fresh)
    assert [r.id for r in run_store.list_runs(new_db)] == [run_id]
    assert _points(new_db, run_id) == _points(db, run_id)
    assert (
        checkpoint_path(fresh, run_id).read_bytes()
        == checkpoint_path(settings, run_id).read_bytes()
    )
    with pytest.raises(StorageError, match="already holds runs"):
        storage.restore(
            Settings(home=tmp_path / "third", db_url=fresh.db_url), LOCAL_ADMIN, archive
        )


@pytest.mark.slow
def test_the_storage_benchmark_runs():
    """bench/bench_storage.py end to end at tiny sizes (it asserts the plan's item count; no
    speed is asserted here: bench/RESULTS.md holds the figures)."""
    import subprocess
    import sys

    from tests.support.commands import ROOT, child_env

    done = subprocess.run(
        [sys.executable, "bench/bench_storage.py", "--quick"],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "storage.usage, measured (cold)" in done.stdout


def test_versions_show_their_disk_use_and_unused_replaced_ones_are_cleaned(
    settings, db, demo_datasets, tmp_path
):
    """v1 (a run trained on it) stays, v2 (its own upload, no run, replaced) goes with its
    files and its row, v3 (the latest) stays; an edit of v1 shares v1's data."""
    from engine.data.demo import demo_frames
    from engine.services import dataset_versions as dv

    frame, target = demo_frames()["iris"]
    record = dv.resolve(db, "iris")[0]
    submit_run(db, "iris", {})  # trains on v1
    for rows in (140, 130):  # v2, v3: new uploads, each with a base of its own
        frame.head(rows).to_csv(tmp_path / "iris.csv", index=False)
        added = cli(
            "datasets", "add", str(tmp_path / "iris.csv"), "--name", "iris",
            "--target", target, "--new-version",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
    versions = dv.list_versions(db, record.id)
    assert [v.number for v in versions] == [1, 2, 3]
    v2_base = settings.resolve(versions[1].base_path)
    assert v2_base.exists()

    report = storage.usage(settings, db, max_age_s=0)
    shown = {(v.dataset, v.number): v for v in report.versions}
    assert shown[("iris", 1)].runs == 1 and shown[("iris", 2)].runs == 0
    assert shown[("iris", 2)].own_base and shown[("iris", 2)].bytes == _files_bytes(v2_base)
    assert "iris@2" in cli("storage").stdout

    plan = storage.plan_clean(settings, db, older_than_days=30)
    planned = [i for i in plan.items if i.kind == "dataset version"]
    assert [i.path for i in planned] == [versions[1].base_path]
    assert "version(s) 2" in planned[0].reason
    storage.clean(settings, db, LOCAL_ADMIN, older_than_days=30)
    assert not v2_base.exists()
    assert [v.number for v in dv.list_versions(db, record.id)] == [1, 3]
    assert len(dv.load_version_frame(settings, db, record.id, 1)) == len(frame)
    assert len(dv.load_version_frame(settings, db, record.id, 3)) == 130


def test_a_run_whose_checkpoint_was_cleaned_up_says_so_when_resumed(settings, db, demo_datasets):
    """Clean-up removes a cancelled run's resume.pt: resuming it then names the clean-up (its
    log has the line), not "stopped before its first epoch ended"."""
    from db.writes import runs as run_writes
    from engine.core.errors import SeedlabError
    from engine.services.recovery import resume_run

    cleaned, early = (submit_run(db, "iris", {"epochs": 3}) for _ in range(2))
    for run_id in (cleaned, early):
        run_writes.claim_next_run(db, "w")
        run_writes.finish_run(db, run_id, "cancelled")
    resume_checkpoint(settings, cleaned, epoch=2)
    storage.clean(settings, db, LOCAL_ADMIN, older_than_days=0)
    assert not resume_path(settings, cleaned).exists()
    assert (
        "storage clean-up removed: resume.json, resume.pt"
        in log_path(settings, cleaned).read_text()
    )

    with pytest.raises(SeedlabError, match="a storage clean-up removed its resume checkpoint"):
        resume_run(settings, db, cleaned)
    with pytest.raises(SeedlabError, match="stopped before its first epoch ended"):
        resume_run(settings, db, early)
