"""The storage layer on a real SQLite file and a real PostgreSQL server: schema, claims,
metrics, summaries."""

from __future__ import annotations

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from db import metrics as metric_store
from db import runs as run_store
from db.migrate import UnknownSchemaVersion, head_revision, upgrade_to_head
from db.models import Base
from db.session import make_engine, reading
from db.writes import metrics as metric_writes
from db.writes import runs as run_writes
from tests.support.claims import claimed_by_two_processes
from tests.support.data import stub_dataset

pytestmark = pytest.mark.backends("sqlite", "postgresql")


def test_models_match_migrations(db):
    with db.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    with db.connect() as conn:
        assert MigrationContext.configure(conn).get_current_revision() == head_revision()


@pytest.mark.backends("sqlite")
def test_sqlite_pragmas(db):
    with db.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000


def test_database_url_is_shown_without_its_password():
    from pathlib import Path

    from engine.core.settings import Settings

    url = "postgresql+psycopg://lab:s3cret@db.example:5432/seedlab"
    shown = Settings(home=Path("var"), db_url=url).db_url_shown
    assert "s3cret" not in shown and shown.startswith("postgresql+psycopg://lab:***@db.example")


@pytest.mark.backends("postgresql")
def test_postgresql_writes_read_committed_and_reads_one_read_only_snapshot(db):
    assert db.dialect.name == "postgresql" and db.pool._pre_ping
    with db.begin() as conn:
        assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == "read committed"
    with reading(db) as conn:
        assert conn.exec_driver_sql("SHOW transaction_isolation").scalar() == "repeatable read"
        assert conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "on"
    # The pool hands the connection back reset: the next write is not read-only.
    with db.begin() as conn:
        assert conn.exec_driver_sql("SHOW transaction_read_only").scalar() == "off"


def test_newer_schema_is_refused(db):
    with db.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    with pytest.raises(UnknownSchemaVersion, match="newer version"):
        upgrade_to_head(db)


def test_status_check_constraint(db):
    run_id = run_writes.create_run(db, name="r", dataset_id=stub_dataset(db), config={})
    with pytest.raises(IntegrityError, match="(?i)check constraint"):
        with db.begin() as conn:
            conn.execute(text("UPDATE runs SET status = 'exploded' WHERE id = :i"), {"i": run_id})


def test_claim_takes_oldest_once(db):
    ds = stub_dataset(db)
    first = run_writes.create_run(db, name="a", dataset_id=ds, config={})
    second = run_writes.create_run(db, name="b", dataset_id=ds, config={})
    assert run_writes.claim_next_run(db, "w1") == first
    assert run_writes.claim_next_run(db, "w2") == second
    assert run_writes.claim_next_run(db, "w3") is None
    run = run_store.get_run(db, first)
    assert run.status == "running" and run.worker_id == "w1" and run.started_at is not None


def test_claim_is_atomic_across_processes(settings, db):
    ds = stub_dataset(db)
    ids = [run_writes.create_run(db, name=f"r{i}", dataset_id=ds, config={}) for i in range(60)]
    claimed = claimed_by_two_processes(settings.db_url, "db.writes.runs.claim_next_run")
    assert sorted(claimed) == ids, "every run claimed exactly once"
    assert len(set(claimed)) == len(claimed)


def test_metrics_append_and_summary(db):
    run_id = run_writes.create_run(db, name="r", dataset_id=stub_dataset(db), config={})
    metric_writes.append_metrics(db, run_id, [("loss", s, 10.0 - s, 0.0) for s in range(1, 6)])
    metric_writes.append_metrics(db, run_id, [("loss", 6, 7.5, 0.0), ("acc", 6, 0.9, 0.0)])
    history = metric_store.metric_history(db, [run_id], ["loss"])
    assert history["step"].tolist() == [1, 2, 3, 4, 5, 6]
    assert history["value"].tolist() == [9.0, 8.0, 7.0, 6.0, 5.0, 7.5]
    run = run_store.get_run(db, run_id)
    assert run.summary["loss"] == {"last": 7.5, "step": 6, "min": 5.0, "max": 9.0}
    assert run.summary["acc"]["last"] == 0.9
    # An out-of-order (older) point updates min/max but not the latest value.
    metric_writes.append_metrics(db, run_id, [("loss", 2, 1.0, 0.0)])
    run = run_store.get_run(db, run_id)
    assert run.summary["loss"]["last"] == 7.5 and run.summary["loss"]["min"] == 1.0
    # A step sent twice in one batch: the later point wins, as if written one after the other.
    metric_writes.append_metrics(db, run_id, [("acc", 7, 0.1, 0.0), ("acc", 7, 0.2, 1.0)])
    acc = metric_store.metric_history(db, [run_id], ["acc"])
    assert acc["value"].tolist() == [0.9, 0.2] and acc["wall_time"].tolist() == [0.0, 1.0]


