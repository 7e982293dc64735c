"""Permutation feature importance: computed at the end of a table run, per original column,
ranking a real signal above noise; recomputed for an older run from the CLI."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.core.run_files import checkpoint_path, read_report, report_path
from engine.data.datasets import ingest_bytes
from engine.data.stored import load_frame
from engine.ml.importance import (
    ImportanceError,
    ShuffledRowsModel,
    column_groups,
    compute_importance,
    metric_for,
)
from engine.ml.predictor import Predictor
from engine.services.launch import find_dataset
from tests.support.data import completed_run
from tests.support.pages import open_page, plotly_figures


def signal_and_noise(settings, db) -> str:  # noqa: ANN001
    """A table whose class is decided by `signal` alone; `noise` and the categorical `colour`
    are random. Registered through the ordinary upload path."""
    rng = np.random.default_rng(0)
    n = 400
    signal = rng.normal(size=n)
    frame = pd.DataFrame(
        {
            "noise": rng.normal(size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
            "signal": signal,
            "label": np.where(signal > 0, "yes", "no"),
        }
    )
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    record = ingest_bytes(
        settings,
        db,
        buffer.getvalue().encode(),
        filename="signal.csv",
        name="signal_vs_noise",
        target="label",
    )
    return record.name


def test_signal_ranks_first_per_original_column_and_is_drawn(settings, db):
    dataset = signal_and_noise(settings, db)
    run_id = completed_run(settings, db, dataset, epochs=8, learning_rate=0.01)
    importance = read_report(settings, run_id)["importance"]

    names = [f["name"] for f in importance["features"]]
    # One entry per input column: the one-hot columns of `colour` count as one.
    assert sorted(names) == ["colour", "noise", "signal"]
    assert names[0] == "signal"
    by_name = {f["name"]: f["importance"] for f in importance["features"]}
    assert by_name["signal"] > 0.2  # shuffling it costs a large part of the accuracy
    assert abs(by_name["noise"]) < 0.1 and abs(by_name["colour"]) < 0.1
    assert importance["metric"] == "accuracy" and importance["higher_is_better"] is True
    assert importance["n_rows"] == read_report(settings, run_id)["n_test"]
    # Repeats stop at the cap or at the ~1 s budget's deadline, whichever comes first; the time
    # it took is reported (and not asserted: a wall clock on shared CI cores is no test).
    assert 1 <= importance["n_repeats"] <= 10 and importance["seconds"] > 0

    # Shuffling a column's encoded block (ShuffledRowsModel) is shuffling the raw column.
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    frame = load_frame(settings, find_dataset(db, dataset)).head(40).reset_index(drop=True)
    order = np.random.default_rng(3).permutation(len(frame))
    groups = {name: (start, stop) for name, start, stop in column_groups(predictor)}
    assert (
        list(groups) == ["noise", "signal", "colour"]
        and groups["colour"][1] - groups["colour"][0] == 3
    )
    encoded = predictor.encode(frame).numpy()
    rows = np.repeat(np.arange(len(frame))[:, None], len(groups), axis=1)
    rows[:, 2] = order
    shuffled = frame.assign(colour=frame["colour"].to_numpy()[order])
    model = ShuffledRowsModel(predictor, encoded, column_groups(predictor))
    assert (model.predict(rows) == predictor.outputs(predictor.encode(shuffled)).argmax(1)).all()
    start, stop = groups["colour"]
    expected = encoded.copy()
    expected[:, start:stop] = encoded[order, start:stop]
    assert np.array_equal(expected, predictor.encode(shuffled).numpy())
    assert not np.array_equal(expected, encoded)

    # The Run page's Evaluation tab draws it, most important column on top.
    at = open_page("views/run_detail.py", run=str(run_id), tab="Evaluation")
    bars = [f for f in plotly_figures(at) if f["data"] and f["data"][0].get("orientation") == "h"]
    assert bars, "no importance chart on the Evaluation tab"
    assert bars[0]["data"][0]["y"] == names
    assert any("Permutation importance on" in str(c.value) for c in at.caption)


def test_older_run_gets_importance_from_the_cli(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "diabetes", epochs=5)
    report = read_report(settings, run_id)
    assert report["importance"]["metric"] == "rmse"
    # An older run: its report has no importance.
    del report["importance"]
    report_path(settings, run_id).write_text(json.dumps(report))

    result = CliRunner().invoke(app, ["runs", "importance", str(run_id), "--repeats", "3"])
    assert result.exit_code == 0, result.output
    assert "rmse rise when a column is shuffled" in result.output
    stored = read_report(settings, run_id)["importance"]
    assert stored["n_repeats"] <= 3 and stored["higher_is_better"] is False
    assert len(stored["features"]) == 10  # diabetes has ten input columns
    assert read_report(settings, run_id)["metrics"] == report["metrics"]  # the rest is kept

    # Far over its time budget, importance is refused with the way out, not run for long.
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    rows = np.zeros((50, predictor.spec.shape[0]), dtype=np.float32)
    with pytest.raises(ImportanceError, match="use fewer rows"):
        compute_importance(predictor, rows, np.zeros(50), metric="rmse", time_budget_s=1e-9)

    json_out = CliRunner().invoke(app, ["runs", "importance", str(run_id), "--json"])
    assert json.loads(json_out.output)["features"][0]["name"] in {
        f["name"] for f in stored["features"]
    }


def test_cli_refuses_runs_without_a_table_model(settings, db, demo_datasets):
    result = CliRunner().invoke(app, ["runs", "importance", "999"])
    assert result.exit_code != 0 and "No run 999" in result.output


@pytest.mark.parametrize(
    ("task", "monitor", "metric"),
    [
        ("classification", "val_loss", "accuracy"),
        ("classification", "val_f1_macro", "f1_macro"),
        ("regression", "val_loss", "rmse"),
        ("regression", "val_mae", "mae"),
    ],
)
def test_scored_with_the_runs_metric(task, monitor, metric):
    assert metric_for(task, monitor) == metric
