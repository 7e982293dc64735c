"""Every completed run gets a verdict: baselines on its own test split, warnings with advice,
a one-line summary; stored on the run, shown on the Run page, Runs, Home, the HTML report and
`seedlab runs show --json`.

Each warning code is triggered by a real dataset trained for real (tests/support/data.py's
`completed_run` drives the runner as a worker would); the bundled demo datasets, trained with
the demo run's own config, trigger none.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from db import runs as run_store
from db.writes import runs as run_writes
from engine.core.config import RunConfig
from engine.core.settings import Settings
from engine.data.datasets import store_frame
from engine.services.launch import submit_run
from engine.services.run_report import run_report_html
from tests.support.commands import cli
from tests.support.data import completed_run
from tests.support.pages import open_page, texts

# The config the demo run uses (engine/services/runs.py queue_demo_run: RunConfig()).
DEMO_CONFIG = RunConfig().model_dump(mode="json")
WARNING_KEYS = {"code", "message", "advice"}


def _add(settings: Settings, db: Engine, name: str, frame: pd.DataFrame, target: str) -> str:
    digest = hashlib.sha256(pd.util.hash_pandas_object(frame).values.tobytes()).hexdigest()
    store_frame(
        settings, db, frame, name=name, target=target, filename=f"{name}.csv", sha256=digest
    )
    return name


def _features(rows: int, columns: int = 4, seed: int = 0) -> tuple[np.random.Generator, dict]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, columns))
    return rng, {f"f{i}": x[:, i] for i in range(columns)}


def _verdict(db: Engine, run_id: int) -> dict[str, Any]:
    run = run_store.get_run(db, run_id)
    assert run.status == "completed"
    assert isinstance(run.verdict, dict), "a completed run has a verdict"
    for warning in run.verdict["warnings"]:
        assert set(warning) == WARNING_KEYS and all(warning.values()), warning
    return run.verdict


def _codes(verdict: dict[str, Any]) -> set[str]:
    return {w["code"] for w in verdict["warnings"]}


def _warning(verdict: dict[str, Any], code: str) -> dict[str, str]:
    found = [w for w in verdict["warnings"] if w["code"] == code]
    assert found, f"no {code} warning in {_codes(verdict)}: {verdict['summary']}"
    return found[0]


# ---------------------------------------------------------------- the demo datasets: no warning


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "diabetes"])
def test_demo_tables_get_a_clean_verdict(settings, db, demo_datasets, name: str) -> None:
    run_id = completed_run(settings, db, name, **DEMO_CONFIG)
    verdict = _verdict(db, run_id)
    assert verdict["warnings"] == [], verdict["warnings"]
    baseline = verdict["baseline"]
    trivial, classical = baseline["trivial"], baseline["classical"]
    assert classical["name"] == "gradient boosting" and classical["train_rows"] > 0
    if name == "diabetes":
        assert trivial["name"] == "predicting the training mean"
        assert (
            verdict["summary"].startswith("RMSE ")
            and "% lower than predicting" in verdict["summary"]
        )
        assert set(trivial["metrics"]) >= {"test_rmse", "test_mae", "test_r2"}
    else:
        assert trivial["name"] == "the most-frequent-class guess"
        assert verdict["summary"].startswith("Beats the most-frequent-class guess by ")
        assert "gradient boosting" in verdict["summary"]
        # The same metric functions as the run's own test metrics (engine/ml/evaluate.py).
        run = run_store.get_run(db, run_id)
        assert set(trivial["metrics"]) == {k for k in run.summary if k.startswith("test_")}
        assert trivial["metrics"]["test_accuracy"] < verdict["value"]


@pytest.mark.slow  # the text CNN's 50 demo epochs: ~20 s on one core
def test_demo_text_gets_a_clean_verdict(settings, db, demo_datasets) -> None:
    verdict = _verdict(db, completed_run(settings, db, "support_tickets", **DEMO_CONFIG))
    assert verdict["warnings"] == []
    assert verdict["baseline"]["classical"]["name"] == "TF-IDF + logistic regression"
    assert verdict["summary"].startswith("Beats the most-frequent-class guess by ")


@pytest.mark.slow  # ingesting the digits and 50 CNN epochs: ~25 s on one core
def test_demo_images_get_a_clean_verdict(settings, db) -> None:
    from engine.data.demo import register_demo_datasets

    register_demo_datasets(settings, db)
    verdict = _verdict(db, completed_run(settings, db, "digits", **DEMO_CONFIG))
    assert verdict["warnings"] == []
    assert verdict["baseline"]["classical"]["name"] == "logistic regression on 8×8 pixels"


# ---------------------------------------------------------------- each warning, for real


def test_identifier_target(settings, db) -> None:
    """A car's name as the target: one class per row (the cars.csv case of issue 18)."""
    _, columns = _features(200)
    frame = pd.DataFrame({**columns, "name": [f"car model {i}" for i in range(200)]})
    run_id = completed_run(settings, db, _add(settings, db, "cars", frame, "name"), epochs=5)
    verdict = _verdict(db, run_id)
    warning = _warning(verdict, "target_looks_like_id")
    assert "200 different values in 200 rows" in warning["message"]
    assert "target column" in warning["advice"]


