"""Jobs: export, compression and importance queued from a page and run by the engine's worker.

The table and its claim on SQLite and a real PostgreSQL server; the services' checks and audit
rows; the job runner in this process; and, for what the engine does, a real worker subprocess
with the Run page driven through AppTest.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from db import audit
from db import jobs as job_store
from db import runs as run_store
from db.writes import jobs as job_writes
from db.writes import workers as worker_writes
from engine.core.errors import SeedlabError
from engine.core.run_files import checkpoint_path, read_report, report_path
from engine.services import job_work, jobs
from engine.services.launch import submit_run
from engine.services.permissions import Actor, PermissionDenied
from tests.support.claims import claimed_by_two_processes
from tests.support.data import completed_run
from tests.support.engine import start_worker, stop_worker
from tests.support.waiting import wait_until

ADMIN = Actor("ana", "admin")
VIEWER = Actor("vic", "viewer")


def _queued_run(db) -> int:  # noqa: ANN001
    """A run row to hang jobs on (its status does not matter to the jobs table)."""
    return submit_run(db, "iris", {"epochs": 1})


def _status(db, job_id: int) -> str:  # noqa: ANN001
    return job_store.get_job(db, job_id).status


# ---------------------------------------------------------------- the table, both backends


@pytest.mark.backends("sqlite", "postgresql")
def test_job_kind_and_status_are_checked_by_the_database(db, demo_datasets):
    run_id = _queued_run(db)
    job_id = job_writes.enqueue(db, kind="export", run_id=run_id, params={}, requested_by="t")
    for column, value in (("status", "exploded"), ("kind", "paint")):
        with pytest.raises(IntegrityError, match="(?i)check constraint"):
            with db.begin() as conn:
                conn.execute(
                    text(f"UPDATE jobs SET {column} = :v WHERE id = :i"), {"v": value, "i": job_id}
                )


@pytest.mark.backends("sqlite", "postgresql")
def test_job_lifecycle_first_writer_wins(db, demo_datasets):
    run_id = _queued_run(db)
    first = job_writes.enqueue(
        db, kind="export", run_id=run_id, params={"format": "onnx"}, requested_by="t"
    )
    second = job_writes.enqueue(db, kind="importance", run_id=run_id, params={}, requested_by="t")
    assert job_writes.claim_next_job(db, "w1") == first
    assert job_writes.claim_next_job(db, "w2") == second
    assert job_writes.claim_next_job(db, "w3") is None
    job_writes.set_progress(db, first, "Exporting…", 0.5)
    job = job_store.get_job(db, first)
    assert (job.status, job.worker_id, job.progress, job.progress_fraction) == (
        "running",
        "w1",
        "Exporting…",
        0.5,
    )
    # Another worker cannot end it; its own can, once.
    assert not job_writes.finish_job(db, first, "failed", error="x", worker_id="w2")
    assert job_writes.finish_job(db, first, "completed", result={"message": "ok"}, worker_id="w1")
    assert not job_writes.finish_job(db, first, "failed", error="late")
    assert job_store.get_job(db, first).result == {"message": "ok"}
    # A shutdown puts a running job back, for the next engine start.
    assert job_writes.requeue_job(db, second, worker_id="w2")
    assert _status(db, second) == "queued" and job_store.get_job(db, second).worker_id is None
    assert [j.id for j in job_store.list_jobs(db, run_id)] == [second, first]
    assert [j.id for j in job_store.list_jobs(db, run_id, kind="export")] == [first]
    # A deleted run takes its jobs with it.
    with db.begin() as conn:
        conn.execute(text("DELETE FROM runs WHERE id = :i"), {"i": run_id})
    assert job_store.get_job(db, first) is None


@pytest.mark.backends("sqlite", "postgresql")
def test_jobs_of_a_vanished_worker_are_failed_and_a_live_ones_are_not(db, demo_datasets):
    run_id = _queued_run(db)
    ids = [
        job_writes.enqueue(db, kind="export", run_id=run_id, params={"n": i}, requested_by="t")
        for i in range(3)
    ]
    worker_writes.register_worker(db, "alive", hostname="h", pid=1, max_concurrent=1)
    worker_writes.register_worker(db, "stopped", hostname="h", pid=2, max_concurrent=1)
    worker_writes.mark_stopped(db, "stopped")
    for job_id, worker in zip(ids, ("alive", "stopped", "never-registered"), strict=True):
        assert job_writes.claim_next_job(db, worker) == job_id
    failed = job_writes.fail_orphaned_jobs(db, alive_within_s=60, error="engine gone")
    assert sorted(failed) == ids[1:]
    assert [_status(db, i) for i in ids] == ["running", "failed", "failed"]
    assert job_store.get_job(db, ids[1]).error == "engine gone"


@pytest.mark.backends("sqlite", "postgresql")
def test_job_claim_is_atomic_across_processes(settings, db, demo_datasets):
    run_id = _queued_run(db)
    ids = [
        job_writes.enqueue(db, kind="export", run_id=run_id, params={"n": i}, requested_by="t")
        for i in range(60)
    ]
    claimed = claimed_by_two_processes(settings.db_url, "db.writes.jobs.claim_next_job")
    assert sorted(claimed) == ids, "every job claimed exactly once"
    assert len(set(claimed)) == len(claimed)


# ---------------------------------------------------------------- services


def test_export_formats_match_the_exporter():
    from engine.deploy.export import FORMATS

    assert jobs.EXPORT_FORMATS == FORMATS


def test_requests_check_audit_and_queue_once(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    job_id = jobs.request_export(settings, db, ADMIN, run_id, " ONNX ")
    job = job_store.get_job(db, job_id)
    assert (job.kind, job.params, job.status, job.requested_by) == (
        "export",
        {"format": "onnx"},
        "queued",
        "ana",
    )
    # A second click while it waits is the same job, and no second audit row.
    assert jobs.request_export(settings, db, ADMIN, run_id, "onnx") == job_id
    rows = audit.list_entries(db, action="export")
    assert [(r.user, r.target, r.detail) for r in rows] == [
        ("ana", f"run {run_id}", f"onnx (job {job_id})")
    ]
    prune = jobs.request_compression(settings, db, ADMIN, run_id, "prune", sparsity=0.3, epochs=1)
    assert job_store.get_job(db, prune).params == {"method": "prune", "sparsity": 0.3, "epochs": 1}
    assert audit.list_entries(db, action="compress")[0].detail == f"prune (job {prune})"
    jobs.request_importance(settings, db, ADMIN, run_id)
    assert audit.list_entries(db, action="importance")[0].target == f"run {run_id}"

    with pytest.raises(PermissionDenied, match="cannot export models"):
        jobs.request_export(settings, db, VIEWER, run_id, "bundle")
    with pytest.raises(SeedlabError, match="format must be one of"):
        jobs.request_export(settings, db, ADMIN, run_id, "pickle")
    with pytest.raises(SeedlabError, match="No run 999"):
        jobs.request_importance(settings, db, ADMIN, 999)
    queued = _queued_run(db)
    with pytest.raises(SeedlabError, match="is queued; export, compression"):
        jobs.request_export(settings, db, ADMIN, queued, "onnx")
    assert len(job_store.list_jobs(db, run_id)) == 3  # the refused ones queued nothing


def test_in_process_export_and_compression_are_checked_and_audited(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    result = job_work.export_run(settings, db, ADMIN, run_id, "torchscript")
    assert result.path.endswith("model.torchscript.pt")
    compressed = job_work.compress_run(settings, db, ADMIN, run_id, "quantize")
    assert compressed["variant"]["name"] == "int8" and compressed["variants"]
    assert [(r.action, r.detail) for r in audit.list_entries(db)] == [
        ("compress", "quantize"),
        ("export", "torchscript"),
    ]
    with pytest.raises(PermissionDenied):
        job_work.compress_run(settings, db, VIEWER, run_id, "quantize")
    assert len(audit.list_entries(db)) == 2
    # Distillation queues a student run; the page's form values arrive as a dict, the CLI's
    # as --set strings: the same student either way.
    student = job_work.compress_run(
        settings, db, ADMIN, run_id, "distill", overrides=["distill_temperature=4"]
    )["variant"]["run_id"]
    params = jobs.compression_params("distill", overrides={"distill_temperature": 4.0})
    result = job_work.perform(settings, db, "compress", run_id, params)
    assert result["message"].startswith(f"queued student run #{result['variant']['run_id']}")
    configs = [run_store.get_run(db, i).config for i in (student, result["variant"]["run_id"])]
    assert [c["distill_temperature"] for c in configs] == [4.0, 4.0]
    assert all(c["distill_from"] == run_id for c in configs)


# ---------------------------------------------------------------- the job runner, in process


def test_job_runner_records_the_result_or_a_sentence(settings, db, demo_datasets):
    from engine.execution.job_runner import run_job

    run_id = completed_run(settings, db, "diabetes")
    ok = jobs.request_importance(settings, db, ADMIN, run_id, max_repeats=2)
    assert job_writes.claim_next_job(db, "tests") == ok
    assert run_job(settings, db, ok) == "completed"
    done = job_store.get_job(db, ok)
    assert (
        done.result["importance"]["metric"] == "rmse" and "Evaluation tab" in done.result["message"]
    )
    assert len(done.result["importance"]["features"]) == 10

    report_path(settings, run_id).unlink()  # the report is gone: importance has nowhere to go
    bad = jobs.request_importance(settings, db, ADMIN, run_id, max_repeats=3)
    assert job_writes.claim_next_job(db, "tests") == bad
    assert run_job(settings, db, bad) == "failed"
    assert "no readable report.json" in job_store.get_job(db, bad).error
    assert run_job(settings, db, bad) == "skipped"  # not running: nothing done twice


# ---------------------------------------------------------------- a real worker


def _texts(elements) -> str:  # noqa: ANN001
    return "\n".join(str(e.value) for e in elements)


@pytest.mark.slow
def test_run_page_queues_jobs_that_the_engine_runs(settings, db, demo_datasets, worker):
    from tests.support.pages import button, open_page, open_tab

    run_id = completed_run(settings, db, "iris")
    report = read_report(settings, run_id)
    del report["importance"]  # an older run, from before importance was computed in training
    report_path(settings, run_id).write_text(json.dumps(report))
    at = open_page("views/run_detail.py", run=str(run_id), tab="Export & compress")
    assert "No variants yet" in _texts(at.info)
    at = open_tab(at, "Evaluation")

    button(at, "Compute feature importance").click().run()
    [importance] = job_store.list_jobs(db, run_id, kind="importance")
    wait_until(
        lambda: _status(db, importance.id) == "completed", 90, what="the importance job to complete"
    )
    at.run()
    assert any("Permutation importance on" in str(c.value) for c in at.caption)
    assert "Compute feature importance" not in [b.label for b in at.button]
    at = open_tab(at, "Export & compress")
    # ONNX goes through the same path; TorchScript keeps this test fast (no dynamo exporter).
    button(at, "Build TorchScript").click().run()
    assert not at.exception, [e.value for e in at.exception]
    [job] = job_store.list_jobs(db, run_id, kind="export")
    assert job.params == {"format": "torchscript"}
    wait_until(lambda: _status(db, job.id) == "completed", 90, what="the export job to complete")
    at.run()
    assert "model.torchscript.pt" in _texts(at.success)
    assert [d for d in at.get("download_button") if "Download" in d.proto.label]

    method = next(s for s in at.selectbox if s.label == "Method")
    method.set_value("quantize")
    next(b for b in at.button if b.label == "Compress").click().run()
    [compress] = job_store.list_jobs(db, run_id, kind="compress")
    wait_until(lambda: _status(db, compress.id) == "completed", 90, what="the int8 job to complete")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "the variant is in the table below" in _texts(at.success)
    assert list(at.dataframe[-1].value["variant"]) == ["original", "int8"]

    # A job that fails shows its sentence on the page (here the model file is gone).
    checkpoint_path(settings, run_id).unlink()
    button(at, "Build .pt2").click().run()
    [pt2] = job_store.list_jobs(db, run_id, kind="export", limit=1)
    wait_until(lambda: _status(db, pt2.id) == "failed", 90, what="the .pt2 job to fail")
    at.run()
    errors = _texts(at.error)
    assert pt2.id != job.id and "No model file at" in errors and "Traceback" not in errors


@pytest.mark.slow
def test_job_process_that_dies_jobs_of_a_dead_worker_and_shutdown(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    # A job left running by a worker that was killed (it never stopped, its beat is old).
    worker_writes.register_worker(db, "killed-worker", hostname="h", pid=1, max_concurrent=1)
    with db.begin() as conn:
        conn.execute(text("UPDATE workers SET heartbeat_at = '2020-01-01 00:00:00'"))
    orphan = jobs.request_export(settings, db, ADMIN, run_id, "onnx")
    assert job_writes.claim_next_job(db, "killed-worker") == orphan
    doomed = jobs.request_export(settings, db, ADMIN, run_id, "bundle")

    proc = start_worker()
    try:
        wait_until(lambda: _status(db, orphan) == "failed", 60, what="the orphaned job to fail")
        assert "engine stopped while this job ran" in job_store.get_job(db, orphan).error
        # The doomed job's process is killed while it still loads torch.
        pid = wait_until(
            lambda: job_store.get_job(db, doomed).pid, 60, what="the doomed job to start"
        )
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: _status(db, doomed) == "failed", 60, what="the killed job to fail")
        assert "was killed by SIGKILL" in job_store.get_job(db, doomed).error
        assert proc.poll() is None, "the worker survives its job's death"
        # A worker that shuts down puts its running job back in the queue.
        interrupted = jobs.request_export(settings, db, ADMIN, run_id, "pt2")
        wait_until(lambda: job_store.get_job(db, interrupted).pid, 60, what="the last job to start")
    finally:
        output = stop_worker(proc)
    assert "Traceback" not in output, output
    assert f"job {interrupted} requeued" in output
    assert _status(db, interrupted) == "queued"


def test_page_says_the_job_waits_while_the_engine_is_stopped(settings, db, demo_datasets):
    from tests.support.pages import button, open_page

    run_id = completed_run(settings, db, "iris")
    at = open_page("views/run_detail.py", run=str(run_id), tab="Export & compress")
    button(at, "Build ONNX").click().run()
    assert not at.exception, [e.value for e in at.exception]
    warning = _texts(at.warning)
    assert "Export as ONNX waits until the engine runs" in warning and "make run" in warning
    assert _status(db, job_store.list_jobs(db, run_id)[0].id) == "queued"