def test_record_progress_reports_cancel(db):
    run_id = run_writes.create_run(db, name="r", dataset_id=stub_dataset(db), config={})
    run_writes.claim_next_run(db, "w")
    assert run_writes.record_progress(db, run_id, [("loss", 1, 1.0, 0.0)]) is False
    assert run_writes.request_cancel(db, run_id) == "running"
    assert run_writes.record_progress(db, run_id, []) is True


def test_cancel_queued_run_is_immediate(db):
    run_id = run_writes.create_run(db, name="r", dataset_id=stub_dataset(db), config={})
    assert run_writes.request_cancel(db, run_id) == "cancelled"
    assert run_store.get_run(db, run_id).status == "cancelled"
    assert run_writes.claim_next_run(db, "w") is None
    assert run_writes.request_cancel(db, 999) is None


def test_finish_first_writer_wins(db):
    run_id = run_writes.create_run(db, name="r", dataset_id=stub_dataset(db), config={})
    run_writes.claim_next_run(db, "w")
    assert run_writes.finish_run(db, run_id, "completed")
    assert not run_writes.finish_run(db, run_id, "failed", "late")
    run = run_store.get_run(db, run_id)
    assert run.status == "completed" and run.error is None


def _stale_heartbeat(db, run_id: int) -> None:
    with db.begin() as conn:
        conn.execute(
            text("UPDATE runs SET heartbeat_at = '2020-01-01 00:00:00' WHERE id = :i"),
            {"i": run_id},
        )


def test_stale_running_runs_are_requeued_or_failed(settings, db):
    """The live path (engine/services/recovery.py): with a resume checkpoint a silent run goes
    back to the queue; without one it fails with the reason; a run that beats is left alone."""
    import torch

    from engine.core.run_files import log_path, resume_path
    from engine.ml.checkpoints import capture_state, save_train_state
    from engine.services.recovery import settle_stale_runs

    dataset = stub_dataset(db)
    resumable, fresh, alive = (
        run_writes.create_run(db, name=n, dataset_id=dataset, config={}) for n in "rfa"
    )
    for _ in range(3):
        run_writes.claim_next_run(db, "w")
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    state = capture_state(
        epoch=3,
        model=model,
        optimizer=optimizer,
        scheduler=None,
        scaler=torch.amp.GradScaler("cpu", enabled=False),
        generator=torch.Generator(),
        history=[],
        best_score=1.0,
        best_epoch=3,
        best_model=None,
    )
    save_train_state(resume_path(settings, resumable), state)
    assert settle_stale_runs(settings, db, timeout_s=60) == {}  # every heartbeat is fresh
    _stale_heartbeat(db, resumable)
    _stale_heartbeat(db, fresh)

    assert settle_stale_runs(settings, db, timeout_s=60) == {resumable: "queued", fresh: "failed"}
    requeued, failed = run_store.get_run(db, resumable), run_store.get_run(db, fresh)
    assert requeued.status == "queued" and requeued.attempts == 1 and requeued.worker_id is None
    assert "requeued to resume after epoch 3" in log_path(settings, resumable).read_text()
    assert failed.status == "failed" and "before its first checkpoint" in failed.error
    assert failed.finished_at is not None
    assert run_store.get_run(db, alive).status == "running"
    assert settle_stale_runs(settings, db, timeout_s=60) == {}  # settled once, not twice


def test_list_runs_filters_and_summary(db):
    a, b = stub_dataset(db, "a"), stub_dataset(db, "b")
    r1 = run_writes.create_run(db, name="alpha", dataset_id=a, config={})
    r2 = run_writes.create_run(db, name="beta", dataset_id=b, config={})
    metric_writes.append_metrics(db, r2, [("test_accuracy", 1, 0.75, 0.0)])
    run_writes.request_cancel(db, r1)
    assert [r.id for r in run_store.list_runs(db)] == [r2, r1]
    assert [r.id for r in run_store.list_runs(db, statuses=["cancelled"])] == [r1]
    assert [r.id for r in run_store.list_runs(db, dataset_ids=[b])] == [r2]
    assert [r.id for r in run_store.list_runs(db, name_contains="alp")] == [r1]
    assert [r.id for r in run_store.list_runs(db, name_contains="ALP")] == [r1]  # any case
    assert run_store.list_runs(db, dataset_ids=[b])[0].last("test_accuracy") == 0.75
    assert run_store.count_runs_by_status(db)["cancelled"] == 1
    with pytest.raises(ValueError, match="status must be one of"):
        run_store.list_runs(db, statuses=["bogus"])


def test_foreign_keys_enforced(db):
    with pytest.raises(IntegrityError, match="(?i)foreign key"):
        run_writes.create_run(db, name="r", dataset_id=12345, config={})


