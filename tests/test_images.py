"""Image classification: safe ZIP ingest, arrays and preprocessing, augmentation, models,
a real worker run, and the Datasets page — all on small generated images."""

from __future__ import annotations

import dataclasses
import io
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from db import artifacts as artifact_store
from db import datasets as dataset_store
from db import runs as run_store
from engine.core.config import RunConfig
from engine.core.errors import DatasetError
from engine.data.datasets import ingest_bytes, ingest_file
from engine.data.image_store import (
    described_image_bytes,
    image_arrays,
    load_index,
    store_for,
)
from engine.ml.device import choose_device
from engine.ml.inputs import InputSpec
from engine.ml.models.build import build_model
from engine.ml.pipeline import evaluate_on_test, prepare_dataset
from engine.ml.prep.images import ImagePreprocessor, make_augment
from engine.ml.train import ListReporter, train
from engine.services.launch import submit_run
from tests.support.images import image_bytes, make_zip, shapes_members

CPU = choose_device("cpu")


def assert_nothing_stored(settings, db) -> None:
    assert dataset_store.list_datasets(db) == []
    assert list(settings.datasets_dir.iterdir()) == []  # no dataset folder, no temp folder


def rejected(settings, db, raw: bytes, member: str, problem: str) -> None:
    with pytest.raises(DatasetError) as caught:
        ingest_bytes(settings, db, raw, filename="upload.zip", name="pics", target=None)
    message = str(caught.value)
    assert member in message and problem in message, message
    assert_nothing_stored(settings, db)


# ---------------------------------------------------------------- ingest


def test_zip_of_class_folders_is_stored_with_an_index(settings, db):
    members = shapes_members(per_class=6, prefix="my photos/")  # one wrapping folder
    members += [
        ("__MACOSX/my photos/circle/._000.png", b"mac resource fork"),
        ("my photos/.DS_Store", b"finder"),
        ("my photos/circle/Thumbs.db", b"windows"),
        ("my photos/README.txt", b"notes are not images"),
    ]
    record = ingest_bytes(
        settings, db, make_zip(members), filename="shapes.zip", name="shapes", target=None
    )
    assert record.kind == "image" and record.task == "classification"
    assert record.n_rows == 18 and record.target == "class"
    schema = record.schema
    assert schema["classes"] == ["circle", "square", "triangle"]
    assert schema["class_counts"] == {"circle": 6, "square": 6, "triangle": 6}
    assert schema["image_stats"]["width"] == {"min": 16, "median": 16, "max": 16}
    assert schema["auto_image_size"] == 16 and schema["auto_channels"] == 3
    assert set(schema["image_stats"]["formats"]) == {"PNG", "JPEG", "BMP", "WEBP"}
    assert schema["ignored_members"] == 4
    index = load_index(settings, record)
    assert len(index) == 18 and set(index["label"]) == {0, 1, 2}
    assert index["source"].iloc[0] == "my photos/circle/000.png"
    assert index["path"].iloc[0] == "circle/000.png"  # the row id: the wrapping folder dropped
    originals = {m: p for m, p in members}
    with store_for(settings, record) as store:
        assert store.packed and store.paths() == index["path"].tolist()
        assert store.labels()[:6] == ["circle"] * 6
        for row in index.itertuples():
            assert store.read_bytes(row.path) == originals[row.source]  # the bytes as uploaded
    # One pack file, not a file per image.
    stored = sorted(p.name for p in settings.resolve(record.path).iterdir())
    assert stored == ["images.pack", "index.parquet", "schema.json"]
    assert not [p for p in settings.datasets_dir.iterdir() if p.name.startswith(".tmp")]


def test_zip_from_a_file_path(settings, db, tmp_path: Path):
    path = tmp_path / "shapes.zip"
    path.write_bytes(make_zip(shapes_members(per_class=2)))
    record = ingest_file(settings, db, path, name=None, target=None)
    assert record.name == "shapes" and record.n_rows == 6


