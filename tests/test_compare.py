"""Projects, tags, notes, the scalable run query, demo fill and the Compare chart builders, on a
real migrated SQLite home with a few hundred synthetic runs written by `fill_project`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard.components.run_table import TableState, export_csv
from db import metrics as metric_store
from db import projects as project_store
from db import run_query
from db import runs as run_store
from db.run_query import MetricThreshold, RunFilter
from db.writes import metrics as metric_writes
from db.writes import projects as project_writes
from db.writes import run_edits
from db.writes import runs as run_writes
from engine.core.errors import SeedlabError
from engine.report import compare_charts
from engine.services.demo_fill import CURVE_KEYS, fill_project
from engine.services.launch import submit_run
from engine.services.run_admin import delete_run, find_project

pytestmark = pytest.mark.backends("sqlite", "postgresql")


@pytest.fixture
def filled(settings, db):  # noqa: ANN001, ANN201
    result = fill_project(settings, db, project="Sweep", runs=300, steps=20, seed=1)
    return result


# ---------------------------------------------------------------- projects, tags, notes


def test_projects_tags_notes_round_trip(settings, db, demo_datasets) -> None:
    vision = project_writes.create_project(db, "Vision")
    with pytest.raises(project_store.DuplicateProjectName, match="already exists"):
        project_writes.create_project(db, " Vision ")
    run_id = submit_run(db, "iris", {}, name="a", project_id=vision.id, tags=["x", "x", " y "])
    run = run_store.get_run(db, run_id)
    assert run.project_id == vision.id and run.tags == ["x", "y"]
    assert run_edits.set_tags(db, run_id, ["b", "a"]) == ["a", "b"]
    run_edits.add_tags(db, [run_id], ["a", "c"])
    run_edits.remove_tags(db, [run_id], ["b"])
    run_edits.set_notes(db, [run_id], "lr too high?")
    run_edits.rename_run(db, run_id, "  renamed ")
    run = run_store.get_run(db, run_id)
    assert run.tags == ["a", "c"] and run.notes == "lr too high?" and run.name == "renamed"
    with pytest.raises(ValueError, match="must not be empty"):
        run_edits.rename_run(db, run_id, " ")
    with pytest.raises(run_edits.RunNotFound):
        run_edits.set_notes(db, [run_id, 999], "x")
    assert run_store.get_run(db, run_id).notes == "lr too high?"  # nothing half-applied
    counts = {p.name: p.n_runs for p in project_store.list_projects(db)}
    assert counts == {"Default": 0, "Vision": 1}
    assert find_project(db, "Vision").id == vision.id
    with pytest.raises(SeedlabError, match="seedlab projects create"):
        find_project(db, "Nope")


def test_archive_hides_and_delete_removes_rows_and_files(settings, db, demo_datasets) -> None:
    keep = submit_run(db, "iris", {}, name="keep")
    gone = submit_run(db, "iris", {}, name="gone")
    with pytest.raises(SeedlabError, match="cancel it first"):
        delete_run(settings, db, gone)
    run_writes.request_cancel(db, gone)
    metric_writes.append_metrics(db, gone, [("val_loss", 1, 0.5, 0.0)])
    folder = settings.run_dir(gone)
    folder.mkdir(parents=True)
    (folder / "run.log").write_text("x")
    assert delete_run(settings, db, gone)
    assert run_store.get_run(db, gone) is None and not folder.exists()
    assert metric_store.metric_history(db, [gone]).empty
    run_edits.set_archived(db, [keep])
    assert run_query.count_runs(db) == 0
    assert [r.id for r in run_query.query_runs(db, RunFilter(include_archived=True))] == [keep]


# ---------------------------------------------------------------- the run query


def test_fill_writes_runs_curves_and_summaries(db, filled) -> None:
    assert filled.runs == 300 and filled.points == 300 * 20 * len(CURVE_KEYS)
    flt = RunFilter(project_id=filled.project_id)
    assert run_query.count_runs(db, flt) == 300
    assert run_query.metric_keys(db, filled.project_id) == sorted(CURVE_KEYS)
    run = run_query.query_runs(db, flt, limit=1)[0]
    history = metric_store.metric_history(db, [run.id], ["val_loss"])
    assert len(history) == 20
    assert run.last("val_loss") == pytest.approx(history["value"].iloc[-1])
    assert run.summary["val_loss"]["min"] == pytest.approx(history["value"].min())


def test_filters_sort_and_count_agree_with_python(db, filled) -> None:
    every = run_query.query_runs(db, RunFilter(project_id=filled.project_id), limit=None)
    threshold = MetricThreshold("val_accuracy", ">=", 0.9)
    flt = RunFilter(
        project_id=filled.project_id,
        statuses=("completed",),
        tags=("keep", "baseline"),
        thresholds=(threshold,),
    )
    expected = [
        r
        for r in every
        if r.status == "completed"
        and {"keep", "baseline"} & set(r.tags)
        and r.last("val_accuracy") >= 0.9
    ]
    assert expected, "the synthetic data should leave some runs in"
    assert run_query.count_runs(db, flt) == len(expected)
    page = run_query.query_runs(db, flt, sort="metric:val_accuracy", descending=True, limit=10)
    best = sorted(expected, key=lambda r: (-r.last("val_accuracy"), -r.id))[:10]
    assert [r.id for r in page] == [r.id for r in best]
    second = run_query.query_runs(db, flt, sort="metric:val_accuracy", limit=10, offset=10)
    assert not {r.id for r in page} & {r.id for r in second}
    by_lr = run_query.query_runs(db, flt, sort="param:learning_rate", descending=False, limit=None)
    lrs = [r.config["learning_rate"] for r in by_lr]
    assert lrs == sorted(lrs)
    by_opt = run_query.query_runs(db, flt, sort="param:optimizer", limit=None)
    assert [r.config["optimizer"] for r in by_opt] == sorted(
        (r.config["optimizer"] for r in by_opt), reverse=True
    )
    name_part = every[0].name[:15]
    assert all(
        name_part in r.name
        for r in run_query.query_runs(db, RunFilter(name_contains=name_part), limit=None)
    )
    with pytest.raises(ValueError, match="sort must be one of"):
        run_query.query_runs(db, flt, sort="bogus")
    with pytest.raises(ValueError, match="status must be one of"):
        RunFilter(statuses=("done",))


def test_table_state_round_trips_through_the_url_and_exports_csv(db, filled) -> None:
    state = TableState(
        statuses=["completed"],
        tags=["keep"],
        metric="val_accuracy",
        op="ge",
        value=0.9,
        sort="metric:val_loss",
        descending=False,
        page=3,
        columns=["metric:val_loss", "param:learning_rate"],
        selected=[5, 2, 9],
    )
    params = state.to_params()
    assert params["runs"] == "5,2,9" and params["sort"] == "metric:val_loss"
    assert TableState.from_params(params) == state
    assert TableState.from_params({"status": "bogus,failed", "value": "x"}).statuses == ["failed"]
    csv = export_csv(db, state, filled.project_id)
    frame = pd.read_csv(pd.io.common.StringIO(csv))
    assert len(frame) == run_query.count_runs(db, state.run_filter(filled.project_id))
    assert (frame["status"] == "completed").all() and (frame["metric:val_accuracy"] >= 0.9).all()
    assert list(frame["metric:val_loss"]) == sorted(frame["metric:val_loss"])
    assert "param:learning_rate" in frame.columns and frame["tags"].str.contains("keep").all()


# ---------------------------------------------------------------- chart builders


def test_minmax_downsampling_keeps_first_last_min_max() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=50_000)
    y[12_345] = 99.0
    y[40_000] = -99.0
    x = np.arange(len(y), dtype=float)
    dx, dy = compare_charts.downsample_xy(x, y, 500)
    assert len(dx) <= 500
    assert dx[0] == 0 and dx[-1] == len(y) - 1
    assert dy.max() == 99.0 and dy.min() == -99.0
    assert np.all(np.diff(dx) > 0)  # still in x order
    short = np.array([3.0, np.nan, 1.0])
    sx, sy = compare_charts.downsample_xy(np.arange(3.0), short, 500)
    assert list(sx) == [0, 2] and list(sy) == [3.0, 1.0]  # NaN dropped, rest kept


def test_smoothing_and_best_value() -> None:
    assert list(compare_charts.ema_smooth(np.array([1.0, 1.0, 1.0]), 0.9)) == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="smoothing"):
        compare_charts.ema_smooth(np.array([1.0]), 1.0)
    table = pd.DataFrame(
        {"id": [1, 2], "name": ["a", "b"], "val_loss": [0.5, 0.3], "val_accuracy": [0.9, 0.8]}
    )
    table["lr"] = [0.1, 0.01]
    table["epoch_seconds"] = [3.0, 9.0]
    keys = ["val_loss", "val_accuracy", "lr", "epoch_seconds"]
    best = compare_charts.best_runs(table, keys).set_index("metric")
    assert best.loc["val_loss", "run"] == "#2 b" and best.loc["val_accuracy", "run"] == "#1 a"
    assert list(best.index) == ["val_loss", "val_accuracy"]  # no best lr, no best duration


def test_drawn_history_keeps_first_last_min_max_within_the_limit(db, filled) -> None:
    from engine.services.curves import clear_cache, drawn_history

    clear_cache()
    ids = [r.id for r in run_query.query_runs(db, RunFilter(project_id=filled.project_id), limit=3)]
    rng = np.random.default_rng(3)
    long = rng.normal(size=10_000)
    long[4_321], long[7_777] = 50.0, -50.0
    points = [("noisy", s, float(v), 1000.0 + s) for s, v in enumerate(long)]
    points[100] = ("noisy", 100, float("nan"), 1100.0)  # logged NaN: nothing to draw
    points[200] = ("noisy", 200, float("inf"), 1200.0)
    metric_writes.append_metrics(db, ids[0], points)
    metric_writes.append_metrics(db, ids[1], [("noisy", s, float(s), 0.0) for s in (5, 6, 9)])
    frame = drawn_history(db, ids, ["noisy", "val_loss"], max_points=500)
    assert list(frame.columns) == list(metric_store.HISTORY_COLUMNS)
    long_run = frame[(frame["run_id"] == ids[0]) & (frame["key"] == "noisy")]
    assert 400 <= len(long_run) <= 500
    assert long_run["step"].iloc[0] == 0 and long_run["step"].iloc[-1] == 9_999
    assert long_run["value"].max() == 50.0 and long_run["value"].min() == -50.0
    assert set(long_run.loc[long_run["value"].abs() == 50.0, "step"]) == {4_321, 7_777}
    assert long_run["step"].is_monotonic_increasing
    assert not ({100, 200} & set(long_run["step"])) and np.isfinite(long_run["value"]).all()
    kept = long_run.set_index("step")
    assert kept.loc[4_321, "wall_time"] == 1000.0 + 4_321  # the point's own wall time
    short = frame[(frame["run_id"] == ids[1]) & (frame["key"] == "noisy")]
    assert list(short["step"]) == [5, 6, 9]  # short series come back whole
    # val_loss of the filled runs (20 points each) comes back whole, for all three runs.
    full = metric_store.metric_history(db, ids, ["val_loss"])
    drawn = frame[frame["key"] == "val_loss"].reset_index(drop=True)
    assert drawn[["run_id", "step", "value"]].equals(full[["run_id", "step", "value"]])
    assert drawn_history(db, [], ["noisy"], max_points=500).empty
    # The drawing is kept, keyed by the run's summary: a new point is drawn at once.
    metric_writes.append_metrics(db, ids[1], [("noisy", 10, -1.0, 0.0)])
    again = drawn_history(db, ids, ["noisy"], max_points=500)
    assert list(again.loc[again["run_id"] == ids[1], "step"]) == [5, 6, 9, 10]
    assert (
        again[again["run_id"] == ids[0]]
        .reset_index(drop=True)
        .equals(long_run.reset_index(drop=True))
    )
    assert drawn_history(db, ids, ["no_such_key"], max_points=500).empty


def test_compare_figures_for_many_runs(db, filled) -> None:
    runs = run_query.query_runs(db, RunFilter(project_id=filled.project_id), limit=100)
    history = metric_store.metric_history(db, [r.id for r in runs], ["val_loss"])
    labels = {r.id: r.name for r in runs}
    fig = compare_charts.compare_curves(
        history, "val_loss", run_labels=labels, x_axis="wall_time", smoothing=0.5, log_y=True
    )
    assert len(fig.data) == 100 and fig.layout.yaxis.type == "log"
    assert fig.data[0].x[0] == 0  # wall time counts from the run's first point
    only = compare_charts.params_table(runs, only_differences=True)
    full = compare_charts.params_table(runs)
    assert "learning_rate" in only.columns and "task" not in only.columns
    assert "task" in full.columns
    metrics = compare_charts.metrics_table(runs, ["val_accuracy"])
    parcoords = compare_charts.parallel_coordinates(only, metrics, "val_accuracy")
    labels_on_axes = [d.label for d in parcoords.data[0].dimensions]
    assert "learning_rate" in labels_on_axes and labels_on_axes[-1] == "val accuracy"
    optimizer_axis = next(d for d in parcoords.data[0].dimensions if d.label == "optimizer")
    assert set(optimizer_axis.ticktext) <= {"adam", "adamw", "sgd"}
    scatter = compare_charts.param_scatter(full, metrics, "learning_rate", "val_accuracy")
    assert len(scatter.data[0].x) == 100


def _expected_picks(steps: np.ndarray, values: np.ndarray, max_points: int) -> list[int]:
    """What downsampled_series must return, worked out in numpy: first and last finite point,
    and per stretch of steps its lowest and highest finite point (the earlier one on ties)."""
    finite = np.isfinite(values)
    start, stop = int(steps.min()), int(steps.max())
    buckets = (max_points - 2) // 2
    width = -(-(stop - start + 1) // buckets)
    # A multiple of the stored digests' stretch width: coarser stretches are unions of theirs.
    fine = -(-(stop - start + 1) // ((metric_store.DIGEST_POINTS - 2) // 2))
    width = -(-width // fine) * fine
    fs, fv = steps[finite], values[finite]
    keep = {int(fs[0]), int(fs[-1])}
    for i in range(-(-(stop - start + 1) // width)):
        inside = (fs >= start + i * width) & (fs < start + (i + 1) * width)
        if inside.any():
            s, v = fs[inside], fv[inside]
            keep |= {int(s[np.argmin(v)]), int(s[np.argmax(v)])}  # argmin/argmax: first on ties
    return sorted(keep)


def test_downsampled_series_is_chosen_in_sql_and_keeps_ends_extremes_and_short_series(
    db, filled
) -> None:
    found = run_query.query_runs(db, RunFilter(project_id=filled.project_id), limit=4)
    ids = sorted(r.id for r in found)
    rng = np.random.default_rng(7)
    # A long noisy series with spikes, NaN and infinity at its ends (nothing to draw there).
    values = rng.normal(size=5_000)
    values[[1_234, 3_210]] = [40.0, -40.0]
    values[[0, 1, 4_999]] = [np.nan, np.inf, np.nan]
    steps = np.arange(5_000) * 3 + 10  # steps need not start at 0 nor be consecutive
    metric_writes.append_metrics(
        db, ids[0], [("m", int(s), float(v), 100.0 + s) for s, v in zip(steps, values, strict=True)]
    )
    # A constant series (a fixed learning rate): ties must not bring back every point.
    metric_writes.append_metrics(db, ids[1], [("m", s, 0.1, 0.0) for s in range(3_000)])
    # A sparse one (a point every 100 steps up to step 10,000): short, so it comes back whole.
    sparse = [("m", s, float(s % 7), 0.0) for s in range(0, 10_001, 100)]
    sparse.append(("m", 10_001, float("nan"), 0.0))
    metric_writes.append_metrics(db, ids[2], sparse)
    got = {s.run_id: s for s in metric_store.downsampled_series(db, ids, "m", 300)}
    assert list(got) == ids[:3]  # ids[3] has no "m": no series for it

    long = got[ids[0]]
    assert 0 < len(long) <= 300
    assert list(long.steps) == _expected_picks(steps, values, 300)
    assert long.steps[0] == steps[2] and long.steps[-1] == steps[4_998]  # first/last finite
    assert long.values.max() == 40.0 and long.values.min() == -40.0
    at = dict(zip(long.steps.tolist(), long.values.tolist(), strict=True))
    assert at[int(steps[1_234])] == 40.0 and at[int(steps[3_210])] == -40.0
    assert np.isfinite(long.values).all()
    assert np.array_equal(long.wall_times, 100.0 + long.steps)  # each point's own wall time
    flat = got[ids[1]]
    assert len(flat) <= 300 and flat.steps[0] == 0 and flat.steps[-1] == 2_999
    assert set(flat.values) == {0.1}
    assert list(got[ids[2]].steps) == list(range(0, 10_001, 100))  # whole, NaN left out
    # Series no longer than the limit come back equal to every stored point.
    full = metric_store.metric_history(db, ids, ["val_loss"])
    for series in metric_store.downsampled_series(db, ids, "val_loss", 300):
        mine = full[full["run_id"] == series.run_id]
        assert list(series.steps) == list(mine["step"])
        assert list(series.values) == list(mine["value"])
    # A running run: points written after a read are in the next one.
    metric_writes.append_metrics(db, ids[0], [("m", 20_000, -99.0, 0.0)])
    again = metric_store.downsampled_series(db, [ids[0]], "m", 300)[0]
    assert again.steps[-1] == 20_000 and again.values.min() == -99.0
    assert metric_store.downsampled_series(db, [], "m", 300) == []
    with pytest.raises(ValueError, match="at least 4"):
        metric_store.downsampled_series(db, ids, "m", 3)


def test_compare_curves_send_few_compact_points_for_many_runs(db, filled) -> None:
    import plotly.io as pio

    from engine.services.curves import drawn_history

    runs = run_query.query_runs(db, RunFilter(project_id=filled.project_id), limit=100)
    long = [("val_loss", s, float(np.sin(s / 50)), float(s)) for s in range(1_500)]
    for run in runs:
        metric_writes.append_metrics(db, run.id, long)
    # Sized to the chart: a few runs get up to one point per pixel column, 100 runs fewer.
    assert compare_charts.points_per_run(3) == compare_charts.PLOT_WIDTH_PX
    share = compare_charts.points_per_run(100)
    assert compare_charts.MIN_POINTS_PER_TRACE <= share <= 300
    history = drawn_history(db, [r.id for r in runs], ["val_loss"], share)
    fig = compare_charts.compare_curves(
        history, "val_loss", run_labels={r.id: r.name for r in runs}
    )
    assert len(fig.data) == 100 and all(len(t.x) <= share for t in fig.data)
    assert fig.data[0].y.dtype == np.float32  # single precision: half the bytes sent
    assert fig.data[0].y.max() == pytest.approx(1.0, abs=1e-3)  # the peaks survive
    sent = pio.to_json(fig, validate=False)
    assert len(sent) < 450_000  # 100 runs × 1,500 steps, well under 1 MB to the browser
    # A value past single precision keeps double precision rather than turn into infinity.
    huge = pd.DataFrame({"run_id": [1, 1], "key": ["x", "x"], "step": [0, 1], "value": [1.0, 1e40]})
    assert compare_charts.compare_curves(huge, "x", run_labels={1: "a"}).data[0].y[1] == 1e40
