"""engine/deploy/compress.py: int8 quantization, pruning with a fine-tune, and distillation into a
student run; each variant measured against the original."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
import torch

from db import artifacts as artifact_store
from db import runs as run_store
from db.writes import runs as run_writes
from engine.core.errors import ConfigError
from engine.deploy.compress import (
    load_variant,
    prune_run,
    quantize_run,
    refresh_students,
    sparsity,
)
from engine.deploy.finished_run import load_finished_run
from engine.deploy.variants import comparison_table, read_variants
from engine.execution.runner import execute
from engine.services.distillation import distill_run
from engine.services.launch import submit_run
from tests.support.commands import child_env, seedlab_cmd, seedlab_in_process
from tests.support.data import completed_run


def test_quantized_model_loads_and_predicts(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris", hidden_sizes=[256, 256], epochs=5)
    row = quantize_run(settings, db, run_id)
    path = settings.run_dir(run_id) / row["file"]
    predictor = load_variant(path)
    assert any("quantized" in type(m).__module__ for m in predictor.model.modules())
    finished = load_finished_run(settings, db, run_id)
    x = finished.data.x_test
    probs = predictor.outputs(x)
    assert probs.shape == (len(x), 3) and np.allclose(probs.sum(axis=1), 1.0)
    # int8 weights: close to the float model's outputs, and a file about a quarter the size.
    original = finished.predictor.model(x).detach()
    assert (predictor.model(x) - original).abs().max() < 0.5
    record = read_variants(settings, run_id)
    assert record["original"]["size_bytes"] > 2.5 * row["size_bytes"]
    assert 0.0 <= row["value"] <= 1.0 and row["latency_b1_ms"] > 0 and row["latency_b64_ms"] > 0
    table = comparison_table(record)
    assert list(table["variant"]) == ["original", "int8"]
    assert table.loc[1, "change"] == pytest.approx(row["value"] - record["original"]["value"])
    assert "variant" in {a.kind for a in artifact_store.list_artifacts(db, run_id)}


def test_pruning_reaches_the_sparsity_and_keeps_it_through_the_fine_tune(
    settings, db, demo_datasets
):
    run_id = completed_run(settings, db, "iris", epochs=5)
    row = prune_run(settings, db, run_id, target=0.6, epochs=2)
    assert row["sparsity"] == pytest.approx(0.6, abs=0.01)
    predictor = load_variant(settings.run_dir(run_id) / row["file"])
    assert sparsity(predictor.model) == pytest.approx(0.6, abs=0.01)
    assert 0.0 <= row["value"] <= 1.0
    with pytest.raises(ConfigError, match="sparsity must be between 0 and 1"):
        prune_run(settings, db, run_id, target=1.5)


def test_distilled_student_is_an_ordinary_run_that_learns_from_the_teacher(
    settings, db, demo_datasets
):
    teacher = completed_run(settings, db, "iris", model="mlp", epochs=5)  # 128→64, not raced
    row = distill_run(settings, db, teacher, {"epochs": 3, "distill_temperature": 3})
    student = row["run_id"]
    config = run_store.get_run(db, student).config
    assert config["distill_from"] == teacher and config["hidden_sizes"] == [64, 32]
    assert config["distill_temperature"] == 3
    assert run_writes.claim_next_run(db, worker_id="tests") == student
    assert execute(settings, student) == "completed"
    record = refresh_students(settings, db, teacher)
    (entry,) = [v for v in record["variants"] if v["method"] == "distill"]
    assert entry["status"] == "ready" and entry["value"] is not None
    assert entry["size_bytes"] < record["original"]["size_bytes"]
    # A student cannot change what its teacher saw.
    with pytest.raises(ConfigError, match="cannot change.*seed"):
        distill_run(settings, db, teacher, {"seed": 5})


def test_distillation_changes_the_training_signal(settings, db, demo_datasets):
    """alpha=1 learns only from the teacher: a different model than labels alone."""
    teacher = completed_run(settings, db, "iris", epochs=5)
    plain = completed_run(settings, db, "iris", epochs=2, hidden_sizes=[8])
    distilled = completed_run(
        settings, db, "iris", epochs=2, hidden_sizes=[8], distill_from=teacher, distill_alpha=1.0
    )
    a = torch.load(settings.run_dir(plain) / "model.pt", weights_only=True)["model_state"]
    b = torch.load(settings.run_dir(distilled) / "model.pt", weights_only=True)["model_state"]
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_a_teacher_on_other_data_is_refused(settings, db, demo_datasets):
    teacher = completed_run(settings, db, "iris")
    student = submit_run(db, "diabetes", {"epochs": 1, "distill_from": teacher})
    assert run_writes.claim_next_run(db, worker_id="tests") == student
    assert execute(settings, student) == "failed"
    assert "teacher run" in run_store.get_run(db, student).error


@pytest.mark.slow  # `seedlab` as its own program
def test_cli_compress_prints_the_comparison(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    out = subprocess.run(
        seedlab_cmd("runs", "compress", str(run_id), "--method", "quantize"),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    assert "original" in out.stdout and "int8" in out.stdout and "latency_b64_ms" in out.stdout
    # The rest through the same entry point in this process (no second interpreter start-up).
    listed = seedlab_in_process("runs", "variants", str(run_id), "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["variants"][0]["name"] == "int8"
    bad = seedlab_in_process("runs", "compress", str(run_id), "--method", "shrink")
    assert bad.returncode == 1 and "method must be one of" in bad.stderr


# The Run page queueing export and compression jobs for a real worker: tests/test_jobs.py.


def test_run_page_says_export_needs_a_completed_run(settings, db, demo_datasets):
    from tests.support.pages import open_page

    run_id = submit_run(db, "iris", {"epochs": 1})
    at = open_page("views/run_detail.py", run=str(run_id), tab="Export & compress")
    assert "work on a completed run" in "\n".join(i.value for i in at.info)