def test_absolute_path_is_rejected(settings, db):
    members = shapes_members(2) + [("/etc/cron.d/evil.png", image_bytes("circle", 1))]
    rejected(settings, db, make_zip(members), "/etc/cron.d/evil.png", "absolute path")


def test_parent_traversal_is_rejected(settings, db):
    members = shapes_members(2) + [("circle/../../evil.png", image_bytes("circle", 1))]
    rejected(settings, db, make_zip(members), "circle/../../evil.png", "outside the archive")


def test_symlink_member_is_rejected(settings, db):
    link = zipfile.ZipInfo("circle/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    rejected(
        settings,
        db,
        make_zip([*shapes_members(2), (link, b"/etc/passwd")]),
        "circle/link.png",
        "symbolic link",
    )


def test_too_many_members_is_rejected(settings, db):
    capped = dataclasses.replace(settings, max_zip_members=5)
    members = shapes_members(2)  # 6 members
    with pytest.raises(DatasetError, match="past the limit of 5 members") as caught:
        ingest_bytes(capped, db, make_zip(members), filename="a.zip", name="a", target=None)
    assert members[5][0] in str(caught.value)
    assert_nothing_stored(settings, db)


def test_zip_bomb_by_ratio_is_rejected(settings, db):
    bomb = b"\0" * (8 << 20)  # 8 MB of zeros packs into a few kB
    raw = make_zip([*shapes_members(2), ("square/huge.bmp", bomb)], deflate=True)
    assert len(raw) < 100_000
    rejected(settings, db, raw, "square/huge.bmp", "zip bomb")


def test_total_unpacked_size_is_capped(settings, db):
    capped = dataclasses.replace(settings, max_unzipped_mb=1)
    noise = np.random.default_rng(0).integers(0, 256, 700_000, dtype=np.uint8).tobytes()
    raw = make_zip([("circle/a.png", noise), ("square/b.png", noise)])
    with pytest.raises(DatasetError, match="SEEDLAB_MAX_UNZIPPED_MB") as caught:
        ingest_bytes(capped, db, raw, filename="a.zip", name="a", target=None)
    assert "square/b.png" in str(caught.value)
    assert_nothing_stored(settings, db)


def test_corrupt_image_is_rejected_after_others_were_written(settings, db):
    # The bad file comes last, so earlier images were already written to the temp folder.
    members = shapes_members(3) + [("triangle/zz_broken.png", b"\x89PNG\r\n\x1a\n garbage")]
    rejected(settings, db, make_zip(members), "triangle/zz_broken.png", "does not decode")


def test_oversized_image_is_rejected(settings, db):
    capped = dataclasses.replace(settings, max_image_pixels=200)
    with pytest.raises(DatasetError, match="SEEDLAB_MAX_IMAGE_PIXELS") as caught:
        ingest_bytes(
            capped, db, make_zip(shapes_members(2)), filename="a.zip", name="a", target=None
        )
    assert "circle/000.png" in str(caught.value) and "16×16" in str(caught.value)
    assert_nothing_stored(settings, db)


def test_empty_class_folder_is_rejected(settings, db):
    raw = make_zip([*shapes_members(2), ("birds/", b"")])
    rejected(settings, db, raw, "birds/", "has no images")


def test_one_class_or_loose_images_are_rejected(settings, db):
    one = [(f"cats/{i}.png", image_bytes("circle", i)) for i in range(3)]
    rejected(settings, db, make_zip(one), "'cats'", "at least two class folders")
    loose = [*shapes_members(2), ("stray.png", image_bytes("circle", 9))]
    rejected(settings, db, make_zip(loose), "stray.png", "not inside a class folder")
    rejected(settings, db, b"PK\x03\x04 not really a zip", "upload.zip", "not a readable ZIP")


def test_duplicate_name_is_rejected(settings, db):
    raw = make_zip(shapes_members(2))
    ingest_bytes(settings, db, raw, filename="a.zip", name="pics", target=None)
    with pytest.raises(DatasetError, match="already exists"):
        ingest_bytes(settings, db, raw, filename="a.zip", name="pics", target=None)
    assert len(list(settings.datasets_dir.iterdir())) == 1


