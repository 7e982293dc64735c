"""Runs and Compare pages through AppTest, on a few hundred synthetic runs (demo fill)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from db import run_query
from db import runs as run_store
from db.run_query import RunFilter
from db.writes import run_edits
from db.writes import runs as run_writes
from engine.report.compare_charts import points_per_run
from engine.services.demo_fill import fill_project
from tests.support.pages import button, open_page, plotly_figures, texts, trace_values


@pytest.fixture
def sweep(settings, db):  # noqa: ANN001, ANN201
    return fill_project(settings, db, project="Sweep", runs=250, steps=15, seed=2)


def test_runs_page_filters_sorts_pages_and_puts_the_view_in_the_url(db, sweep) -> None:
    at = open_page(
        "views/runs.py",
        project="Sweep",
        status="completed",
        tag="keep",
        metric="val_accuracy",
        op="ge",
        value="0.9",
        sort="metric:val_accuracy",
        size="25",
    )
    flt = RunFilter(
        project_id=sweep.project_id,
        statuses=("completed",),
        tags=("keep",),
        thresholds=(run_query.MetricThreshold("val_accuracy", ">=", 0.9),),
    )
    expected = run_query.query_runs(db, flt, sort="metric:val_accuracy", limit=25)
    table = at.dataframe[0].value
    assert list(table["id"]) == [r.id for r in expected]
    total = run_query.count_runs(db, flt)
    assert f"of {total:,} matching" in texts(at.caption)
    assert f"Page 1 of {-(-total // 25)}" in texts(at.caption)
    # Change the sort in the page: the URL follows, the order follows.
    at.selectbox(key="rf_sort").set_value("param:learning_rate").run()
    at.toggle(key="rf_desc").set_value(False).run()
    assert at.query_params["sort"] == "param:learning_rate" and at.query_params["asc"] == "1"
    lrs = [
        float(x)
        for x in at.dataframe[0]
        .value["id"]
        .map(lambda i: run_store.get_run(db, int(i)).config["learning_rate"])
    ]
    assert lrs == sorted(lrs)


def test_runs_page_only_shows_the_chosen_project_and_hides_archived(db, sweep, demo_datasets):
    from engine.services.launch import submit_run

    submit_run(db, "iris", {}, name="in default")
    at = open_page("views/runs.py")
    assert list(at.dataframe[0].value["name"]) == ["in default"]
    at = open_page("views/runs.py", project="Sweep", size="25")
    assert "in default" not in set(at.dataframe[0].value["name"])
    assert "Page 1 of 10 · runs 1–25 of 250 matching" in texts(at.caption)
    # Next page, then a name search resets to page 1.
    button(at, "Next").click().run()
    assert at.number_input(key="rf_page").value == 2 and at.query_params["page"] == "2"
    assert "runs 26–50 of 250" in texts(at.caption)
    at.text_input(key="rf_name").set_value("synthetic-001").run()
    assert at.number_input(key="rf_page").value == 1
    assert all("synthetic-001" in n for n in at.dataframe[0].value["name"])
    # Archive one: it leaves the list until "Archived too" is on.
    first = int(at.dataframe[0].value["id"].iloc[0])
    run_edits.set_archived(db, [first])
    at.run()
    assert first not in set(at.dataframe[0].value["id"])
    at.toggle(key="rf_archived").set_value(True).run()
    assert first in set(at.dataframe[0].value["id"])


def test_runs_page_selection_and_compare_button(db, sweep) -> None:
    ids = [r.id for r in run_query.query_runs(db, RunFilter(project_id=sweep.project_id), limit=3)]
    at = open_page("views/runs.py", project="Sweep", runs=",".join(map(str, ids)))
    assert at.multiselect(key="rf_selected").value == ids
    assert "Selected: 3 run(s)" in [s.value for s in at.subheader]
    # Tag the selection from the table page.
    at.text_input(key="rf_add_tags").set_value("shortlist")
    button(at, "Apply tags").click().run()
    assert all("shortlist" in run_store.get_run(db, i).tags for i in ids)
    button(at, "Compare 3 runs").click().run()
    assert at.title[0].value == "Compare"
    assert at.query_params["runs"] == ",".join(map(str, ids))


def test_runs_page_select_all_matching_and_csv_button(db, sweep) -> None:
    at = open_page("views/runs.py", project="Sweep", q="synthetic-0000")
    total = run_query.count_runs(
        db, RunFilter(project_id=sweep.project_id, name_contains="synthetic-0000")
    )
    button(at, f"Select all {total} matching").click().run()
    assert len(at.multiselect(key="rf_selected").value) == total
    assert at.query_params["runs"].count(",") == total - 1
    assert any(b.label.startswith(f"Export {total} matching") for b in at.get("download_button"))


def test_compare_page_curves_params_metrics_for_many_runs(db, sweep) -> None:
    runs = run_query.query_runs(db, RunFilter(project_id=sweep.project_id), limit=100)
    ids = ",".join(str(r.id) for r in runs)
    at = open_page("views/compare.py", runs=ids + ",99999", metric="val_accuracy", log="1")
    assert "No run #99999" in texts(at.warning)
    figures = plotly_figures(at)
    assert len(figures) == 1  # only the open tab (Curves) is drawn
    curves = figures[0]
    assert len(curves["data"]) == 100 and curves["layout"]["yaxis"]["type"] == "log"
    at.query_params["tab"] = "Parallel coordinates"
    at.run()
    assert [f["data"][0]["type"] for f in plotly_figures(at)] == ["parcoords"]
    at.query_params["tab"] = "Params"
    at.run()
    params = at.dataframe[1].value  # after the run table
    assert "learning_rate" in params.columns and "task" not in params.columns  # only differences
    at.toggle(key="cmp_only_diff").set_value(False).run()
    assert "task" in at.dataframe[1].value.columns
    at.query_params["tab"] = "Metrics"
    at.run()
    best = at.dataframe[2].value.set_index("metric")
    top = max(runs, key=lambda r: (r.last("val_accuracy"), -r.id))
    assert best.loc["val_accuracy", "best"] == pytest.approx(top.last("val_accuracy"))
    at = open_page("views/compare.py", runs=ids)  # back on Curves (the default tab)
    at.radio(key="cmp_x").set_value("wall_time").run()
    assert at.query_params["x"] == "wall_time"


def test_compare_page_with_two_runs_and_without_any(db, sweep) -> None:
    at = open_page("views/compare.py")
    assert "Pick runs to compare" in texts(at.info)
    two = run_query.query_runs(db, RunFilter(project_id=sweep.project_id), limit=2)
    at = open_page("views/compare.py", runs=f"{two[0].id},{two[1].id}")
    assert len(plotly_figures(at)[0]["data"]) == 2
    at = open_page("views/compare.py", runs=f"{two[0].id},{two[1].id}", tab="Metrics")
    assert len(at.dataframe[1].value) == 2


def test_run_page_edits_tags_note_name_archive_and_deletes(settings, db, demo_datasets) -> None:
    from engine.services.launch import submit_run

    run_id = submit_run(db, "iris", {}, name="before")
    run_writes.request_cancel(db, run_id)
    at = open_page("views/run_detail.py", run=str(run_id))
    form_inputs = [t for t in at.text_input if t.label in ("Name", "Tags (comma separated)")]
    form_inputs[0].set_value("after")
    form_inputs[1].set_value("keep, best")
    at.text_area[0].set_value("a good one")
    button(at, "Save").click().run()
    run = run_store.get_run(db, run_id)
    assert (run.name, run.tags, run.notes) == ("after", ["best", "keep"], "a good one")
    button(at, "Archive").click().run()
    assert run_store.get_run(db, run_id).archived
    assert button(at, "Delete").disabled
    at.checkbox(key="run_delete_confirm").check().run()
    button(at, "Delete").click().run()
    assert run_store.get_run(db, run_id) is None
    assert at.title[0].value == "Runs"


def test_new_run_goes_into_the_sidebar_project(db, demo_datasets) -> None:
    from db.writes import projects as project_writes

    vision = project_writes.create_project(db, "Vision")
    at = open_page("views/new_run.py", project="Vision")
    button(at, "Start training").click().run()
    assert not at.exception
    (run,) = run_store.list_runs(db)
    assert run.project_id == vision.id


def _points(values: list | dict) -> np.ndarray:
    return np.asarray(trace_values(values))


def _highlighted_columns(frame) -> set[str]:  # noqa: ANN001 - AppTest's Dataframe element
    """The columns with a cell the page's Styler marks as best (bold), from the CSS it sends."""
    css = frame.proto.arrow_data.styler.styles
    columns = list(frame.value.columns)
    marked = set()
    for rule in css.split("}"):
        if "font-weight: bold" in rule:
            marked |= {columns[int(c)] for c in re.findall(r"_col(\d+)", rule)}
    return marked


