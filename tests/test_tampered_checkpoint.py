"""A resume checkpoint that is not one Seedlab wrote (garbage, or a pickle carrying code) is
refused in our words — never with the loader's advice to re-load it with weights_only=False —
and nothing in it runs; `runs resume` says the epoch read from the checkpoint it will load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from db import runs as run_store
from db.writes import runs as run_writes
from engine.core.errors import SeedlabError
from engine.core.run_files import resume_path
from engine.execution.runner import execute
from engine.ml.checkpoints import (
    InvalidCheckpoint,
    checkpoint_epoch,
    load_train_state,
    saved_epoch,
)
from engine.services.launch import submit_run
from engine.services.recovery import resume_run
from tests.support.commands import cli
from tests.support.data import resume_checkpoint


class _Payload:
    """Unpickling this writes `marker`: proof that code in the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _pickle_with_code(path: Path, marker: Path) -> None:
    # torch.save's own container, so the file looks like a checkpoint until it is unpickled.
    torch.save({"format": "seedlab-resume-v1", "epoch": 3, "model": _Payload(marker)}, path)


def _assert_our_words(message: str) -> None:
    assert "not a valid Seedlab checkpoint" in message, message
    assert "weights_only" not in message and "Weights only" not in message, message
    assert "seedlab runs clone" in message, message


TAMPERINGS = {
    "garbage": lambda path, marker: path.write_bytes(b"PK\x03\x04 not a checkpoint" * 100),
    "a pickle with code": _pickle_with_code,
    "another format": lambda path, marker: torch.save({"format": "other", "epoch": 2}, path),
    "fields missing": lambda path, marker: torch.save({"format": "seedlab-resume-v1"}, path),
}


@pytest.mark.parametrize("how", list(TAMPERINGS))
def test_a_tampered_file_is_refused_in_our_words_and_nothing_runs(tmp_path, how):
    path, marker = tmp_path / "7" / "resume.pt", tmp_path / "ran"
    path.parent.mkdir()
    TAMPERINGS[how](path, marker)
    with pytest.raises(InvalidCheckpoint) as caught:
        load_train_state(path)
    _assert_our_words(str(caught.value))
    assert "seedlab runs clone 7" in str(caught.value)
    assert saved_epoch(path) is None  # pages and the engine's requeue: no checkpoint
    assert not marker.exists()


def test_the_pickle_with_code_really_runs_code_when_loaded_unsafely(tmp_path):
    """The test above would prove nothing if the payload could not run."""
    path, marker = tmp_path / "resume.pt", tmp_path / "ran"
    _pickle_with_code(path, marker)
    torch.load(path, weights_only=False)  # what torch's message advises, done here on purpose
    assert marker.read_text() == "ran"


def test_a_run_whose_checkpoint_was_replaced_fails_with_our_message(settings, db, demo_datasets):
    marker = settings.home / "ran"
    run_id = submit_run(db, "iris", {"epochs": 2})
    assert run_writes.claim_next_run(db, worker_id="tests") == run_id
    path = resume_path(settings, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    _pickle_with_code(path, marker)

    assert execute(settings, run_id) == "failed"
    run = run_store.get_run(db, run_id)
    _assert_our_words(run.error)
    assert not marker.exists()
    shown = cli("runs", "show", str(run_id), "--json")
    assert "weights_only" not in shown.stdout and "not a valid Seedlab" in shown.stdout


def _cancelled_run_with_checkpoint(settings, db, epoch: int) -> int:  # noqa: ANN001
    run_id = submit_run(db, "iris", {"epochs": 10})
    run_writes.claim_next_run(db, worker_id="tests")
    run_writes.finish_run(db, run_id, "cancelled")
    resume_checkpoint(settings, run_id, epoch)
    return run_id


def test_resume_refuses_a_tampered_checkpoint_before_queueing(settings, db, demo_datasets):
    run_id = _cancelled_run_with_checkpoint(settings, db, epoch=2)
    marker = settings.home / "ran"
    _pickle_with_code(resume_path(settings, run_id), marker)  # the side file still says 2

    with pytest.raises(SeedlabError) as caught:
        resume_run(settings, db, run_id)
    _assert_our_words(str(caught.value))
    result = cli("runs", "resume", str(run_id))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: The resume checkpoint"), result.stderr
    assert "weights_only" not in result.stderr
    assert run_store.get_run(db, run_id).status == "cancelled"  # nothing queued
    assert not marker.exists()


def test_resume_reports_the_epoch_of_the_checkpoint_not_the_side_file(settings, db, demo_datasets):
    run_id = _cancelled_run_with_checkpoint(settings, db, epoch=2)
    side = resume_path(settings, run_id).with_suffix(".json")
    side.write_text(json.dumps({"epoch": 7}))  # stale or edited: not what the run will load
    assert checkpoint_epoch(resume_path(settings, run_id)) == 2

    result = cli("runs", "resume", str(run_id))
    assert result.returncode == 0, result.stderr
    assert "resumes after epoch 2." in result.stdout, result.stdout
    assert run_store.get_run(db, run_id).status == "queued"


def test_a_replaced_model_file_is_refused_in_our_words(tmp_path):
    from engine.deploy.compress import load_variant
    from engine.ml.predictor import Predictor, PredictorError

    path, marker = tmp_path / "model.pt", tmp_path / "ran"
    _pickle_with_code(path, marker)
    for load in (Predictor.load, load_variant):  # the Playground, predict, export; variants
        with pytest.raises(PredictorError) as caught:
            load(path)
        assert "not a valid Seedlab model" in str(caught.value)
        assert "weights_only" not in str(caught.value)
    assert not marker.exists()