def test_too_few_rows_per_class(settings, db) -> None:
    rng, columns = _features(600)
    label = np.where(columns["f0"] > 0, "high", "low").astype(object)
    label[:6] = "rare"  # 6 rows in all: fewer than 5 of them in the training split
    frame = pd.DataFrame({**columns, "label": label})
    verdict = _verdict(db, completed_run(settings, db, _add(settings, db, "rare", frame, "label")))
    warning = _warning(verdict, "too_few_rows_per_class")
    assert "1 of 3 classes have fewer than 5 training rows ('rare')" in warning["message"]


def test_diverging_learning_rate(settings, db, demo_datasets) -> None:
    """Learning rate 10 with Adam: each step moves a weight by about the learning rate, so the
    loss explodes (to ~10^6) without becoming NaN (plain SGD's unbounded steps overflow to NaN,
    and the run fails instead), the run completes, and the verdict says it diverged rather
    than showing a plain success."""
    run_id = completed_run(  # a named model: model=auto could race to a calmer candidate
        settings, db, "breast_cancer", model="mlp", optimizer="adam", learning_rate=10, epochs=3,
    )  # fmt: skip
    warning = _warning(_verdict(db, run_id), "diverged")
    assert "an untrained model scores" in warning["message"]
    assert "Lower the learning rate (now 10): try 1" in warning["advice"]


def test_target_with_no_signal(settings, db) -> None:
    """Random labels: nothing in the features predicts them."""
    rng, columns = _features(600)
    frame = pd.DataFrame({**columns, "label": rng.choice(["a", "b"], 600)})
    run_id = completed_run(settings, db, _add(settings, db, "noise", frame, "label"), epochs=10)
    verdict = _verdict(db, run_id)
    warning = _warning(verdict, "no_better_than_trivial")
    assert "for always answering the most frequent class" in warning["message"]
    assert verdict["summary"].startswith("No better than the most-frequent-class guess")


def test_leaked_feature(settings, db) -> None:
    """A column that is a copy of the target."""
    _, columns = _features(600)
    label = np.where(columns["f0"] + 0.5 * columns["f1"] > 0, "yes", "no")
    frame = pd.DataFrame({**columns, "answer": label, "label": label})
    run_id = completed_run(settings, db, _add(settings, db, "leaky", frame, "label"), epochs=5)
    verdict = _verdict(db, run_id)
    warning = _warning(verdict, "leakage")
    assert "The column 'answer' alone predicts the target" in warning["message"]
    assert _codes(verdict) == {"leakage"}  # the honest features raise nothing


def test_class_never_predicted(settings, db) -> None:
    """Class c looks exactly like class a and is much rarer: the model always says a."""
    rng, columns = _features(1200, columns=2)
    label = np.where(columns["f0"] > 0, "b", "a").astype(object)
    label[(label == "a") & (rng.random(1200) < 0.12)] = "c"
    frame = pd.DataFrame({**columns, "label": label})
    # As the user chose it: no class weights (the suggested settings would weight c up).
    hidden = _add(settings, db, "hidden", frame, "label")
    run_id = completed_run(settings, db, hidden, epochs=20, imbalance="none", monitor="val_loss")
    warning = _warning(_verdict(db, run_id), "classes_never_predicted")
    assert "never predicts 'c'" in warning["message"] and "class weights" in warning["advice"]


def test_heavy_overfitting(settings, db) -> None:
    """A wide network with no regularisation, trained long on 240 rows of noise."""
    rng, columns = _features(240, columns=8)
    frame = pd.DataFrame({**columns, "label": rng.choice(["a", "b"], 240)})
    run_id = completed_run(
        settings,
        db,
        _add(settings, db, "small_noise", frame, "label"),
        hidden_sizes=[256, 256],
        dropout=0,
        weight_decay=0,
        learning_rate=0.01,
        epochs=40,
    )
    warning = _warning(_verdict(db, run_id), "overfitting")
    assert "while the training loss kept falling" in warning["message"]
    assert "kept epoch" in warning["advice"]  # restore_best_weights is on by default


# ---------------------------------------------------------------- where the verdict shows


def _warned_run(settings: Settings, db: Engine) -> int:
    return completed_run(  # a named model: model=auto could race to a calmer candidate
        settings, db, "breast_cancer", model="mlp", optimizer="adam", learning_rate=10, epochs=2,
    )  # fmt: skip


