"""Compare's groups (engine/report/compare_groups.py): runs that share a param's value drawn as
a mean with a ±1 standard deviation band and summarised as mean ± std with their count,
checked against numpy on runs whose values are known; and the Compare page that offers it."""

from __future__ import annotations

import numpy as np
import pytest

from db import metrics as metric_store
from db import run_query
from db.writes import metrics as metric_writes
from engine.report import compare_groups
from engine.services.launch import submit_run
from tests.support.pages import open_page, open_tab, plotly_figures, texts, trace_values

STEPS = np.arange(1, 11)


def _runs(db) -> dict[int, tuple[float, float, np.ndarray]]:  # noqa: ANN001
    """Six iris runs: learning rate 0.01 or 0.1 × seeds 0, 1, 2, each with a val_loss curve
    and a test accuracy of its own. Returns id → (learning rate, accuracy, curve)."""
    made = {}
    for lr in (0.01, 0.1):
        for seed in range(3):
            curve = (1 + seed) * np.exp(-STEPS * lr * 10) + seed / 10
            accuracy = 0.8 + seed / 20 + (0.05 if lr == 0.1 else 0.0)
            run_id = submit_run(db, "iris", {"seed": seed, "learning_rate": lr, "epochs": 10})
            points = [
                ("val_loss", int(s), float(v), float(s)) for s, v in zip(STEPS, curve, strict=True)
            ]
            metric_writes.append_metrics(
                db, run_id, [*points, ("test_accuracy", 10, accuracy, 10.0)]
            )
            made[run_id] = (lr, accuracy, curve)
    return made


def test_group_figures_are_numpys_mean_and_sample_std(db, demo_datasets) -> None:
    made = _runs(db)
    runs = run_query.runs_by_ids(db, list(made))
    assert {"learning_rate", "seed"} <= set(compare_groups.group_options(runs))
    values = compare_groups.group_values(runs, "learning_rate")
    assert compare_groups.groups_of(values) == {
        "0.01": [i for i in made if made[i][0] == 0.01],
        "0.1": [i for i in made if made[i][0] == 0.1],
    }

    table = compare_groups.group_metrics(runs, ["test_accuracy", "val_loss"], values)
    for _, row in table.iterrows():
        members = [made[i] for i in made if str(made[i][0]) == row["group"]]
        accuracies = np.array([m[1] for m in members])
        last_losses = np.array([m[2][-1] for m in members])
        assert row["runs"] == 3
        assert row["test_accuracy mean"] == pytest.approx(accuracies.mean())
        assert row["test_accuracy std"] == pytest.approx(accuracies.std(ddof=1))
        assert row["val_loss mean"] == pytest.approx(last_losses.mean())
        assert row["val_loss std"] == pytest.approx(last_losses.std(ddof=1))
    shown = compare_groups.shown_group_metrics(table, ["test_accuracy"])
    assert list(shown.columns) == ["group", "runs", "test accuracy"]
    assert shown["test accuracy"][0] == f"{0.85:.4g} ± {0.05:.2g}"

    history = metric_store.metric_history(db, list(made), keys=["val_loss"])
    fig = compare_groups.group_curves(history, "val_loss", values, param="learning_rate")
    means = [t for t in fig.data if t.mode == "lines"]
    assert [t.name for t in means] == [
        "learning_rate = 0.01 (3 runs)",
        "learning_rate = 0.1 (3 runs)",
    ]
    for trace, lr in zip(means, (0.01, 0.1), strict=True):
        curves = np.array([made[i][2] for i in made if made[i][0] == lr])
        # The runs share their steps: on the grid the mean and band are numpy's, interpolated.
        grid = np.asarray(trace.x)
        expected = np.array([np.interp(grid, STEPS, c) for c in curves])
        assert np.allclose(trace.y, expected.mean(axis=0))
        assert np.allclose(np.asarray(trace.customdata)[:, 0], expected.std(axis=0, ddof=1))
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2 and all(t.showlegend is False for t in bands)


