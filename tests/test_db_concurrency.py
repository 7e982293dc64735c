"""Several worker processes on one database at once, on SQLite and on PostgreSQL: each claims
runs, flushes metrics with heartbeats and finishes them, while the others do the same."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from db import metrics as metric_store
from db import runs as run_store
from db.session import make_engine
from db.writes import runs as run_writes
from tests.support.data import stub_dataset

# Several worker processes at once, each importing the engine.
pytestmark = [pytest.mark.backends("sqlite", "postgresql"), pytest.mark.slow]

KEYS = ("loss", "accuracy")
STEPS = 4


def _work_through_queue(url: str, worker: str, queue) -> None:  # noqa: ANN001
    db = make_engine(url)
    done = []
    while (run_id := run_writes.claim_next_run(db, worker)) is not None:
        for step in range(STEPS):
            points = [(k, step, float(step * 10 + i), 0.0) for i, k in enumerate(KEYS)]
            run_writes.record_progress(db, run_id, points)
        assert run_writes.finish_run(db, run_id, "completed")
        done.append(run_id)
    queue.put((worker, done))
    db.dispose()


def test_parallel_workers_claim_flush_and_finish_every_run_once(settings, db):
    dataset_id = stub_dataset(db)
    ids = [
        run_writes.create_run(db, name=f"r{i}", dataset_id=dataset_id, config={}) for i in range(30)
    ]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_work_through_queue, args=(settings.db_url, f"w{i}", queue))
        for i in range(3)
    ]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    claimed = [run_id for done in results.values() for run_id in done]
    assert sorted(claimed) == ids, "every run claimed and finished exactly once"
    owner = {run_id: worker for worker, done in results.items() for run_id in done}
    history = metric_store.metric_history(db, ids)
    assert len(history) == len(ids) * STEPS * len(KEYS), "no flush lost"
    for run in run_store.list_runs(db, limit=None):
        assert run.status == "completed" and run.worker_id == owner[run.id]
        assert run.summary["loss"] == {"last": 30.0, "step": 3, "min": 0.0, "max": 30.0}
        assert run.summary["accuracy"]["last"] == 31.0