def test_run_page_shows_the_verdict_and_an_amber_badge(settings, db, demo_datasets) -> None:
    warned = _warned_run(settings, db)
    at = open_page("views/run_detail.py", run=str(warned))
    markdown = texts(at.markdown)
    assert ":yellow-badge[:material/warning: completed · training diverged" in markdown
    assert ":green-badge[" not in markdown
    verdict = run_store.get_run(db, warned).verdict
    assert "**Verdict:** " in markdown and verdict["summary"].split(" (")[0] in markdown
    shown = texts(at.warning)
    assert "Training diverged." in shown and "What to do:" in shown
    assert "Lower the learning rate (now 10): try 1" in shown

    clean = completed_run(settings, db, "iris", epochs=30)
    at = open_page("views/run_detail.py", run=str(clean))
    assert ":green-badge[:material/check_circle: completed]" in texts(at.markdown)
    assert "Beats the most-frequent-class guess by" in texts(at.markdown)
    assert not at.warning


def test_a_completed_run_without_verdict_is_never_green(settings, db, demo_datasets) -> None:
    """Runs from before verdicts existed (NULL) say so, in gray, on the page, in Runs and Home."""
    run_id = submit_run(db, "iris", {}, name="old run")
    run_writes.claim_next_run(db, "test-worker")
    assert run_writes.finish_run(db, run_id, "completed")
    assert run_store.get_run(db, run_id).verdict is None
    at = open_page("views/run_detail.py", run=str(run_id))
    markdown = texts(at.markdown)
    assert ":gray-badge[:material/help: completed · no verdict]" in markdown
    assert ":green-badge[" not in markdown
    assert "No verdict" in texts(at.caption)

    home = open_page("views/home.py")
    table = home.dataframe[0].value
    assert list(table["status"].map(list)) == [["completed · no verdict"]]
    assert list(table["verdict"]) == ["no verdict"]


def test_runs_list_and_home_carry_the_verdict(settings, db, demo_datasets) -> None:
    warned = _warned_run(settings, db)
    for page in ("views/runs.py", "views/home.py"):
        table = open_page(page).dataframe[0].value.set_index("id")
        assert list(table.loc[warned, "status"]) == ["completed · training diverged"]
        assert table.loc[warned, "verdict"].startswith("⚠ training diverged")


def test_runs_show_json_carries_warnings_and_baseline(settings, db, demo_datasets) -> None:
    warned = _warned_run(settings, db)
    shown = json.loads(cli("runs", "show", str(warned), "--json").stdout)
    assert shown["status"] == "completed"
    codes = [w["code"] for w in shown["warnings"]]
    assert "diverged" in codes
    assert all(w["message"] and w["advice"] for w in shown["warnings"])
    trivial = shown["baseline"]["trivial"]
    assert trivial["name"] == "the most-frequent-class guess"
    assert 0 <= trivial["metrics"]["test_accuracy"] <= 1
    assert shown["baseline"]["classical"]["metrics"]["test_accuracy"] > 0.8

    text = cli("runs", "show", str(warned)).stdout
    assert "verdict: " in text and "warning diverged: " in text
    listed = next(line for line in cli("runs", "list").stdout.splitlines() if "⚠" in line)
    assert listed.split()[0] == str(warned) and "training diverged" in listed

    old = submit_run(db, "iris", {}, name="before verdicts")
    run_writes.claim_next_run(db, "test-worker")
    run_writes.finish_run(db, old, "completed")
    shown = json.loads(cli("runs", "show", str(old), "--json").stdout)
    assert shown["warnings"] == [] and shown["baseline"] is None and shown["verdict"] is None


def test_html_report_carries_the_verdict(settings, db, demo_datasets) -> None:
    warned = _warned_run(settings, db)
    page = run_report_html(settings, db, warned)
    assert '<span class="badge warned">completed · training diverged</span>' in page
    assert "<strong>Verdict:</strong>" in page and "Training diverged." in page
    assert "Baselines on the same test rows: the most-frequent-class guess" in page


def test_failed_and_cancelled_runs_have_no_verdict(settings, db, demo_datasets) -> None:
    """Only a completed run is judged; a verdict passed with another status is not kept."""
    run_id = submit_run(db, "iris", {}, name="doomed")
    run_writes.claim_next_run(db, "test-worker")
    run_writes.finish_run(db, run_id, "failed", "broke", verdict={"warnings": []})
    assert run_store.get_run(db, run_id).verdict is None


def test_streamed_images_are_judged_batch_by_batch(settings, db) -> None:
    """Images read from disk (too big for memory) still get their pixel baseline."""
    from engine.data.demo import register_demo_datasets

    register_demo_datasets(settings, db)
    run_id = completed_run(
        settings, db, "digits", epochs=1, image_size=8, data_loading="stream", loader_workers=0
    )
    classical = _verdict(db, run_id)["baseline"]["classical"]
    assert classical["name"] == "logistic regression on 8×8 pixels"
    assert classical["metrics"]["test_accuracy"] > 0.8
