"""Moving in: `seedlab import mlflow` and `seedlab import tensorboard` copy runs, params, tags
and full metric histories; the histories read back equal what was logged under the import's
step rule (the last value at a step wins; a key logged at one step only is numbered 0, 1, 2…).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from db import metrics as metric_store
from db import runs as run_store
from db.projects import get_project_by_name
from db.run_query import RunFilter, query_runs
from engine.core.provenance import read_code
from engine.services.importing import apply_step_rule
from tests.support import mlflow_fixture
from tests.support.commands import cli
from tests.support.pages import open_page, texts

T0 = 1_700_000_000.0


def _history(db, run_id: int) -> dict[str, list[tuple[int, float]]]:
    frame = metric_store.metric_history(db, [run_id])
    out: dict[str, list[tuple[int, float]]] = {}
    for row in frame.itertuples():
        out.setdefault(row.key, []).append((int(row.step), float(row.value)))
    return out


def _runs_in(db, project: str) -> dict[str, object]:
    found = get_project_by_name(db, project)
    assert found is not None, f"no project {project!r}"
    runs = query_runs(db, RunFilter(project_id=found.id), limit=100)
    return {r.name: r for r in runs}


def test_the_step_rule() -> None:
    # Distinct steps are kept; a step logged again keeps its last value.
    kept, overwritten, renumbered = apply_step_rule([(0, 1.0, T0), (1, 2.0, T0), (1, 3.0, T0)])
    assert kept == [(0, 1.0, T0), (1, 3.0, T0)] and overwritten == 1 and not renumbered
    # Every point at one step (mlflow.log_metric without step=): numbered in the order logged.
    kept, overwritten, renumbered = apply_step_rule([(0, 5.0, T0), (0, 4.0, T0 + 1)])
    assert kept == [(0, 5.0, T0), (1, 4.0, T0 + 1)] and renumbered and overwritten == 0
    assert apply_step_rule([(7, 1.0, T0)]) == ([(7, 1.0, T0)], 0, False)


def test_tensorboard_round_trip(settings, db, tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    logdir = tmp_path / "tb-logs"
    logged: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for name, lr in (("baseline", 0.1), ("wider", 0.05)):
        with SummaryWriter(str(logdir / name)) as writer:
            for step in range(50):
                loss = 1.0 / (1 + step * lr)
                writer.add_scalar("loss/train", loss, step)
                logged.setdefault(name, {}).setdefault("loss/train", []).append((step, loss))
                if step % 10 == 0:
                    writer.add_scalar("accuracy/val", 0.5 + step / 100, step)
                    logged[name].setdefault("accuracy/val", []).append((step, 0.5 + step / 100))
            writer.add_scalar("accuracy/val", 0.97, 40)  # step 40 again: this value is kept
            logged[name]["accuracy/val"][-1] = (40, 0.97)
            writer.add_text("note", "not a scalar: left out", 0)

    done = cli("import", "tensorboard", str(logdir))
    assert done.returncode == 0, done.stderr
    assert "imported 2 runs from TensorBoard into tb-logs" in done.stdout
    assert "the last value logged at a step is kept" in done.stdout

    runs = _runs_in(db, "tb-logs")
    assert set(runs) == {"baseline", "wider"}
    for name, run in runs.items():
        assert run.status == "completed" and run.source == "sdk" and run.dataset_id is None
        history = _history(db, run.id)
        assert set(history) == set(logged[name])
        for key, points in logged[name].items():
            steps = [s for s, _v in history[key]]
            assert steps == [s for s, _v in points], key
            # Event files hold 32-bit floats.
            assert [v for _s, v in history[key]] == pytest.approx([v for _s, v in points], 1e-6)
        code = read_code(settings, run.id)
        assert code["imported_from"]["folder"] == str((logdir / name).resolve())

    # The Run page of an imported run: curves-less Code tab saying where it came from.
    at = open_page("views/run_detail.py", run=str(runs["wider"].id), tab="Code")
    assert not at.exception and not at.error
    assert "Imported from TensorBoard event files in" in texts(at.tabs[3].caption)

    again = cli("import", "tensorboard", str(logdir))
    assert "imported 0 runs" in again.stdout and "2 imported before" in again.stdout
    assert len(_runs_in(db, "tb-logs")) == 2


def test_tensorboard_refuses_a_folder_without_event_files(settings, db, tmp_path) -> None:
    done = cli("import", "tensorboard", str(tmp_path))
    assert done.returncode == 1
    assert "No TensorBoard event files" in done.stderr and "Traceback" not in done.stderr


def test_mlflow_refuses_what_is_not_its_database(settings, db, tmp_path) -> None:
    missing = cli("import", "mlflow", "--tracking-uri", f"sqlite:///{tmp_path}/none.db")
    assert missing.returncode == 1 and "No MLflow database at" in missing.stderr
    files = cli("import", "mlflow", "--tracking-uri", str(tmp_path / "mlruns"))
    assert files.returncode == 1 and "is not an MLflow tracking database" in files.stderr
    # A SQLite file that is not MLflow's: named, with what to check.
    cli("runs", "list")  # the Seedlab database exists now
    ours = cli("import", "mlflow", "--tracking-uri", str(settings.db_url))
    assert ours.returncode == 1 and "has no experiments" in ours.stderr, ours.stderr


def test_mlflow_round_trip(settings, db, tmp_path: Path) -> None:
    # A database MLflow itself wrote: fresh where mlflow is installed, else the committed one.
    path, logged = mlflow_fixture.fresh_or_fixture(tmp_path)
    uri = f"sqlite:///{path}"
    done = cli("import", "mlflow", "--tracking-uri", uri, "--experiment", "pets-vision")
    assert done.returncode == 0, done.stderr
    assert "imported 2 runs from MLflow into pets-vision" in done.stdout
    runs = _runs_in(db, "pets-vision")
    assert set(runs) == {"resnet-a", "resnet-b"}
    assert runs["resnet-a"].status == "completed" and runs["resnet-b"].status == "failed"
    for name, run in runs.items():
        full = run_store.get_run(db, run.id)
        assert full.config == {
            "lr": float(name == "resnet-a" and 0.001 or 0.01),
            "optimizer": "adam",
        }
        assert "team=vision" in full.tags and full.notes == f"{name} notes"
        history = _history(db, run.id)
        for key, points in logged[name].items():
            assert [s for s, _v in history[key]] == [s for s, _v in points], key
            assert [v for _s, v in history[key]] == pytest.approx([v for _s, v in points]), key
        assert math.isnan(history["nan_metric"][0][1])
        code = read_code(settings, run.id)
        assert code["imported_from"]["experiment"] == "pets-vision"
    assert get_project_by_name(db, "not-this-one") is None

    again = cli("import", "mlflow", "--tracking-uri", uri)
    assert "imported 1 runs" in again.stdout and "2 imported before" in again.stdout
