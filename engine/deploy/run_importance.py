"""Permutation importance for a completed table run after the fact (`seedlab runs importance`):
the same seeded test split as training, stored in the run's report.json."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import Engine

from db import datasets as dataset_store
from db import runs as run_store
from engine.core.config import validate_config
from engine.core.run_files import checkpoint_path, read_report, report_path
from engine.core.settings import Settings
from engine.data.version_rows import stored_version
from engine.data.versions import load_version_table
from engine.ml.importance import ImportanceError, compute_importance, metric_for, write_report
from engine.ml.predictor import Predictor, PredictorError
from engine.ml.prepared import split_for_run


def importance_for_run(
    settings: Settings,
    db: Engine,
    run_id: int,
    *,
    max_rows: int = 5000,
    max_repeats: int = 10,
    time_budget_s: float = 30.0,
) -> dict[str, Any]:
    """Compute importance for a completed (older) table run and store it in its report.json."""
    run = run_store.get_run(db, run_id)
    if run is None:
        raise ImportanceError(f"No run {run_id}.")
    if run.status != "completed":
        raise ImportanceError(f"Run {run_id} is {run.status}; importance needs a completed run.")
    dataset = dataset_store.get_dataset(db, run.dataset_id)
    if dataset is None:
        raise ImportanceError(f"The run's dataset (id {run.dataset_id}) no longer exists.")
    if dataset.kind != "tabular":
        raise ImportanceError(
            f"Permutation importance is for table datasets; {dataset.name!r} is {dataset.kind}."
        )
    report = read_report(settings, run_id)
    if report is None:
        raise ImportanceError(f"Run {run_id} has no readable report.json to add importance to.")
    try:
        predictor = Predictor.load(checkpoint_path(settings, run_id))
    except PredictorError as exc:
        raise ImportanceError(str(exc)) from None
    config = validate_config(run.config)
    # The same seeded split as training, so these are the rows the model never saw.
    version = stored_version(db, run.dataset_id, run.dataset_version)
    frame = load_version_table(settings, version)
    _, _, splits = split_for_run(frame, version.schema, config)
    test = splits.test
    target = test[predictor.target_column]
    if predictor.task == "classification":
        y_true = predictor.target.encode(target)
    else:
        y_true = target.to_numpy(dtype=np.float64)
    result = compute_importance(
        predictor,
        predictor.encode(test).numpy(),
        y_true,
        metric=metric_for(predictor.task, config.monitor),
        max_rows=max_rows,
        max_repeats=max_repeats,
        time_budget_s=time_budget_s,
        seed=config.seed,
    )
    report["importance"] = result
    write_report(report_path(settings, run_id), report)
    return result
