"""Playground page (AppTest, real trained runs) and `seedlab predict` (a real subprocess)."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from db import runs as run_store
from engine.cli.main import app as cli_app
from engine.core.formatting import format_metric, format_probability
from engine.core.run_files import checkpoint_path, read_report, report_path
from engine.ml.predictor import Predictor
from engine.report.playground_charts import probability_bars
from engine.services.launch import submit_run
from tests.support.commands import cli_process
from tests.support.data import completed_run
from tests.support.pages import open_page, plotly_figures, texts

PAGE = "views/playground.py"
IRIS_FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
IRIS_CLASSES = {"setosa", "versicolor", "virginica"}


def _uploader(at, key: str):  # noqa: ANN001, ANN202
    found = [u for u in at.file_uploader if u.key == key]
    assert found, f"no uploader {key!r}: {[u.key for u in at.file_uploader]}"
    return found[0]


def _metrics(at) -> dict[str, str]:  # noqa: ANN001
    return {m.label: m.value for m in at.metric}


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_table_classifier_widgets_prediction_and_explanation(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    at = open_page(PAGE, run=str(run_id))
    sliders = {s.label: s for s in at.slider}
    assert list(sliders) == IRIS_FEATURES
    petal = sliders["petal length (cm)"]
    spec = next(s for s in predictor.preprocessor.numeric if s.name == "petal length (cm)")
    assert (petal.min, petal.max, petal.value) == pytest.approx(
        (spec.minimum, spec.maximum, spec.median)
    )
    assert _metrics(at)["Prediction"] in IRIS_CLASSES
    probabilities, contributions = plotly_figures(at)
    bars = probabilities["data"][0]
    assert set(bars["y"]) == IRIS_CLASSES and sum(bars["x"]) == pytest.approx(1.0)
    # At the typical row nothing has moved the prediction yet; the page says so.
    assert not any(contributions["data"][0]["x"])
    assert "typical row itself" in texts(at.info)

    petal.set_value(spec.maximum).run()
    assert not at.exception
    expected = predictor.predict(
        pd.DataFrame([{**{s.label: s.value for s in at.slider}, "petal length (cm)": spec.maximum}])
    )
    assert _metrics(at)["Prediction"] == expected["prediction"][0]
    bars = plotly_figures(at)[1]["data"][0]
    moved = dict(zip(bars["y"], bars["x"], strict=True))
    assert moved[f"petal length (cm) = {spec.maximum}"] != 0
    # Test metrics from the run's report.json, for context.
    accuracy = read_report(settings, run_id)["metrics"]["test_accuracy"]
    assert _metrics(at)["test accuracy"] == f"{accuracy * 100:.1f} %"

    # The Run page of a completed run links here.
    run_page = open_page("views/run_detail.py", run=str(run_id))
    links = [link.proto for link in run_page.get("page_link")]
    assert any(p.label == "Try it" and p.query_string == f"run={run_id}" for p in links), links


def test_regression_shows_a_value_and_its_contributions(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "diabetes", epochs=5)
    at = open_page(PAGE, run=str(run_id))
    assert "age" in [s.label for s in at.slider]
    value = float(at.metric[0].value)
    assert 0 < value < 500 and "progression" in at.metric[0].label
    (contributions,) = plotly_figures(at)  # no probability chart for a value
    assert contributions["layout"]["xaxis"]["title"]["text"] == "change of prediction"


def test_text_model_saliency_is_escaped_markup(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "support_tickets", epochs=2, max_length=16)
    at = open_page(PAGE, run=str(run_id))
    box = at.text_area[0]
    assert box.value.strip(), "the text box starts with an example from the dataset"
    box.set_value("<b>refund</b> my order!").run()
    assert not at.exception
    assert _metrics(at)["Prediction"]
    markup = at.get("html")[0].proto.body
    assert "<b>" not in markup and "</b>" not in markup and "&lt;" in markup
    assert markup.count("<span") == len(
        ["<", "b", ">", "refund", "<", "/", "b", ">", "my", "order", "!"]
    )
    at.text_area[0].set_value("   ").run()
    assert not at.exception and "The text is empty" in texts(at.warning)
    assert "Prediction" not in _metrics(at)


def test_image_upload_prediction_overlay_and_bad_files(settings, db):
    from engine.data.demo import register_demo_datasets

    register_demo_datasets(settings, db, images=True)
    run_id = completed_run(settings, db, "digits", epochs=1, image_size=8)
    classes = set(Predictor.load(checkpoint_path(settings, run_id)).classes)
    at = open_page(PAGE, run=str(run_id))
    assert "Upload an image" in texts(at.info)
    digit = Image.new("RGB", (32, 32), "white")
    digit.paste((0, 0, 0), (14, 4, 18, 28))
    _uploader(at, "pg_image:file").set_value(("one.png", _png(digit), "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert _metrics(at)["Prediction"] in classes
    captions = [c for image in at.image for c in image.captions]
    assert captions[0] == "Input" and captions[1].startswith("Where the model looked for p(")

    _uploader(at, "pg_image:file").set_value(("cat.png", b"not an image", "image/png")).run()
    assert not at.exception
    assert "is not an image Seedlab can read" in texts(at.error)


def test_ab_mode_two_models_on_the_same_input_with_their_metrics(settings, db, demo_datasets):
    first = completed_run(settings, db, "iris")
    second = completed_run(settings, db, "iris", hidden_sizes=[4], epochs=1)
    at = open_page(PAGE, run=str(first), b=str(second))
    assert at.toggle[0].value is True
    assert [s.value for s in at.subheader] == ["Model A", "Model B"]
    assert [m.value for m in at.metric if m.label == "Prediction"] == [
        Predictor.load(checkpoint_path(settings, r)).predict(
            pd.DataFrame([{s.label: s.value for s in at.slider}])
        )["prediction"][0]
        for r in (first, second)
    ]
    shown = [m.value for m in at.metric if m.label == "test accuracy"]
    assert shown == [
        format_metric("test_accuracy", read_report(settings, r)["metrics"]["test_accuracy"])
        for r in (first, second)
    ]
    assert len(at.slider) == len(IRIS_FEATURES)  # one set of inputs for both

    # The batch tab predicts with both, side by side.
    csv = pd.DataFrame([dict.fromkeys(IRIS_FEATURES, 5.0)]).to_csv(index=False).encode()
    _uploader(at, "pg_batch").set_value(("rows.csv", csv, "text/csv")).run()
    preview = at.dataframe[-1].value
    assert {"A: prediction", "B: prediction"} <= set(preview.columns)


def test_ab_refuses_models_of_different_kinds(settings, db, demo_datasets):
    table = completed_run(settings, db, "iris")
    text = completed_run(settings, db, "support_tickets", epochs=1, max_length=8)
    at = open_page(PAGE, run=str(table), b=str(text))
    assert "A/B runs both models on the same input" in texts(at.error)


def test_batch_csv_round_trip_and_missing_columns(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    at = open_page(PAGE, run=str(run_id))
    rows = pd.DataFrame({**{f: [5.1, 6.7] for f in IRIS_FEATURES}, "customer": ["a", "b"]})
    _uploader(at, "pg_batch").set_value(("rows.csv", rows.to_csv(index=False).encode(), "text/csv"))
    at.run()
    assert not at.exception
    assert "Predicted 2 row(s)." in texts(at.success)
    preview = at.dataframe[-1].value
    assert list(preview.columns[:5]) == [*IRIS_FEATURES, "customer"]
    assert set(preview["prediction"]) <= IRIS_CLASSES
    # Probabilities read as percentages (the download keeps the numbers).
    expected = Predictor.load(checkpoint_path(settings, run_id)).predict(rows[IRIS_FEATURES])
    shown = preview.filter(like="p(")
    assert shown.to_numpy().tolist() == [
        [format_probability(p) for p in row] for row in expected.filter(like="p(").to_numpy()
    ]
    assert at.get("download_button"), "a download of the predictions"
    # The columns the CSV needs, as written: code spans show escapes as backslashes.
    needs = next(c for c in texts(at.caption).splitlines() if c.startswith("The CSV needs"))
    assert "`sepal length (cm)`, `sepal width (cm)`" in needs and "\\" not in needs

    bad = b"sepal length (cm),colour\n5.0,red\n"
    _uploader(at, "pg_batch").set_value(("bad.csv", bad, "text/csv")).run()
    assert not at.exception
    error = texts(at.error).replace("\\", "")  # as shown: without markdown escapes
    assert "no column(s)" in error and "petal width" in error


def test_page_survives_deleted_files_and_unusable_runs(settings, db, demo_datasets):
    at = open_page(PAGE)
    assert "No completed runs" in texts(at.info)

    run_id = completed_run(settings, db, "iris")
    checkpoint_path(settings, run_id).unlink()
    report_path(settings, run_id).unlink()
    at = open_page(PAGE, run=str(run_id))
    assert not at.exception
    assert "files were deleted" in texts(at.error)

    queued = submit_run(db, "iris", {"epochs": 1})
    at = open_page(PAGE, run=str(queued))
    assert f"Run #{queued} is queued" in texts(at.warning)
    assert run_store.get_run(db, queued).status == "queued"


@pytest.mark.slow  # `seedlab predict` as its own program
def test_cli_predict_csv_round_trip_text_and_errors(settings, db, demo_datasets, tmp_path):
    table_run = completed_run(settings, db, "iris")
    rows = pd.DataFrame({**{f: [5.1, 6.7, 5.9] for f in IRIS_FEATURES}, "id": [1, 2, 3]})
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    rows.to_csv(source, index=False)
    done = cli_process("predict", str(table_run), "--input", str(source), "--output", str(target))
    assert done.returncode == 0, done.stderr
    out = pd.read_csv(target)
    expected = Predictor.load(checkpoint_path(settings, table_run)).predict(rows)
    assert list(out.columns[:5]) == [*IRIS_FEATURES, "id"]
    assert out["prediction"].tolist() == expected["prediction"].tolist()
    assert np.allclose(out.filter(like="p(").to_numpy(), expected.filter(like="p(").to_numpy())

    # The other paths in-process (same command, no second interpreter start-up).
    runner = CliRunner()
    text_run = completed_run(settings, db, "support_tickets", epochs=1, max_length=8)
    done = runner.invoke(
        cli_app,
        ["predict", str(text_run), "--text", "where is my parcel", "--text", "hi", "--explain"],
    )
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 2 and lines[0]["prediction"]
    assert [t["token"] for t in lines[0]["tokens"]] == ["where", "is", "my", "parcel"]

    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    done = runner.invoke(
        cli_app, ["predict", str(table_run), "--input", str(bad), "--output", str(tmp_path / "x")]
    )
    assert done.exit_code == 1
    assert "no column(s)" in done.stderr and "petal width" in done.stderr
    done = runner.invoke(cli_app, ["predict", str(text_run), "--text", " "])
    assert done.exit_code == 1 and "is empty" in done.stderr
    assert not (tmp_path / "x").exists()


def test_registered_model_production_version_is_the_default(settings, db, demo_datasets):
    from engine.services.model_registry import register_model

    first = completed_run(settings, db, "iris")
    second = completed_run(settings, db, "iris", seed=1)
    newest = completed_run(settings, db, "iris", seed=2)  # newest run, not registered
    register_model(settings, db, first, "iris-model", stage="production")
    register_model(settings, db, second, "iris-model", stage="staging")
    at = open_page(PAGE)
    assert not at.exception
    # With a registered model the Playground loads its production version, not the newest run.
    assert at.selectbox(key="pg_model_name").value == "iris-model"
    assert at.selectbox(key="pg_model_version").value == 1
    assert at.query_params["model"] == ["iris-model"] or at.query_params["model"] == "iris-model"
    assert _metrics(at)["Prediction"] in IRIS_CLASSES
    # A deep link to a run still opens that run.
    at = open_page(PAGE, run=str(newest))
    assert at.selectbox(key="pg_model").value == newest


# ---------------------------------------------------------------- newcomer-walk fixes


@pytest.mark.parametrize(
    ("p", "shown"),
    [
        (0.997, "99.7 %"),
        (0.5, "50.0 %"),
        (0.034, "3.4 %"),
        (0.001, "0.1 %"),
        (3.34e-15, "< 0.1 %"),
        (0.0, "< 0.1 %"),
        (0.9995, "> 99.9 %"),
        (1.0, "> 99.9 %"),
        (float("nan"), "—"),
        (None, "—"),
    ],
)
def test_probabilities_read_as_percentages(p, shown):
    assert format_probability(p) == shown


def test_probability_bars_and_captions_show_percentages(settings, db, demo_datasets):
    bars = probability_bars(["a", "b", "c"], [0.9999, 3.34e-15, 0.034])["data"][0]
    assert list(bars["text"]) == ["> 99.9 %", "3.4 %", "< 0.1 %"]
    assert "customdata" in bars["hovertemplate"]  # the hover says the same, not 0.000

    run_id = completed_run(settings, db, "iris")
    at = open_page(PAGE, run=str(run_id))
    captions = texts(at.caption)
    assert re.search(r"^(\d+\.\d|< 0\.1|> 99\.9) % sure$", captions, re.MULTILINE), captions
    reading = next(c for c in captions.splitlines() if " is " in c and "typical row" in c)
    assert re.match(r"p\\\(\w+\\\) is (\d+\.\d|< 0\.1|> 99\.9) %; ", reading), reading
    assert "e-" not in captions


def test_ab_preselects_only_a_model_for_the_same_input(settings, db, demo_datasets):
    older_table = completed_run(settings, db, "iris")
    text = completed_run(settings, db, "support_tickets", epochs=1, max_length=8)
    newest_table = completed_run(settings, db, "iris", seed=1)
    # Model A is the newest run; B used to be the second newest (the text model) and failed.
    at = open_page(PAGE)
    at.toggle(key="pg_ab").set_value(True).run()
    assert not at.error, texts(at.error)
    assert at.selectbox(key="pg_model_a").value == newest_table
    assert at.selectbox(key="pg_model_b").value == older_table
    assert [s.value for s in at.subheader] == ["Model A", "Model B"]

    # A text model as A: no other run reads text, so none is picked, and the page says why.
    at.selectbox(key="pg_model_a").set_value(text).run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.selectbox(key="pg_model_b").value is None
    assert "No other completed run takes text input like Model A" in texts(at.info)
    assert "No completed runs in this project" not in texts(at.info)

    # Back to a table: B is picked again, among the tables only.
    at.selectbox(key="pg_model_a").set_value(older_table).run()
    assert not at.error, texts(at.error)
    assert at.selectbox(key="pg_model_b").value == newest_table