def test_a_shorter_run_counts_only_within_its_range_and_one_run_has_no_band() -> None:
    long = (np.arange(0.0, 11.0), np.full(11, 2.0))
    short = (np.arange(0.0, 6.0), np.full(6, 4.0))
    grid, mean, spread, counted = compare_groups.mean_band([long, short], points=11)
    assert np.allclose(grid, np.arange(0.0, 11.0))
    assert np.allclose(mean[:6], 3.0) and np.allclose(mean[6:], 2.0)  # not dragged to 4 later
    assert list(counted) == [2] * 6 + [1] * 5
    assert np.allclose(spread[:6], np.std([2.0, 4.0], ddof=1)) and np.allclose(spread[6:], 0)
    _, one_mean, one_spread, _ = compare_groups.mean_band([long], points=11)
    assert np.allclose(one_mean, 2.0) and np.allclose(one_spread, 0)


def test_compare_groups_runs_by_a_param_in_the_url(settings, db, demo_datasets) -> None:
    made = _runs(db)
    ids = ",".join(map(str, made))
    at = open_page("views/compare.py", runs=ids, group="learning_rate", metric="val_loss")
    assert at.selectbox(key="cmp_group").value == "learning_rate"
    names = [t["name"] for f in plotly_figures(at) for t in f["data"] if t.get("mode") == "lines"]
    assert names == ["learning_rate = 0.01 (3 runs)", "learning_rate = 0.1 (3 runs)"]
    assert "common grid" in texts(at.caption)
    figure = next(f for f in plotly_figures(at) if any(t.get("fill") for t in f["data"]))
    assert len(trace_values(figure["data"][1]["y"])) == compare_groups.GROUP_POINTS

    open_tab(at, "Metrics")
    table = next(d.value for d in at.dataframe if "group" in d.value.columns)
    assert list(table["group"]) == ["0.01", "0.1"] and list(table["runs"]) == [3, 3]
    assert "By learning_rate" in texts(at.markdown)

    # No groups: the runs one by one again, and the URL forgets the param.
    at.selectbox(key="cmp_group").set_value("(no groups)").run()
    assert "group" not in at.query_params
    at = open_page("views/compare.py", runs=ids, metric="val_loss")
    assert at.selectbox(key="cmp_group").value == "(no groups)"
    lines = [t for f in plotly_figures(at) for t in f["data"]]
    assert len(lines) == 6 and not any(t.get("fill") for t in lines)
    assert all(t["name"].startswith("#") for t in lines)


def test_more_panels_draw_other_metrics_in_the_same_colours(settings, db, demo_datasets) -> None:
    """Compare as a dashboard: more metrics as panels of their own, listed in the URL, each run
    in the same colour in every panel; grouped, every panel shows the groups."""
    made = _runs(db)
    ids = ",".join(map(str, made))
    at = open_page("views/compare.py", runs=ids, metric="val_loss", panels="test_accuracy,nope")
    assert at.multiselect(key="cmp_panels").value == ["test_accuracy"]  # unknown ones dropped
    figures = plotly_figures(at)
    assert len(figures) == 2
    colours = [[t["line"]["color"] for t in f["data"]] for f in figures]
    assert colours[0] == colours[1] and len(set(colours[0])) == 6
    at.multiselect(key="cmp_panels").set_value([]).run()
    assert "panels" not in at.query_params and len(plotly_figures(at)) == 1

    at = open_page("views/compare.py", runs=ids, panels="test_accuracy", group="seed")
    names = [[t["name"] for t in f["data"] if t.get("mode") == "lines"] for f in plotly_figures(at)]
    assert names[0] == names[1] == [f"seed = {s} (2 runs)" for s in range(3)]


def test_runs_groups_the_matching_runs_by_a_setting(settings, db, demo_datasets) -> None:
    made = _runs(db)
    at = open_page("views/runs.py")
    (groups,) = [e for e in at.expander if e.label.startswith("Groups")]
    assert not groups.selectbox  # nothing read while it is closed
    at.session_state["rf_groups_open"] = True  # what clicking the expander open does
    at.run()
    (groups,) = [e for e in at.expander if e.label.startswith("Groups")]
    assert "learning_rate" in groups.selectbox(key="rf_group").options
    groups.selectbox(key="rf_group").set_value("learning_rate").run()
    table = next(d.value for d in at.dataframe if "group" in d.value.columns)
    assert sorted(table["group"]) == ["0.01", "0.1"]  # in the list's order (newest first)
    row = table.set_index("group").loc["0.1"]
    accuracies = np.array([m[1] for m in made.values() if m[0] == 0.1])
    assert row["runs"] == 3
    assert row["test accuracy"] == f"{accuracies.mean():.4g} ± {accuracies.std(ddof=1):.2g}"