def test_reader_does_not_block_writer(settings, db):
    run_id = run_writes.create_run(db, name="r", dataset_id=stub_dataset(db), config={})
    with reading(db) as reader:
        count = "SELECT COUNT(*) FROM metrics"
        assert reader.exec_driver_sql(count).scalar() == 0  # holds a read snapshot
        metric_writes.append_metrics(db, run_id, [("loss", 1, 1.0, 0.0)])  # must not wait/fail
        assert reader.exec_driver_sql(count).scalar() == 0  # still its own snapshot
    assert len(metric_store.metric_history(db, [run_id])) == 1


def test_nan_points_do_not_lose_the_batch(db):
    run_id = run_writes.create_run(db, name="r", dataset_id=stub_dataset(db), config={})
    metric_writes.append_metrics(
        db,
        run_id,
        [("r2", 1, float("nan"), 0.0), ("loss", 1, 2.0, 0.0), ("gap", 1, float("inf"), 0.0)],
    )
    history = metric_store.metric_history(db, [run_id])
    assert len(history) == 3
    assert history.set_index("key").loc["r2", "value"] is None or pd.isna(
        history.set_index("key").loc["r2", "value"]
    )
    metric_writes.append_metrics(db, run_id, [("r2", 2, float("nan"), 0.0)])  # NaN alone
    assert len(metric_store.metric_history(db, [run_id])) == 4
    summary = run_store.get_run(db, run_id).summary
    assert "r2" not in summary and summary["loss"]["last"] == 2.0
    assert summary["gap"]["last"] == float("inf")
    assert metric_store.metric_history(db, [run_id + 1]).empty


def test_migration_0002_keeps_runs_and_moves_tags_to_rows(empty_database_url):
    """A database written by the first release upgrades without losing runs or their tags."""
    from alembic import command

    from db.migrate import alembic_config
    from db.writes.projects import create_project

    old = make_engine(empty_database_url)
    cfg = alembic_config(old)
    with old.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            text(
                "INSERT INTO datasets (id, name, kind, task, target, schema, n_rows, n_columns,"
                " sha256, path, source_filename, created_at) VALUES (1, 'd', 'tabular',"
                " 'classification', 'y', '{}', 1, 1, '', 'p', 'f', '2026-01-01')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO runs (id, name, dataset_id, config, status, cancel_requested,"
                " created_at, tags, notes) VALUES (7, 'old run', 1, '{}', 'completed', false,"
                " '2026-01-01', '[\"baseline\", \"v1\"]', 'kept')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO metrics (run_id, key, step, value, wall_time)"
                " VALUES (7, 'val_loss', 1, 0.5, 0)"
            )
        )
    upgrade_to_head(old)
    # Rebuilding `runs` in batch mode must not cascade-delete its children.
    assert metric_store.metric_history(old, [7], ["val_loss"])["value"].tolist() == [0.5]
    run = run_store.get_run(old, 7)
    assert run.name == "old run" and run.notes == "kept" and run.status == "completed"
    assert run.tags == ["baseline", "v1"]
    assert run.project_id == 1 and run.archived is False and run.attempts == 0
    # The "Default" project was inserted with an explicit id: the next one still gets a new id.
    assert create_project(old, "second").id == 2
    old.dispose()


def test_an_artifact_over_2_gib_is_recorded(db):
    from db import artifacts as artifact_store
    from db.writes import artifacts as artifact_writes

    run_id = run_writes.create_run(db, name="r", dataset_id=stub_dataset(db), config={})
    size = 5 * 2**30  # a large checkpoint: PostgreSQL's 32-bit INTEGER stopped at 2**31 - 1
    artifact_writes.add_artifact(
        db, run_id, kind="checkpoint", path="model.pt", size_bytes=size, sha256="0" * 64
    )
    assert [a.bytes for a in artifact_store.list_artifacts(db, run_id)] == [size]


def test_two_sessions_adding_the_same_tag_at_once_both_succeed(db):
    import threading
    import time

    from sqlalchemy import insert

    from db.models import run_tags
    from db.writes import run_edits

    run_id = run_writes.create_run(db, name="r", dataset_id=stub_dataset(db), config={})
    failures: list[BaseException] = []

    def add_from_another_session() -> None:
        try:
            run_edits.add_tags(db, [run_id], ["best", "other"])
        except BaseException as e:  # noqa: BLE001 - the assertion below reports it
            failures.append(e)

    # One session inserts "best" and holds its transaction open while a second adds it too:
    # the second cannot see the uncommitted row, waits on it, and must not fail when it lands.
    with db.begin() as conn:
        conn.execute(insert(run_tags).values(run_id=run_id, tag="best"))
        second = threading.Thread(target=add_from_another_session)
        second.start()
        # Part of the scenario, not a wait for a condition: the first transaction stays open
        # while the second session tries its insert (and blocks on the uncommitted row).
        time.sleep(0.5)
    second.join(timeout=30)
    assert not second.is_alive() and failures == []
    assert run_store.get_run(db, run_id).tags == ["best", "other"]