def test_compare_marks_best_only_for_metrics_with_a_direction(db, sweep) -> None:
    from db.writes import metrics as metric_writes

    slow, fast = run_query.query_runs(db, RunFilter(project_id=sweep.project_id), limit=2)
    # The slower run and the higher learning rate are not "best": neither has a direction.
    metric_writes.append_metrics(db, slow.id, [("epoch_seconds", 1, 9.0, 0.0)])
    metric_writes.append_metrics(db, fast.id, [("epoch_seconds", 1, 1.0, 0.0)])
    metric_writes.append_metrics(db, slow.id, [("best_epoch", 1, 7.0, 0.0)])
    at = open_page("views/compare.py", runs=f"{slow.id},{fast.id}", tab="Metrics")
    metrics_frame, best_frame = at.dataframe[1], at.dataframe[2]
    marked = _highlighted_columns(metrics_frame)
    assert {"val_loss", "val_accuracy", "train_loss", "val_f1_macro"} <= marked
    assert not marked & {"lr", "epoch_seconds", "best_epoch", "id", "name"}
    best = best_frame.value.set_index("metric")
    assert set(best.index) == {"train_loss", "val_loss", "val_accuracy", "val_f1_macro"}
    low = min((slow, fast), key=lambda r: r.last("val_loss"))
    assert best.loc["val_loss", "run"] == f"#{low.id} {low.name}"
    assert best.loc["val_loss", "direction"] == "lower is better"
    assert best.loc["val_accuracy", "direction"] == "higher is better"
    assert "have no best" in texts(at.caption)


