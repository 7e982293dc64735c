"""An MLflow tracking database written by MLflow itself, for `seedlab import mlflow`.

MLflow is not a Seedlab dependency (it pulls Flask, Docker and more) and tests run offline, so
tests/data/mlflow/ holds a database this module wrote with the real package (3.17.2) and what
was logged into it. Where `mlflow` is installed the test writes a fresh one instead.

Regenerate: `python -m tests.support.mlflow_fixture tests/data/mlflow` in a venv with mlflow.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "mlflow"
T0 = 1_700_000_000.0  # timestamps fixed, so the file is the same on every build

Logged = dict[str, dict[str, list[tuple[int, float]]]]


def build(mlflow: Any, db_path: Path) -> Logged:  # noqa: ANN401 - the mlflow module
    """Two runs in experiment "pets-vision" (one FINISHED, one FAILED) and one elsewhere; returns
    what each run logged, by the rule Seedlab imports with (the last value at a step wins)."""
    uri = f"sqlite:///{db_path}"
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    logged: Logged = {}
    experiment_id = client.create_experiment("pets-vision")
    other_id = client.create_experiment("not-this-one")
    for name, lr in (("resnet-a", 0.001), ("resnet-b", 0.01)):
        run = client.create_run(experiment_id, run_name=name, tags={"team": "vision"})
        client.log_param(run.info.run_id, "lr", str(lr))
        client.log_param(run.info.run_id, "optimizer", "adam")
        client.set_tag(run.info.run_id, "mlflow.note.content", f"{name} notes")
        points = logged.setdefault(name, {})
        ms = int(T0 * 1000)
        for step in range(30):
            client.log_metric(run.info.run_id, "val_loss", 1 / (step + 1), timestamp=ms, step=step)
            points.setdefault("val_loss", []).append((step, 1 / (step + 1)))
        # A step logged twice (the later timestamp wins), and a key logged without steps.
        client.log_metric(run.info.run_id, "val_loss", 0.02, timestamp=ms + 5000, step=29)
        points["val_loss"][-1] = (29, 0.02)
        for i, value in enumerate((0.5, 0.25, 0.125)):
            client.log_metric(run.info.run_id, "lr_now", value, timestamp=ms + i)
        points["lr_now"] = [(0, 0.5), (1, 0.25), (2, 0.125)]
        client.log_metric(run.info.run_id, "nan_metric", math.nan, timestamp=ms, step=0)
        client.set_terminated(run.info.run_id, "FINISHED" if name == "resnet-a" else "FAILED")
    skipped = client.create_run(other_id, run_name="elsewhere")
    client.set_terminated(skipped.info.run_id)
    return logged


def fresh_or_fixture(tmp_path: Path) -> tuple[Path, Logged]:
    """An MLflow database in `tmp_path`: written now where mlflow is installed, else the copy."""
    target = tmp_path / "mlflow.db"
    try:
        import mlflow
    except ImportError:
        shutil.copyfile(FIXTURE / "mlflow.db", target)
        raw = json.loads((FIXTURE / "logged.json").read_text())
        return target, {r: {k: [tuple(p) for p in v] for k, v in m.items()} for r, m in raw.items()}
    return target, build(mlflow, target)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "mlflow.db").unlink(missing_ok=True)
    logged = build(__import__("mlflow"), out / "mlflow.db")
    (out / "logged.json").write_text(json.dumps(logged, indent=1) + "\n")