# ---------------------------------------------------------------- arrays, preprocessing


def test_arrays_are_cached_and_match_the_playground_path(settings, db):
    record = ingest_bytes(
        settings, db, make_zip(shapes_members(6)), filename="s.zip", name="s", target=None
    )
    arrays = image_arrays(settings, record, 12, 3)
    assert arrays.shape == (18, 12, 12, 3) and arrays.dtype == np.uint8
    cache = settings.resolve(record.path) / "cache" / "12x3.npy"
    assert cache.is_file()
    assert np.array_equal(image_arrays(settings, record, 12, 3), arrays)

    config = RunConfig(image_size=12, augment_flip=True)
    data = prepare_dataset(settings, record, config, CPU)
    assert data.train_data.spec == InputSpec(kind="image", shape=(3, 12, 12))
    assert data.train_data.x_train.dtype == torch.float32
    assert data.split_sizes == {"train": 12, "val": 3, "test": 3} and data.stratified
    # Normalization was fitted on the training images: about zero mean, unit spread there.
    assert abs(float(data.train_data.x_train.mean())) < 1e-4
    # The stored preprocessor rebuilds from JSON and turns the original file into the same input.
    pre = ImagePreprocessor.from_dict(json.loads(json.dumps(data.preprocessor.to_dict())))
    assert pre.classes == ["circle", "square", "triangle"] and pre.image_size == 12
    described = data.describe_test([0])[0]
    with Image.open(io.BytesIO(described_image_bytes(described, settings.home))) as image:
        again = pre.to_tensor(image)
    assert torch.allclose(again, data.x_test[0], atol=1e-5)


def test_grayscale_dataset_gets_one_channel(settings, db):
    members = [
        (f"{c}/{i}.png", image_bytes(c, i, size=10, mode="L"))
        for c in ("circle", "square")
        for i in range(4)
    ]
    record = ingest_bytes(settings, db, make_zip(members), filename="g.zip", name="g", target=None)
    assert record.schema["auto_channels"] == 1
    data = prepare_dataset(settings, record, RunConfig(), CPU)
    assert data.train_data.spec.shape == (1, 10, 10)
    rgb = prepare_dataset(settings, record, RunConfig(channels="3", image_size=6), CPU)
    assert rgb.train_data.spec.shape == (3, 6, 6)


def test_augmentation_keeps_shape_and_is_deterministic():
    pre = ImagePreprocessor(8, 3, [0.5] * 3, [0.25] * 3, ["a", "b"])
    assert make_augment(RunConfig(), pre) is None  # off by default
    config = RunConfig(augment_flip=True, augment_crop=2, augment_rotation=15, augment_color=0.3)
    augment = make_augment(config, pre)
    batch = torch.randn(16, 3, 8, 8)
    first = augment(batch, torch.Generator().manual_seed(1))
    second = augment(batch, torch.Generator().manual_seed(1))
    other = augment(batch, torch.Generator().manual_seed(2))
    assert first.shape == batch.shape and torch.isfinite(first).all()
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert not torch.equal(first, batch)


def test_flip_and_crop_move_pixels_exactly():
    pre = ImagePreprocessor(6, 1, [0.0], [1.0], ["a", "b"])
    batch = torch.arange(8 * 36, dtype=torch.float32).view(8, 1, 6, 6)
    flipped = make_augment(RunConfig(augment_flip=True), pre)(
        batch, torch.Generator().manual_seed(0)
    )
    for out, original in zip(flipped, batch, strict=True):
        assert torch.equal(out, original) or torch.equal(out, original.flip(-1))
    assert any(not torch.equal(o, b) for o, b in zip(flipped, batch, strict=True))
    shifted = make_augment(RunConfig(augment_crop=1), pre)(batch, torch.Generator().manual_seed(0))
    for out, original in zip(shifted, batch, strict=True):
        # Every output pixel is an input pixel or the zero padding: whole-pixel shifts only.
        values = set(torch.round(out).flatten().tolist())
        assert values <= set(original.flatten().tolist()) | {0.0}
        assert torch.allclose(out, torch.round(out), atol=1e-3)


