"""The image pack: one file of original bytes plus a Parquet index per image dataset; datasets
stored one file per image (before packs) read through the same API and can be packed."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.core.config import RunConfig
from engine.core.errors import DatasetError
from engine.data.datasets import ingest_bytes
from engine.data.image_store import (
    PACK_NAME,
    described_image_bytes,
    image_arrays,
    open_store,
    pack_folder,
    sample_images,
    store_for,
)
from engine.ml.device import choose_device
from engine.ml.pipeline import prepare_dataset
from tests.support.images import image_bytes, make_zip, shapes_members

CPU = choose_device("cpu")


def ingest(settings, db, members, name="shapes"):  # noqa: ANN001, ANN201
    return ingest_bytes(
        settings, db, make_zip(members), filename=f"{name}.zip", name=name, target=None
    )


def to_old_layout(folder) -> None:  # noqa: ANN001
    """Rewrite a packed dataset folder as the ingest before packs left it: images/<label>/<n>
    <suffix> files and an index with a `file` column (no path, offset, length, crc32)."""
    with open_store(folder) as store:
        rows = []
        for i, row in enumerate(store.index.itertuples(index=False)):
            rel = f"images/{row.label}/{i:06d}.{row.source.rsplit('.', 1)[-1].lower()}"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(store.read_bytes_at(i))
            rows.append(
                {
                    "file": rel,
                    "source": row.source,
                    "label": row.label,
                    "width": row.width,
                    "height": row.height,
                    "mode": row.mode,
                    "format": row.format,
                }
            )
    pd.DataFrame(rows).to_parquet(folder / "index.parquet", index=False)
    (folder / PACK_NAME).unlink()


def test_pack_round_trip_keeps_every_byte(settings, db):
    members = shapes_members(per_class=5, prefix="photos/")
    record = ingest(settings, db, members)
    originals = dict(members)
    with store_for(settings, record) as store:
        assert store.packed and len(store) == 15
        paths = store.paths()
        assert paths[0] == "circle/000.png" and len(set(paths)) == 15
        for path, source in zip(paths, store.index["source"], strict=True):
            assert store.read_bytes(path) == originals[source]
        image = store.read_image(paths[0])
        assert image.size == (16, 16)
        assert store.labels() == [p.split("/")[0] for p in paths]
        with pytest.raises(DatasetError, match="no image 'circle/nope.png'"):
            store.read_bytes("circle/nope.png")
    # The pack is the bytes plus a 16-byte header: nothing re-encoded, nothing padded.
    pack = settings.resolve(record.path) / PACK_NAME
    assert pack.stat().st_size == 16 + sum(len(b) for b in originals.values())
    samples = sample_images(settings, record, per_class=2)
    assert list(samples) == ["circle", "square", "triangle"]
    assert samples["circle"][0] == originals["photos/circle/000.png"]


def test_a_member_path_twice_in_the_zip_is_refused(settings, db):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf, pytest.warns(UserWarning, match="Duplicate"):
        for name in ("a/1.png", "b/1.png", "a/1.png"):
            zf.writestr(name, image_bytes("circle", 1))
    with pytest.raises(DatasetError, match="'a/1.png' appears twice in the archive"):
        ingest_bytes(settings, db, buffer.getvalue(), filename="d.zip", name="d", target=None)
    assert not list(settings.datasets_dir.iterdir())


def test_an_old_one_file_per_image_dataset_reads_and_packs(settings, db):
    record = ingest(settings, db, shapes_members(per_class=4, prefix="photos/"))
    folder = settings.resolve(record.path)
    with store_for(settings, record) as store:
        packed_paths, packed_bytes = store.paths(), list(store.iter_bytes())
    packed_arrays = image_arrays(settings, record, 12, 3)
    for cache in (folder / "cache").iterdir():
        cache.unlink()
    to_old_layout(folder)

    with store_for(settings, record) as old:
        assert not old.packed
        assert old.paths() == packed_paths  # the same row ids as a fresh ingest
        assert list(old.iter_bytes()) == packed_bytes
    assert np.array_equal(image_arrays(settings, record, 12, 3), packed_arrays)
    assert sample_images(settings, record, 1)["circle"] == [packed_bytes[0]]  # the Datasets grid
    data = prepare_dataset(settings, record, RunConfig(image_size=12), CPU)
    described = data.describe_test([0])[0]
    assert (settings.home / described["image"]).is_file()  # still a real file in this layout
    assert described_image_bytes(described, settings.home) in packed_bytes
    assert described_image_bytes({"image": described["image"]}, settings.home) in packed_bytes

    assert pack_folder(folder) is True
    assert not (folder / "images").exists() and (folder / PACK_NAME).is_file()
    with store_for(settings, record) as store:
        assert store.packed and store.paths() == packed_paths
        assert list(store.iter_bytes()) == packed_bytes
    for cache in (folder / "cache").iterdir():
        cache.unlink()
    assert np.array_equal(image_arrays(settings, record, 12, 3), packed_arrays)
    assert pack_folder(folder) is False  # already packed


def test_a_truncated_or_foreign_pack_is_refused_with_a_sentence(settings, db):
    record = ingest(settings, db, shapes_members(per_class=3))
    pack = settings.resolve(record.path) / PACK_NAME
    whole = pack.read_bytes()

    pack.write_bytes(whole[:-10])
    with pytest.raises(DatasetError, match="truncated or overwritten") as caught:
        store_for(settings, record)
    assert "Upload the ZIP again" in str(caught.value) and "'shapes'" in str(caught.value)
    with pytest.raises(DatasetError, match="truncated"):
        image_arrays(settings, record, 8, 3)

    pack.write_bytes(b"PK" + whole[2:])
    with pytest.raises(DatasetError, match="is not a Seedlab image pack"):
        store_for(settings, record)

    pack.unlink()
    with pytest.raises(DatasetError, match="cannot be read"):
        store_for(settings, record)


def test_a_damaged_image_in_the_pack_is_refused_when_read(settings, db):
    record = ingest(settings, db, shapes_members(per_class=3))
    pack = settings.resolve(record.path) / PACK_NAME
    with store_for(settings, record) as store:
        second = store.paths()[1]
        offset = int(store.index["offset"].iat[1])
    damaged = bytearray(pack.read_bytes())
    damaged[offset + 20] ^= 0xFF  # same size: only the checksum can tell
    pack.write_bytes(bytes(damaged))
    with store_for(settings, record) as store:
        assert store.read_image(store.paths()[0]).size == (16, 16)  # the others still read
        with pytest.raises(DatasetError, match="damaged in its pack file"):
            store.read_bytes(second)
    with pytest.raises(DatasetError, match="damaged"):
        image_arrays(settings, record, 8, 3)
    # The Run page shows a missing picture rather than failing.
    folder = record.path
    assert described_image_bytes({"dataset": folder, "row_id": second}, settings.home) is None


def test_report_images_outside_the_home_are_not_read(settings, db, tmp_path):
    outside = tmp_path / "secret.png"
    Image.new("RGB", (4, 4)).save(outside)
    assert described_image_bytes({"image": str(outside)}, settings.home) is None
    assert described_image_bytes({"dataset": "..", "row_id": "x.png"}, settings.home) is None


def test_an_image_bundle_copies_its_examples_out_of_the_pack(settings, db, tmp_path):
    from engine.deploy.export import export_run
    from tests.support.data import completed_run

    record = ingest(settings, db, shapes_members(per_class=8))
    run_id = completed_run(settings, db, record.name, epochs=1, cnn_depth=1, cnn_width=4)
    bundle = export_run(settings, db, run_id, "bundle", tmp_path)
    with zipfile.ZipFile(bundle.path) as archive:
        examples = [n for n in archive.namelist() if "/examples/" in n and n[-1] != "/"]
        with store_for(settings, record) as store:
            stored = set(store.iter_bytes())
            assert examples and all(archive.read(n) in stored for n in examples)


def test_a_version_patch_relabels_and_excludes_without_touching_the_pack(settings, db):
    record = ingest(settings, db, shapes_members(per_class=3))
    pack = settings.resolve(record.path) / PACK_NAME
    before = pack.read_bytes()
    arrays = image_arrays(settings, record, 8, 3)
    with store_for(settings, record) as store:
        first, second = store.paths()[:2]
        patch = {"labels": {first: "square"}, "excluded": [second]}
        items = store.items(patch)
        assert len(items) == 8 and items[0] == (first, "square")
        assert second not in dict(items)
        view = store.version_index(patch)
        # Each row keeps its place in the pack and the array cache: versions share both.
        assert view["position"].tolist() == [0, *range(2, 9)]
        assert np.array_equal(arrays[view["position"].to_numpy()], np.delete(arrays, 1, axis=0))
        assert store.items() == list(zip(store.paths(), store.labels(), strict=True))
        with pytest.raises(DatasetError, match="'bird' is not a class .* circle, square"):
            store.items({"labels": {first: "bird"}})
        with pytest.raises(DatasetError, match="no image 'circle/zzz.png'"):
            store.items({"excluded": ["circle/zzz.png"]})
    assert pack.read_bytes() == before
