"""engine/deploy/export.py and bundle.py: a completed run's model as files that run elsewhere."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from db import artifacts as artifact_store
from engine.core.run_files import checkpoint_path
from engine.data.demo import register_demo_datasets
from engine.deploy.export import ExportError, check_onnx, export_run, read_exports
from engine.deploy.finished_run import RunNotReady, load_finished_run
from engine.ml.predictor import Predictor
from engine.services.launch import submit_run
from tests.support.commands import child_env, seedlab_cmd, seedlab_in_process
from tests.support.data import completed_run


@pytest.fixture
def image_datasets(settings, db):
    return register_demo_datasets(settings, db, images=True)


def _unzip(path, into):
    with zipfile.ZipFile(path) as archive:
        archive.extractall(into)
    (folder,) = [p for p in into.iterdir() if p.is_dir()]
    return folder


def test_onnx_matches_torch_on_the_test_split_for_tables(settings, db, demo_datasets, tmp_path):
    run_id = completed_run(settings, db, "iris")
    result = export_run(settings, db, run_id, "onnx")
    assert result.checked_rows > 0 and result.max_abs_diff is not None
    assert result.max_abs_diff < 1e-4
    # Stored: the Run page shows the check from exports.json.
    assert read_exports(settings, run_id)["onnx"]["max_abs_diff"] == result.max_abs_diff
    kinds = {a.kind for a in artifact_store.list_artifacts(db, run_id)}
    assert "onnx" in kinds
    # Independently: onnxruntime on a fresh batch of real rows gives the model's outputs.
    import onnxruntime

    finished = load_finished_run(settings, db, run_id)
    session = onnxruntime.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    x = finished.data.x_test[:7]
    ours = finished.predictor.model(x).detach().numpy()
    assert np.abs(session.run(None, {"input": x.numpy()})[0] - ours).max() < 1e-4
    # The check refuses a file that predicts differently from the model (here: the model's
    # weights moved after the export), saying so.
    model = finished.predictor.model
    with torch.no_grad():
        next(model.parameters()).add_(0.5)
    with pytest.raises(ExportError, match=r"differ from PyTorch's by up to .* than the 1e-04"):
        check_onnx(Path(result.path), model, finished.data.x_test)


def test_onnx_and_torchscript_for_an_image_cnn(settings, db, image_datasets, tmp_path):
    run_id = completed_run(settings, db, "digits", epochs=1, cnn_depth=2, cnn_width=8)
    onnx = export_run(settings, db, run_id, "onnx")
    assert onnx.checked_rows > 0 and onnx.max_abs_diff < 1e-4
    script = export_run(settings, db, run_id, "torchscript", tmp_path / "out")
    loaded = torch.jit.load(script.path)
    predictor = Predictor.load(checkpoint_path(settings, run_id))
    x = predictor.example_input(3) + torch.randn(3, *predictor.spec.shape)
    assert torch.allclose(loaded(x), predictor.model(x), atol=1e-5)


def test_torchscript_round_trip_for_a_table(settings, db, demo_datasets, tmp_path):
    run_id = completed_run(settings, db, "iris")
    result = export_run(settings, db, run_id, "torchscript", tmp_path)
    loaded = torch.jit.load(result.path)
    finished = load_finished_run(settings, db, run_id)
    x = finished.data.x_test
    assert torch.allclose(loaded(x), finished.predictor.model(x), atol=1e-6)


@pytest.mark.slow  # the bundle runs in a fresh interpreter
def test_table_bundle_predicts_without_seedlab(settings, db, demo_datasets, tmp_path):
    run_id = completed_run(settings, db, "iris")
    result = export_run(settings, db, run_id, "bundle", tmp_path)
    folder = _unzip(result.path, tmp_path / "unzipped")
    names = {p.name for p in folder.iterdir()}
    assert {"model.pt2", "preprocessing.json", "classes.json", "predict.py", "example.csv"} <= names
    assert json.loads((folder / "classes.json").read_text()) == [
        "setosa",
        "versicolor",
        "virginica",
    ]
    # A clean interpreter whose path does not reach Seedlab: only torch/numpy/pandas.
    out = subprocess.run(
        [sys.executable, "-I", "predict.py", "example.csv"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    got = pd.read_csv(io.StringIO(out.stdout))
    example = pd.read_csv(folder / "example.csv")
    want = Predictor.load(checkpoint_path(settings, run_id)).predict(example)
    assert list(got["prediction"]) == list(want["prediction"])
    assert np.allclose(got.filter(like="p(").to_numpy(), want.filter(like="p(").to_numpy(), 1e-5)


@pytest.mark.slow  # the bundle runs in a fresh interpreter
def test_text_bundle_and_onnx(settings, db, demo_datasets, tmp_path):
    run_id = completed_run(settings, db, "support_tickets", epochs=1, embedding_dim=16)
    onnx = export_run(settings, db, run_id, "onnx")
    assert onnx.max_abs_diff < 1e-4
    folder = _unzip(export_run(settings, db, run_id, "bundle", tmp_path).path, tmp_path / "u")
    out = subprocess.run(
        [sys.executable, "-I", "predict.py", "example.csv", "out.csv"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    got = pd.read_csv(folder / "out.csv")
    want = Predictor.load(checkpoint_path(settings, run_id)).predict(
        pd.read_csv(folder / "example.csv")
    )
    assert np.allclose(got.filter(like="p(").to_numpy(), want.filter(like="p(").to_numpy(), 1e-5)


def test_lstm_cannot_go_to_onnx_and_says_why(settings, db, demo_datasets, tmp_path):
    run_id = completed_run(
        settings, db, "support_tickets", epochs=1, model="lstm", embedding_dim=8, rnn_hidden_size=8
    )
    with pytest.raises(ExportError, match="LSTM text model cannot be exported to onnx"):
        export_run(settings, db, run_id, "onnx")
    assert "onnx" not in read_exports(settings, run_id)
    assert not list((settings.run_dir(run_id) / "exports").glob("*.onnx"))
    # TorchScript traces packing, so the bundle still works.
    bundle = export_run(settings, db, run_id, "bundle", tmp_path)
    folder = _unzip(bundle.path, tmp_path / "u")
    assert json.loads((folder / "preprocessing.json").read_text())["model_format"] == "torchscript"


def test_queued_run_is_refused_with_what_to_do(settings, db, demo_datasets):
    run_id = submit_run(db, "iris", {"epochs": 1})
    with pytest.raises(RunNotReady, match="queued.*only a completed run"):
        export_run(settings, db, run_id, "onnx")
    with pytest.raises(ExportError, match="format must be one of"):
        export_run(settings, db, run_id, "tflite")


@pytest.mark.slow  # `seedlab` as its own program
def test_cli_export_writes_where_asked_and_fails_in_one_line(settings, db, demo_datasets, tmp_path):
    run_id = completed_run(settings, db, "iris")
    out = subprocess.run(
        seedlab_cmd("runs", "export", str(run_id), "-f", "torchscript", "-o", str(tmp_path)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "model.torchscript.pt").is_file() and "wrote" in out.stdout
    bad = seedlab_in_process("runs", "export", "999", "--format", "onnx")  # same entry point
    assert bad.returncode == 1 and "no run 999" in bad.stderr.lower().replace("#", "")
    assert "Traceback" not in bad.stderr