def test_compare_warns_when_runs_come_from_different_datasets(db, sweep) -> None:
    runs = run_query.query_runs(db, RunFilter(project_id=sweep.project_id), limit=None)
    by_dataset: dict[str, list] = {}
    for run in runs:
        by_dataset.setdefault(run.dataset_name, []).append(run)
    (a, b), (c, *_) = list(by_dataset.values())[0][:2], list(by_dataset.values())[1]
    at = open_page("views/compare.py", runs=f"{a.id},{b.id}")
    assert not any("different datasets" in w for w in texts(at.warning).splitlines())
    at = open_page("views/compare.py", runs=f"{a.id},{b.id},{c.id}")
    warning = texts(at.warning).replace("\\", "")  # as read: without Markdown's escapes
    assert "trained on 2 different datasets" in warning
    assert f"{a.dataset_name} (2 runs)" in warning and f"{c.dataset_name} (1 run)" in warning
    assert "compare runs of one dataset" in warning


def test_compare_lists_many_runs_in_a_compact_table_coloured_like_the_curves(db, sweep) -> None:
    runs = run_query.query_runs(db, RunFilter(project_id=sweep.project_id), limit=100)
    at = open_page("views/compare.py", runs=",".join(str(r.id) for r in runs))
    legend = at.dataframe[0].value
    assert list(legend["run"]) == [f"#{r.id} {r.name}" for r in runs]
    assert set(legend["dataset"]) == {r.dataset_name for r in runs}
    # No paragraph of a hundred names: no caption or text names more than one run.
    shown = texts(at.caption) + texts(at.markdown)
    assert sum(r.name in shown for r in runs) <= 1
    assert at.expander[0].label.startswith("100 runs compared")
    curves = plotly_figures(at)[0]
    assert curves["layout"]["showlegend"] is False  # the table is the key for 100 runs
    colours = dict(zip(legend["run"], legend["colour"], strict=True))
    for trace in curves["data"]:
        assert trace["type"] == "scatter"
        assert trace["line"]["color"] == colours[trace["name"]]
        x = _points(trace["x"])
        assert 2 <= len(x) <= points_per_run(100) and len(_points(trace["y"])) == len(x)
        assert x[0] == 1 and x[-1] == 15  # first and last step kept
