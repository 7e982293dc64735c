"""A completed run's model together with its test split: what export checks and compression
measure against.

The test split is rebuilt from the stored dataset with the run's own config (the split and the
preprocessing are seeded and fitted on the training rows only, so they come out the same as in
training) and checked against the checkpoint's stored preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from db import datasets as dataset_store
from db import runs as run_store
from db.records import RunRecord
from engine.core.config import validate_config
from engine.core.errors import SeedlabError
from engine.core.run_files import checkpoint_path
from engine.core.settings import Settings
from engine.data.version_rows import stored_version
from engine.ml.device import choose_device
from engine.ml.pipeline import prepare_dataset
from engine.ml.predictor import Predictor, PredictorError
from engine.ml.prepared import PreparedData


class RunNotReady(SeedlabError):
    """The run cannot be exported or compressed (yet); the message says why and what to do."""


@dataclass
class FinishedRun:
    run: RunRecord
    predictor: Predictor
    data: PreparedData  # on the CPU


def completed_run_record(db: Engine, run_id: int) -> RunRecord:
    run = run_store.get_run(db, run_id)
    if run is None:
        raise RunNotReady(f"There is no run #{run_id}; `seedlab runs list` shows the runs.")
    if run.status != "completed":
        raise RunNotReady(
            f"Run #{run_id} is {run.status}; only a completed run has a final model and a test "
            "evaluation. Wait for it (`seedlab runs wait`) or resume it."
        )
    return run


def load_model(settings: Settings, run_id: int) -> Predictor:
    try:
        return Predictor.load(checkpoint_path(settings, run_id))
    except PredictorError as exc:
        raise RunNotReady(str(exc)) from None


def load_finished_run(settings: Settings, db: Engine, run_id: int) -> FinishedRun:
    """The run's model and its test split on the CPU (raises RunNotReady with what to do)."""
    run = completed_run_record(db, run_id)
    predictor = load_model(settings, run_id)
    dataset = dataset_store.get_dataset(db, run.dataset_id)
    if dataset is None:
        raise RunNotReady(
            f"Run #{run_id}'s dataset (id {run.dataset_id}) was deleted, so its test split "
            "cannot be rebuilt. Re-upload the dataset and train again."
        )
    # The exact version it trained on: a later edit must not change its test split.
    version = stored_version(db, run.dataset_id, run.dataset_version)
    data = prepare_dataset(settings, version, validate_config(run.config), choose_device("cpu"))
    if data.preprocessor.to_dict() != predictor.payload["preprocessor"]:
        raise RunNotReady(
            f"Run #{run_id}'s dataset changed since training (its preprocessing no longer "
            "matches the model), so the test split is not the one the model was evaluated on."
        )
    return FinishedRun(run=run, predictor=predictor, data=data)
