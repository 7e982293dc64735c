"""Curve digests (db/models.SqlMetricDigest): a finished run's series stored at a fixed
resolution, written at the run's end (runner, demo fill) or on a first chart read, served by
engine/services/curves.drawn_history instead of the points; stale ones are ignored and
rewritten, running runs are read live. Real SQLite and PostgreSQL databases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from db import metrics as metric_store
from db import run_query
from db.run_query import RunFilter
from db.writes import digests as digest_writes
from db.writes import metrics as metric_writes
from db.writes import runs as run_writes
from engine.services import curves
from engine.services.demo_fill import CURVE_KEYS, fill_project
from engine.services.launch import submit_run
from engine.services.run_admin import delete_run
from tests.support.data import completed_run

pytestmark = pytest.mark.backends("sqlite", "postgresql")

DRAWN_SIZES = (metric_store.DIGEST_POINTS, 1000, 300, 200, 37)


@pytest.fixture
def finished(settings, db) -> list[int]:  # noqa: ANN001
    """Four finished runs of the demo fill (20 points per curve), in id order."""
    result = fill_project(settings, db, project="Digests", runs=4, steps=20, seed=2)
    found = run_query.query_runs(db, RunFilter(project_id=result.project_id), limit=10)
    return sorted(r.id for r in found)


def _noisy(seed: int, n: int = 12_345) -> list[tuple[str, int, float, float]]:
    """A long noisy series with spikes, ties, NaN and infinities, steps not from 0 nor dense."""
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=n), 1)  # rounded: many ties between points
    values[[n // 3, 2 * n // 3]] = [60.0, -60.0]
    values[[0, 5, n // 2, n - 1]] = [np.nan, np.inf, -np.inf, np.nan]
    steps = np.arange(n) * 2 + 7
    return [("noisy", int(s), float(v), 1_000.0 + s) for s, v in zip(steps, values, strict=True)]


def _digest(db, run_id: int, key: str) -> metric_store.Digest | None:  # noqa: ANN001
    return metric_store.stored_digests(db, [run_id], key)[1].get(run_id)


def _same(a: metric_store.MetricSeries, b: metric_store.MetricSeries) -> bool:
    return (
        np.array_equal(a.steps, b.steps)
        and np.array_equal(a.values, b.values)
        and np.array_equal(a.wall_times, b.wall_times)
    )


def test_a_digest_equals_the_points_sql_picks_at_every_coarser_size(db, finished) -> None:
    run_id = finished[0]
    metric_writes.append_metrics(db, run_id, _noisy(seed=5))
    version = metric_store.series_versions(db, [run_id], "noisy")[run_id]
    digest = metric_store.digest_of(metric_store.metric_series(db, run_id, "noisy"), version)
    # The same digest picked in SQL (how a chart read makes a missing one).
    (in_sql,) = metric_store.digests_in_sql(db, [run_id], "noisy")
    assert in_sql.version == version and _same(in_sql.series, digest.series)
    assert (in_sql.points, in_sql.first_step, in_sql.final_step) == (
        digest.points,
        digest.first_step,
        digest.final_step,
    )
    assert digest.points == 12_345 and len(digest.series) <= metric_store.DIGEST_POINTS
    assert np.isfinite(digest.series.values).all()
    assert {60.0, -60.0} <= set(digest.series.values.tolist())
    for size in DRAWN_SIZES:
        (sql,) = metric_store.downsampled_series(db, [run_id], "noisy", size)
        assert _same(digest.drawn(size), sql), f"{size} points"
        assert len(sql) <= size
    # Stored and read back as bytes: the same arrays, exact steps.
    digest_writes.store_digests(db, [digest])
    stored = _digest(db, run_id, "noisy")
    assert stored.version == version and _same(stored.series, digest.series)
    assert stored.series.steps.dtype == np.int64
    with pytest.raises(ValueError, match="cannot draw"):
        stored.drawn(metric_store.DIGEST_POINTS + 1)


def test_a_finished_run_gets_its_digests_at_its_end(settings, db, demo_datasets) -> None:
    run_id = completed_run(settings, db, "iris")
    keys = metric_store.metric_keys(db, [run_id])
    assert "val_loss" in keys
    for key in keys:
        digest = _digest(db, run_id, key)
        assert digest is not None, key
        assert digest.version == metric_store.series_versions(db, [run_id], key)[run_id]
        whole = metric_store.metric_series(db, run_id, key)
        finite = np.isfinite(whole.values)
        assert np.array_equal(digest.series.steps, whole.steps[finite])  # short: kept whole


def test_demo_fill_writes_digests_and_deleting_a_run_drops_them(settings, db, finished) -> None:
    for key in CURVE_KEYS:
        statuses, digests = metric_store.stored_digests(db, finished, key)
        assert sorted(digests) == finished and set(statuses.values()) <= {
            "completed",
            "failed",
            "cancelled",
        }
    delete_run(settings, db, finished[0])
    assert _digest(db, finished[0], CURVE_KEYS[0]) is None  # cascaded with the run


def test_a_stale_digest_is_ignored_and_rewritten(db, finished) -> None:
    curves.clear_cache()
    run_id = finished[1]
    key = CURVE_KEYS[0]
    before = _digest(db, run_id, key)
    # A digest that no longer matches the points (as if written before they changed): a point
    # added to the finished run changes its summary, so the old digest is not drawn.
    metric_writes.append_metrics(db, run_id, [(key, 1_000, -5.0, 0.0)])
    drawn = curves.drawn_history(db, [run_id], [key], max_points=300)
    assert drawn["step"].iloc[-1] == 1_000 and drawn["value"].min() == -5.0
    after = _digest(db, run_id, key)
    assert after.version != before.version
    assert after.version == metric_store.series_versions(db, [run_id], key)[run_id]
    assert after.series.steps[-1] == 1_000
    # A digest whose content lies under a wrong version is never served either.
    fake = metric_store.Digest(
        metric_store.MetricSeries(run_id, key, np.array([0]), np.array([9e9]), np.array([0.0])),
        (1, 9e9, 9e9, 9e9),
        metric_store.DIGEST_POINTS,
        1,
        0,
        0,
    )
    digest_writes.store_digests(db, [fake])
    curves.clear_cache()
    again = curves.drawn_history(db, [run_id], [key], max_points=300)
    assert again.equals(drawn) and 9e9 not in set(again["value"])
    assert _digest(db, run_id, key).version == after.version  # rewritten
    # Points discarded on resume (past an epoch) change the summary too.
    metric_writes.discard_after_epoch(db, run_id, 5)
    curves.clear_cache()
    cut = curves.drawn_history(db, [run_id], [key], max_points=300)
    assert cut["step"].max() < 1_000
    assert _digest(db, run_id, key).series.steps[-1] == cut["step"].max()


def test_a_running_run_is_read_live_and_gets_no_digest(db, demo_datasets) -> None:
    curves.clear_cache()
    run_id = submit_run(db, "iris", {})
    assert run_writes.claim_next_run(db, worker_id="tests") == run_id
    metric_writes.append_metrics(db, run_id, [("loss", s, 1.0 / (s + 1), 0.0) for s in range(50)])
    first = curves.drawn_history(db, [run_id], ["loss"], max_points=300)
    assert list(first["step"]) == list(range(50))
    assert _digest(db, run_id, "loss") is None
    metric_writes.append_metrics(db, run_id, [("loss", 50, 0.001, 0.0)])
    assert curves.drawn_history(db, [run_id], ["loss"], max_points=300)["step"].iloc[-1] == 50
    # Once it finishes, the next read stores its digest (a run finished by another path).
    run_writes.finish_run(db, run_id, "completed")
    curves.clear_cache()
    curves.drawn_history(db, [run_id], ["loss"], max_points=300)
    assert len(_digest(db, run_id, "loss").series) == 51


def test_drawn_history_is_the_same_with_and_without_digests(db, finished) -> None:
    for seed, run_id in enumerate(finished[:3]):
        metric_writes.append_metrics(db, run_id, _noisy(seed=seed, n=4_000 + 3_000 * seed))
    keys = ["noisy", CURVE_KEYS[0]]
    for size in DRAWN_SIZES:
        curves.clear_cache()
        served = curves.drawn_history(db, finished, keys, max_points=size)  # digests
        expected = []
        for key in keys:  # every point read, picked in SQL: what drawing did before digests
            for s in metric_store.downsampled_series(db, finished, key, size):
                expected.append(
                    pd.DataFrame(
                        {
                            "run_id": s.run_id,
                            "key": key,
                            "step": s.steps,
                            "value": s.values,
                            "wall_time": s.wall_times,
                        }
                    )
                )
        want = pd.concat(expected).sort_values(["run_id", "key", "step"], ignore_index=True)
        assert list(served.columns) == list(metric_store.HISTORY_COLUMNS)
        pd.testing.assert_frame_equal(served, want, check_dtype=False)
    # Every finished run now has its digest of the long series, valid for its points.
    _, digests = metric_store.stored_digests(db, finished, "noisy")
    versions = metric_store.series_versions(db, finished, "noisy")
    assert sorted(digests) == finished[:3]
    assert all(digests[r].version == versions[r] for r in digests)