@pytest.mark.parametrize("family", ["cnn", "resnet"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (3, 5, 7)])
def test_models_fit_any_image_size(family, shape):
    config = RunConfig(model=family, cnn_width=8, cnn_depth=3)
    model = build_model(config, InputSpec(kind="image", shape=shape), 4)
    assert model(torch.randn(2, *shape)).shape == (2, 4)


def test_image_model_refuses_a_table():
    from engine.core.errors import ConfigError

    with pytest.raises(ConfigError, match="trains on image data but this dataset is tabular"):
        build_model(RunConfig(model="cnn"), InputSpec(kind="tabular", shape=(4,)), 2)


# ---------------------------------------------------------------- training


@pytest.fixture
def digits(settings, db):
    from engine.data.demo import digits_zip

    return ingest_bytes(settings, db, digits_zip(), filename="d.zip", name="digits", target=None)


def test_cnn_learns_the_digits(settings, digits):
    assert digits.n_rows == 1797 and digits.schema["auto_image_size"] == 8
    config = RunConfig(epochs=8, batch_size=64, learning_rate=3e-3, cnn_width=16)
    data = prepare_dataset(settings, digits, config, CPU)
    result = train(config, data.train_data, ListReporter(), CPU)
    report = evaluate_on_test(result.model, data, CPU)
    assert report["metrics"]["test_accuracy"] >= 0.9, report["metrics"]
    assert report["input"] == {"kind": "image", "shape": [1, 8, 8], "vocab_size": 0, "pad_index": 0}
    assert len(report["confusion_matrix"]) == 10


def test_resnet_with_augmentation_trains(settings, digits):
    config = RunConfig(
        model="resnet",
        epochs=3,
        batch_size=64,
        learning_rate=3e-3,
        cnn_width=8,
        cnn_depth=2,
        augment_crop=1,
        augment_rotation=10,
        augment_color=0.2,
    )
    data = prepare_dataset(settings, digits, config, CPU)
    result = train(config, data.train_data, ListReporter(), CPU)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    assert evaluate_on_test(result.model, data, CPU)["metrics"]["test_accuracy"] > 0.5


@pytest.mark.slow  # a real worker subprocess trains it
def test_image_run_through_a_real_worker(settings, db):
    from tests.support.engine import start_worker, stop_worker
    from tests.support.waiting import wait_until

    raw = make_zip(shapes_members(per_class=12), deflate=True)
    ingest_bytes(settings, db, raw, filename="shapes.zip", name="shapes", target=None)
    run_id = submit_run(
        db, "shapes", {"epochs": 4, "batch_size": 8, "cnn_width": 8, "augment_flip": True}
    )
    worker = start_worker()
    try:
        status = wait_until(
            lambda: (
                run_store.get_run(db, run_id).status in ("completed", "failed")
                and run_store.get_run(db, run_id).status
            ),
            timeout=120,
            what="the image run to finish",
        )
    finally:
        log = stop_worker(worker)
    run = run_store.get_run(db, run_id)
    assert status == "completed", (run.error, log)
    report = json.loads((settings.run_dir(run_id) / "report.json").read_text())
    assert report["classes"] == ["circle", "square", "triangle"]
    assert report["input"]["shape"] == [3, 16, 16]
    assert report["split_sizes"] == {"train": 26, "val": 5, "test": 5}
    assert 0.0 <= report["metrics"]["test_accuracy"] <= 1.0
    assert np.array(report["confusion_matrix"]).sum() == 5
    checkpoint = torch.load(settings.run_dir(run_id) / "model.pt", weights_only=True)
    # model=auto raced the CNN and the ResNet on the validation images; the winner trained.
    assert checkpoint["model_family"] == run.config["model"] in ("cnn", "resnet")
    assert checkpoint["preprocessor"]["image_size"] == 16
    assert checkpoint["preprocessor"]["classes"] == ["circle", "square", "triangle"]
    kinds = {a.kind for a in artifact_store.list_artifacts(db, run_id)}
    assert {"checkpoint", "report", "log", "auto_choice"} <= kinds
    for mistake in report["worst_mistakes"]:  # the stored originals, relative to SEEDLAB_HOME
        assert described_image_bytes(mistake["input"], settings.home)
        assert mistake["input"]["source"].endswith((".png", ".jpg", ".bmp", ".webp"))

    from tests.support.pages import open_page

    open_page(
        "views/run_detail.py", run=str(run_id), tab="Evaluation"
    )  # renders the image report, no exception


