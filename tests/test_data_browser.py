"""The data browser (Datasets page) and fixing data from a run's worst mistakes (Run page):
paging and filters, a run's predictions, relabel and exclude through the pending-changes tray,
"Save as version N+1" and its diff counts, viewers without edit controls, "Retrain on version N".

Real SQLite home per test, real small training (tests/support/data.completed_run), AppTest."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from db import datasets as dataset_store
from db import runs as run_store
from engine.core.run_files import predictions_path, read_report
from engine.data.browse import WRONG, BrowseFilter, browse
from engine.services import accounts, dataset_versions
from engine.services.permissions import cli_actor
from tests.support.data import completed_run
from tests.support.pages import APP, TIMEOUT, button, go, open_page, texts

PASSWORD = "correct horse battery"


def _logged_in(db, name: str, role: str) -> AppTest:  # noqa: ANN001
    """A user of `role` and the dashboard in their logged-in session (as tests/test_auth.py:
    AppTest holds the session token where a browser holds the cookie)."""
    from dashboard import auth

    accounts.add_user(db, cli_actor(), name, PASSWORD, role)
    session = accounts.start_session(db, accounts.authenticate(db, name, PASSWORD))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[auth.SESSION_TOKEN] = session.token
    return at.run()


def _iris(db) -> int:  # noqa: ANN001
    return dataset_store.get_dataset_by_name(db, "iris").id


def _target(db) -> str:  # noqa: ANN001
    return dataset_store.get_dataset_by_name(db, "iris").target


def _browser_table(at) -> pd.DataFrame:  # noqa: ANN001
    return next(d.value for d in at.dataframe if "row_id" in d.value.columns)


def _multiselect(at, label: str):  # noqa: ANN001, ANN202
    return next(m for m in at.multiselect if m.label == label)


def _caption(at) -> str:  # noqa: ANN001
    return next(str(c.value) for c in at.caption if " match · page " in str(c.value))


def test_pages_and_filters_by_label_and_text(settings, db, demo_datasets) -> None:
    at = open_page("views/datasets.py", dataset=str(_iris(db)))
    assert "150 of 150 rows match · page 1 of 3" in _caption(at)
    assert _browser_table(at)["row_id"].tolist()[:3] == ["0", "1", "2"]

    _multiselect(at, "Rows to change").set_value(["0", "1"]).run()
    at.selectbox(key=f"db_size_{_iris(db)}").set_value(25).run()
    at.number_input(key=f"db_page_{_iris(db)}").set_value(2).run()
    assert not at.exception  # rows picked on another page are simply no longer picked
    assert "page 2 of 6" in _caption(at)
    assert _browser_table(at)["row_id"].tolist() == [str(i) for i in range(25, 50)]

    _multiselect(at, "Label").set_value(["versicolor"]).run()
    assert "50 of 150 rows match" in _caption(at)
    assert set(_browser_table(at)[_target(db)]) == {"versicolor"}

    tickets = dataset_store.get_dataset_by_name(db, "support_tickets")
    at = open_page("views/datasets.py", dataset=str(tickets.id))
    at.text_input(key=f"db_search_{tickets.id}").set_value("PASSWORD").run()
    shown = _browser_table(at)
    text_col = tickets.schema["text_column"]
    assert len(shown) > 0 and all("password" in t.lower() for t in shown[text_col])
    assert f"{len(shown)} of {tickets.n_rows:,} rows match" in _caption(at)


def test_filter_by_a_runs_predictions(settings, db, demo_datasets) -> None:
    run_id = completed_run(settings, db, "iris", epochs=2)
    predictions = pd.read_parquet(predictions_path(settings, run_id))
    report = read_report(settings, run_id)
    assert len(predictions) == report["n_test"]
    # The worst mistakes name their rows, and agree with the stored predictions.
    by_row = predictions.set_index("row_id")
    for mistake in report["worst_mistakes"]:
        assert by_row.loc[mistake["row_id"], "predicted"] == mistake["predicted"]

    iris = _iris(db)
    at = open_page("views/datasets.py", dataset=str(iris))
    at.selectbox(key=f"db_run_{iris}").set_value(run_id).run()
    assert f"{len(predictions)} of 150 rows match" not in _caption(at)  # no filter: all rows
    at.radio(key=f"db_right_{iris}").set_value(WRONG).run()
    wrong = predictions[~predictions["correct"]]
    assert f"{len(wrong)} of 150 rows match" in _caption(at) or (
        wrong.empty and "No rows match" in texts(at.info)
    )
    at.radio(key=f"db_right_{iris}").set_value("right").run()
    right = predictions[predictions["correct"]]
    assert len(right) > 0, "a two-epoch iris model gets some test rows right"
    # A threshold (the slider's 0.05 steps) that keeps the surer half of the right ones.
    low = float(int(right["confidence"].median() * 20) / 20)
    at.slider(key=f"db_conf_{iris}").set_value((low, 1.0)).run()
    sure = right[right["confidence"] >= low]
    assert f"{len(sure)} of 150 rows match" in _caption(at)
    shown = _browser_table(at)
    assert shown["predicted"].tolist() == shown[_target(db)].tolist()
    assert (shown["confidence"] >= low).all()


def test_relabel_and_exclude_through_the_tray_make_version_2(settings, db, demo_datasets) -> None:
    iris = _iris(db)
    at = open_page("views/datasets.py", dataset=str(iris))
    _multiselect(at, "Rows to change").set_value(["0", "1"]).run()
    at.selectbox(key=f"db_{iris}_label").set_value("virginica").run()
    button(at, "Set label").click().run()
    _multiselect(at, "Rows to change").set_value(["2", "3", "4"]).run()
    button(at, "Leave out").click().run()
    # Changing one's mind in the tray: row 4 gets a label instead of leaving.
    _multiselect(at, "Rows to change").set_value(["4"]).run()
    at.selectbox(key=f"db_{iris}_label").set_value("versicolor").run()
    button(at, "Set label").click().run()
    assert "3 new label(s), 2 row(s) to leave out" in texts(at.markdown)
    assert dataset_versions.latest(db, iris).number == 1  # nothing stored before saving

    at.text_input(key=f"tray_{iris}_note").set_value("fixed three labels").run()
    button(at, "Save as version 2").click().run()
    assert not at.exception and not at.error, texts(at.error)
    version = dataset_versions.latest(db, iris)
    assert version.number == 2 and version.note == "fixed three labels"
    assert version.diff == {"added": 0, "removed": 2, "relabelled": 3}
    assert version.n_rows == 148
    rows = dataset_versions.load_version_frame(settings, db, iris, 2).set_index("row_id")
    assert rows.loc["0", _target(db)] == "virginica" and "2" not in rows.index
    # The browser now reads version 2; the tray is empty again.
    assert "Version 2 · 148 of 148 rows match" in _caption(at)
    assert not [b for b in at.button if b.label.startswith("Save as version")]


def test_a_viewer_sees_no_edit_controls(settings, db, demo_datasets, monkeypatch) -> None:
    monkeypatch.setenv("SEEDLAB_AUTH", "on")
    accounts.add_user(db, cli_actor(), "root", PASSWORD, "admin")
    run_id = completed_run(settings, db, "iris", epochs=2)
    at = go(_logged_in(db, "vic", "viewer"), "views/datasets.py", dataset=str(_iris(db)))
    assert "150 of 150 rows match" in _caption(at)  # a viewer browses
    labels = {b.label for b in at.button}
    assert not labels & {"Set label", "Leave out"}
    assert not [m for m in at.multiselect if m.label == "Rows to change"]
    at = go(at, "views/run_detail.py", run=str(run_id), tab="Evaluation")
    assert not [m for m in at.multiselect if m.label == "Mistakes to fix"]
    assert not {b.label for b in at.button} & {"Use the predicted label", "Leave out"}


def test_fix_worst_mistakes_then_retrain_on_the_new_version(settings, db, demo_datasets) -> None:
    # Wine, one epoch: a model that still makes mistakes to fix.
    run_id = completed_run(settings, db, "wine", model="mlp", epochs=1)  # not raced: 128→64
    wine = dataset_store.get_dataset_by_name(db, "wine").id
    mistakes = read_report(settings, run_id)["worst_mistakes"]
    if len(mistakes) < 2:
        pytest.skip("the tiny model made fewer than two mistakes on wine's test rows")
    at = open_page("views/run_detail.py", run=str(run_id), tab="Evaluation")
    picked = [m["row_id"] for m in mistakes[:2]]
    _multiselect(at, "Mistakes to fix").set_value(picked).run()
    button(at, "Use the predicted label").click().run()
    button(at, "Save as version 2").click().run()
    assert not at.error, texts(at.error)
    version = dataset_versions.latest(db, wine)
    assert version.diff == {"added": 0, "removed": 0, "relabelled": 2}
    assert version.patch["labels"] == {m["row_id"]: m["predicted"] for m in mistakes[:2]}

    button(at, "Retrain on version 2").click().run()
    assert f"Cloning run #{run_id}" in texts(at.info)
    assert "It trains on version 2 of its dataset; run" in texts(at.caption)
    # AppTest reruns the page it was switched to last by the test: open the form itself.
    at = go(at, "views/new_run.py", clone=str(run_id), version="2")
    button(at, "Start training").click().run()
    assert not at.error, texts(at.error)
    retrain = run_store.list_runs(db)[0]
    assert (retrain.parent_run_id, retrain.dataset_version) == (run_id, 2)
    assert retrain.config == run_store.get_run(db, run_id).config
    # The retrained run links Compare with the run it redoes, side by side.
    at = go(at, "views/run_detail.py", run=str(retrain.id))
    link = next(p for p in at.get("page_link") if p.proto.label == f"Compare with #{run_id}")
    assert link.proto.page.endswith("compare") and f"runs={run_id},{retrain.id}" in str(
        link.proto.query_string
    ).replace("%2C", ",")


def test_browse_reads_only_matching_rows_and_joins_predictions() -> None:
    frame = pd.DataFrame({"row_id": [str(i) for i in range(10)], "y": list("ab" * 5)})
    predictions = pd.DataFrame(
        {
            "row_id": ["1", "2", "3"],
            "predicted": ["a", "a", "b"],
            "correct": [False, True, True],
            "confidence": [0.9, 0.4, 0.8],
        }
    )
    page = browse(
        frame,
        label_column="y",
        search_columns=[],
        filters=BrowseFilter(correctness=WRONG),
        predictions=predictions,
        page_size=2,
    )
    assert page.total == 1 and page.rows["row_id"].tolist() == ["1"]
    assert page.rows["predicted"].tolist() == ["a"]
    page = browse(
        frame,
        label_column="y",
        search_columns=[],
        filters=BrowseFilter(labels=("b",)),
        page=9,
        page_size=2,
    )
    assert (page.total, page.pages, page.page) == (5, 3, 2)  # a page past the end: the last
    assert page.rows["row_id"].tolist() == ["9"]


def test_image_grid_pages_filters_and_leaves_an_image_out(settings, db) -> None:
    from engine.data.datasets import ingest_bytes
    from engine.data.demo import digits_zip

    record = ingest_bytes(settings, db, digits_zip(), filename="d.zip", name="digits", target=None)
    at = open_page("views/datasets.py", dataset=str(record.id))
    assert f"50 of {record.n_rows:,} images match" not in _caption(at)
    assert f"{record.n_rows:,} of {record.n_rows:,} images match · page 1 of " in _caption(at)
    images = at.get("image")
    assert len(images) >= 50  # the grid (and the class strips above it)
    _multiselect(at, "Label").set_value(["3"]).run()
    threes = record.schema["class_counts"]["3"]
    assert f"{threes} of {record.n_rows:,} images match" in _caption(at)
    first = _multiselect(at, "Rows to change").options[0]
    assert first.split("/")[-2] == "3"  # an image's row id is its path in the dataset
    _multiselect(at, "Rows to change").set_value([first]).run()
    button(at, "Leave out").click().run()
    button(at, "Save as version 2").click().run()
    assert not at.error, texts(at.error)
    version = dataset_versions.latest(db, record.id)
    assert version.diff == {"added": 0, "removed": 1, "relabelled": 0}
    assert f"{threes - 1} of {record.n_rows - 1:,} images match" in _caption(at)


def test_bench_browser_runs_at_a_tiny_size() -> None:
    """bench/bench_browser.py end to end at a tiny size: it reports every case (figures are
    in bench/RESULTS.md, never asserted)."""
    import subprocess
    import sys

    from tests.support.commands import ROOT, child_env

    proc = subprocess.run(
        [sys.executable, "bench/bench_browser.py", "--rows", "2000", "--images", "200"],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2,000 rows: first page" in proc.stdout and "200 images: a page of 50" in proc.stdout
