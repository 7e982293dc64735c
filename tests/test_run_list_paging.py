"""The run list's fast paths give the same answers as the plain definition: pages of a metric
sort (runs without the metric last, in either direction, across the page boundary), the count,
one series as arrays; and SQLite reads them through indexes (EXPLAIN QUERY PLAN)."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import event

from db import metrics as metric_store
from db import run_query
from db.run_query import MetricThreshold, RunFilter
from db.writes import metrics as metric_writes
from db.writes import run_edits
from db.writes import runs as run_writes
from tests.support.data import stub_dataset


@pytest.fixture
def runs_with_gaps(db):  # noqa: ANN001, ANN201
    """Nine runs: six with val_accuracy (two share a value), three without it."""
    dataset = stub_dataset(db)
    accuracy = [0.7, None, 0.9, 0.8, None, 0.9, 0.6, None, 0.95]
    ids = []
    for i, acc in enumerate(accuracy):
        run_id = run_writes.create_run(db, name=f"r{i}", dataset_id=dataset, config={"lr": i})
        points = [("val_loss", 1, 1.0 - i / 10, 0.0)]
        if acc is not None:
            points.append(("val_accuracy", 1, acc, 0.0))
        metric_writes.append_metrics(db, run_id, points)
        ids.append(run_id)
    return dict(zip(ids, accuracy, strict=True))


def _expected(accuracy: dict[int, float | None], descending: bool) -> list[int]:
    sign = -1 if descending else 1
    have = sorted(
        (i for i, a in accuracy.items() if a is not None),
        key=lambda i: (sign * accuracy[i], sign * i),
    )
    lacking = sorted((i for i, a in accuracy.items() if a is None), key=lambda i: sign * i)
    return have + lacking


@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("size", [1, 2, 4, 5, 6, 7, 20])
def test_metric_sort_pages_match_the_definition(db, runs_with_gaps, descending, size) -> None:
    expected = _expected(runs_with_gaps, descending)
    paged = []
    for offset in range(0, len(expected) + size, size):
        page = run_query.query_runs(
            db, sort="metric:val_accuracy", descending=descending, limit=size, offset=offset
        )
        assert len(page) == len(expected[offset : offset + size])
        paged += [r.id for r in page]
    assert paged == expected
    every = run_query.query_runs(db, sort="metric:val_accuracy", descending=descending, limit=None)
    assert [r.id for r in every] == expected
    assert all(r.summary["val_loss"]["last"] is not None for r in every)  # rows come whole


def test_thresholds_on_the_sorted_key_and_on_another(db, runs_with_gaps) -> None:
    on_key = RunFilter(thresholds=(MetricThreshold("val_accuracy", ">=", 0.8),))
    page = run_query.query_runs(db, on_key, sort="metric:val_accuracy", limit=10)
    assert [r.last("val_accuracy") for r in page] == [0.95, 0.9, 0.9, 0.8]
    assert run_query.count_runs(db, on_key) == 4
    # A threshold on another key keeps the runs without the sorted metric, last.
    other = RunFilter(thresholds=(MetricThreshold("val_loss", "<", 0.5),))
    page = run_query.query_runs(db, other, sort="metric:val_accuracy", limit=10)
    assert [r.last("val_accuracy") for r in page] == [0.95, 0.6, None]
    assert run_query.count_runs(db, other) == 3
    run_edits.set_archived(db, [page[0].id])
    assert [r.id for r in run_query.query_runs(db, other, sort="metric:val_accuracy")] == [
        r.id for r in page[1:]
    ]


def test_column_sorts_and_an_export_larger_than_one_id_chunk(db, runs_with_gaps) -> None:
    ids = sorted(runs_with_gaps)
    assert [r.id for r in run_query.query_runs(db, sort="id", descending=False)] == ids
    by_name = run_query.query_runs(db, sort="name", limit=3, offset=3, descending=False)
    assert [r.name for r in by_name] == ["r3", "r4", "r5"]
    by_param = run_query.query_runs(db, sort="param:lr", descending=True, limit=2)
    assert [r.config["lr"] for r in by_param] == [8, 7]
    chunk = run_query._ID_CHUNK
    try:
        run_query._ID_CHUNK = 2  # the chunked read of rows, summaries and tags
        assert [r.id for r in run_query.query_runs(db, sort="id", limit=None)] == ids[::-1]
    finally:
        run_query._ID_CHUNK = chunk


def test_metric_series_arrays(db, runs_with_gaps) -> None:
    run_id = next(iter(runs_with_gaps))
    metric_writes.append_metrics(
        db,
        run_id,
        [("loss", s, 1.0 / s, 100.0 + s) for s in (3, 1, 2)] + [("loss", 4, float("nan"), 0.0)],
    )
    series = metric_store.metric_series(db, run_id, "loss")
    assert series.steps.dtype == np.int64 and series.steps.tolist() == [1, 2, 3, 4]
    assert series.values[:3].tolist() == [1.0, 0.5, 1.0 / 3] and np.isnan(series.values[3])
    assert series.wall_times.tolist() == [101.0, 102.0, 103.0, 0.0]
    frame = metric_store.metric_history(db, [run_id], ["loss"])
    assert frame["step"].tolist() == series.steps.tolist()
    empty = metric_store.metric_series(db, run_id, "nope")
    assert len(empty) == 0 and empty.values.dtype == np.float64


def _plans(db, call) -> list[str]:  # noqa: ANN001
    """EXPLAIN QUERY PLAN of every SELECT that `call` sends to SQLite."""
    sent: list[tuple[str, object]] = []

    def remember(conn, cursor, statement, parameters, context, many):  # noqa: ANN001, ARG001
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append((statement, parameters))

    event.listen(db, "before_cursor_execute", remember)
    try:
        call()
    finally:
        event.remove(db, "before_cursor_execute", remember)
    with db.connect() as conn:
        return [
            " | ".join(r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + s, p).all())
            for s, p in sent
        ]


def test_list_count_and_series_read_through_indexes(db, runs_with_gaps) -> None:
    flt = RunFilter(
        project_id=1,
        statuses=("completed",),
        thresholds=(MetricThreshold("val_accuracy", ">=", 0.9),),
    )
    page = _plans(db, lambda: run_query.query_runs(db, flt, sort="metric:val_accuracy"))
    # The ids come off the summary index in order: no sort of the filtered runs at all.
    assert "COVERING INDEX ix_run_summaries_key_last_value" in page[0]
    assert "TEMP B-TREE" not in page[0]
    (count,) = _plans(db, lambda: run_query.count_runs(db, flt))
    assert "COVERING INDEX ix_runs_project_id_archived_status_created_at" in count
    newest = _plans(db, lambda: run_query.query_runs(db, RunFilter(project_id=1)))
    assert "TEMP B-TREE" not in newest[0]
    (series,) = _plans(db, lambda: metric_store.metric_series(db, 1, "val_loss"))
    assert "SEARCH metrics USING" in series and "TEMP B-TREE" not in series