# ---------------------------------------------------------------- dashboard


def test_datasets_page_shows_an_image_dataset(settings, db):
    from tests.support.pages import open_page, plotly_figures

    record = ingest_bytes(
        settings, db, make_zip(shapes_members(3)), filename="s.zip", name="shapes", target=None
    )
    at = open_page("views/datasets.py", dataset=str(record.id))
    captions = "\n".join(c.value for c in at.caption)
    assert "9 images in 3 classes" in captions and "Width 16 px" in captions
    assert [m.value for m in at.markdown if "images" in m.value][:3] == [
        "**Sample images**",
        "circle · 3 images",
        "square · 3 images",
    ]
    images = at.get("image")
    assert len(images) == 3 + 9  # one strip per class, then the data browser's 9 images
    bars = plotly_figures(at)[0]["data"][0]
    assert bars["x"] == ["circle", "square", "triangle"] and bars["y"] == [3, 3, 3]


def test_upload_an_image_zip_on_the_datasets_page(settings, db):
    from tests.support.pages import button, open_page, texts

    at = open_page("views/datasets.py")
    at.file_uploader[0].set_value(
        ("pets.zip", make_zip(shapes_members(2)), "application/zip")
    ).run()
    assert not at.error, texts(at.error)
    assert at.text_input[0].value == "pets"
    button(at, "Add dataset").click().run()
    assert not at.exception and not at.error, texts(at.error)
    stored = dataset_store.get_dataset_by_name(db, "pets")
    assert stored is not None and stored.kind == "image" and stored.n_rows == 6
    assert "Added dataset 'pets': 6 images" in texts(at.success)


def test_new_run_form_shows_image_options_only_for_images(settings, db, demo_datasets):
    from tests.support.pages import open_page

    record = ingest_bytes(
        settings, db, make_zip(shapes_members(3)), filename="s.zip", name="shapes", target=None
    )
    at = open_page("views/new_run.py", dataset=str(record.id))
    labels = {w.label for w in [*at.number_input, *at.selectbox, *at.checkbox]}
    assert {"Image size (px, 0 = auto)", "Random flip", "Colour jitter"} <= labels
    model = next(s for s in at.selectbox if s.label == "Model family")
    assert model.options == ["auto → cnn", "cnn", "resnet", "pretrained"]
    iris = dataset_store.get_dataset_by_name(db, "iris")
    at = open_page("views/new_run.py", dataset=str(iris.id))
    labels = {w.label for w in [*at.number_input, *at.selectbox, *at.checkbox]}
    assert "Random flip" not in labels and "Image size (px, 0 = auto)" not in labels


def test_cli_adds_and_shows_an_image_zip(settings, tmp_path: Path):
    from tests.support.commands import cli

    path = tmp_path / "pets.zip"
    path.write_bytes(make_zip(shapes_members(2)))
    added = cli("datasets", "add", str(path))
    assert added.returncode == 0, added.stderr
    assert "Added image dataset 'pets'" in added.stdout and "6 images in 3 classes" in added.stdout
    shown = cli("datasets", "show", "pets")
    assert shown.returncode == 0, shown.stderr
    assert "6 images" in shown.stdout and "triangle" in shown.stdout
