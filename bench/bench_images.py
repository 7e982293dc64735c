"""Image datasets: ingest speed, decode vs cached-array load, and first results with the CNN.

    PYTHONPATH=. .venv/bin/python bench/bench_images.py [--images 3000] [--side 64] [--threads 1]
        [--quick] [--write-results]
    PYTHONPATH=. .venv/bin/python bench/bench_images.py --store-only [--store-images 30000]
        [--write-results]

Builds a ZIP of coloured shapes (three classes, PNG and JPEG mixed) in a temp SEEDLAB_HOME,
ingests it, then times `image_arrays` twice: the first call decodes every original and writes
the cache, the second loads the cached .npy. Then trains the default CNN on the shapes and on
the digits demo with the suggested settings (engine.core.defaults) and prints accuracy and time.

The store section (its own RESULTS.md section) ingests a ZIP of tiny 8×8 digit-like PNGs both
ways — the pack of today and the one-file-per-image layout of before (the old ingest, replayed
here) — and compares the disk they take (allocated blocks, as `du` counts), the ingest time,
random-access reads of the original bytes, and the first decode of every image into the array
cache (what a training run does once per image size).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

COLOURS = {"circle": (220, 40, 40), "square": (40, 160, 40), "triangle": (40, 60, 220)}


def shape_image(shape: str, rng: np.random.Generator, side: int) -> Image.Image:
    image = Image.fromarray(rng.integers(150, 256, (side, side, 3), dtype=np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    r = int(rng.integers(side // 6, side // 2 - 1))
    cx, cy = (int(v) for v in rng.integers(r, side - r, 2))
    # The colour varies a lot, so the model has to look at the shape, not only the hue.
    colour = tuple(int(c) for c in rng.integers(0, 200, 3))
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=colour)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    return image


def shapes_zip(n: int, side: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for i in range(n):
            shape = list(COLOURS)[i % 3]
            out = io.BytesIO()
            fmt = "PNG" if i % 2 else "JPEG"
            shape_image(shape, rng, side).save(out, format=fmt)
            zf.writestr(f"shapes/{shape}/{i:05d}.{fmt.lower()}", out.getvalue())
    return buffer.getvalue()


def train_once(settings, record, overrides: dict) -> tuple[float, float, dict]:  # noqa: ANN001
    from engine.core.config import RunConfig
    from engine.core.defaults import suggest_for_dataset
    from engine.ml.device import choose_device
    from engine.ml.pipeline import evaluate_on_test, prepare_dataset
    from engine.ml.train import ListReporter, train

    values = {**suggest_for_dataset(record), **overrides}
    config = RunConfig(**values)
    choice = choose_device("auto")
    started = time.perf_counter()
    data = prepare_dataset(settings, record, config, choice)
    result = train(config, data.train_data, ListReporter(), choice)
    report = evaluate_on_test(result.model, data, choice)
    used = {k: getattr(config, k) for k in ("epochs", "batch_size", "learning_rate")}
    used["epochs_run"] = result.epochs_completed
    return report["metrics"]["test_accuracy"], time.perf_counter() - started, used


def loading_throughput(settings, record, epochs: int) -> dict[str, float]:  # noqa: ANN001
    """Training images/s of the same CNN run held in memory vs streamed from the memory-mapped
    cache (DataLoader with 0 and with 2 worker processes); interleaved, best of two."""
    from engine.core.config import RunConfig
    from engine.ml.device import choose_device
    from engine.ml.pipeline import prepare_dataset
    from engine.ml.train import ListReporter, train

    choice = choose_device("auto")
    variants = {
        "in memory (tensors on the device)": {"data_loading": "memory"},
        "streamed, 0 loader workers": {"data_loading": "stream", "loader_workers": 0},
        "streamed, 2 loader workers": {"data_loading": "stream", "loader_workers": 2},
    }
    best: dict[str, float] = {}
    for _ in range(2):
        for name, values in variants.items():
            config = RunConfig(epochs=epochs, batch_size=64, cnn_width=8, **values)
            data = prepare_dataset(settings, record, config, choice)
            started = time.perf_counter()
            train(config, data.train_data, ListReporter(), choice)
            rate = len(data.train_data.y_train) * epochs / (time.perf_counter() - started)
            best[name] = max(best.get(name, 0.0), rate)
    return best


BEGIN, END = "<!-- bench_images:begin -->", "<!-- bench_images:end -->"
STORE_BEGIN = "<!-- bench_images_store:begin -->"
STORE_END = "<!-- bench_images_store:end -->"


def tiny_digits_zip(n: int, seed: int = 0) -> bytes:
    """n 8×8 grayscale PNGs in ten class folders, deflated (a small ZIP of many tiny files)."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            pixels = (rng.integers(0, 17, (8, 8)) * 15).astype(np.uint8)
            out = io.BytesIO()
            Image.fromarray(pixels, "L").save(out, format="PNG")
            zf.writestr(f"digits/{i % 10}/{i:06d}.png", out.getvalue())
    return buffer.getvalue()


def disk_usage(folder: Path) -> tuple[int, int, int]:
    """(allocated bytes as `du` counts them, apparent bytes, files) under folder."""
    allocated = apparent = files = 0
    for path in folder.rglob("*"):
        if path.is_file():
            st = path.stat()
            allocated += st.st_blocks * 512
            apparent += st.st_size
            files += 1
    return allocated, apparent, files


def old_layout_ingest(settings, raw: bytes, folder: Path) -> None:  # noqa: ANN001
    """The ingest before packs, replayed: one file per image plus an index with `file`."""
    import json

    import pandas as pd

    from engine.data.image_zip import decode_image, plan_zip, read_member
    from engine.data.images import build_image_schema, zip_caps

    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        plan = plan_zip(zf, zip_caps(settings))
        label_of = {c: i for i, c in enumerate(plan.classes)}
        rows = []
        for info, class_name in plan.images:
            data = read_member(zf, info)
            decoded = decode_image(data, info.filename, settings.max_image_pixels)
            label = label_of[class_name]
            rel = f"images/{label}/{len(rows):06d}{Path(info.filename).suffix.lower()}"
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
            rows.append(
                {
                    "file": rel,
                    "source": info.filename,
                    "label": label,
                    "width": decoded.width,
                    "height": decoded.height,
                    "mode": decoded.mode,
                    "format": decoded.format,
                }
            )
    index = pd.DataFrame(rows)
    index.to_parquet(folder / "index.parquet", index=False)
    (folder / "schema.json").write_text(json.dumps(build_image_schema(index, plan.classes)))


def store_section(settings, db, n: int, say) -> None:  # noqa: ANN001
    """Disk, ingest time and read speed of the pack vs one file per image (same ZIP)."""
    from types import SimpleNamespace

    from engine.data.datasets import ingest_bytes
    from engine.data.image_store import image_arrays, open_store

    raw = tiny_digits_zip(n)
    started = time.perf_counter()
    record = ingest_bytes(settings, db, raw, filename="tiny.zip", name="tiny", target=None)
    new_ingest = time.perf_counter() - started
    new_folder = settings.resolve(record.path)
    old_folder = settings.datasets_dir / "old-layout"
    old_folder.mkdir()
    started = time.perf_counter()
    old_layout_ingest(settings, raw, old_folder)
    old_ingest = time.perf_counter() - started

    new_du, new_bytes, new_files = disk_usage(new_folder)
    old_du, old_bytes, old_files = disk_usage(old_folder)
    say(f"ZIP of {n:,} 8×8 PNGs: {len(raw) / 1e6:.1f} MB")
    say(
        f"one file per image (before): {old_du / 1e6:.1f} MB on disk in {old_files:,} files "
        f"({old_bytes / 1e6:.1f} MB of bytes); ingest {old_ingest:.1f} s"
    )
    say(
        f"pack (now): {new_du / 1e6:.1f} MB on disk in {new_files} files "
        f"({new_bytes / 1e6:.1f} MB of bytes); ingest {new_ingest:.1f} s"
    )
    say(
        f"disk: {old_du / max(new_du, 1):.0f}× smaller; ingest "
        f"{old_ingest / max(new_ingest, 1e-9):.2f}× the speed of before"
    )

    rng = np.random.default_rng(1)
    with open_store(new_folder) as new, open_store(old_folder) as old:
        assert new.paths() == old.paths()
        order = [new.paths()[i] for i in rng.permutation(len(new))]
        rates: dict[str, float] = {}
        for _ in range(3):  # interleaved, best of three (the page cache is warm for both)
            for name, store in (("files", old), ("pack", new)):
                started = time.perf_counter()
                for path in order:
                    store.read_bytes(path)
                rate = len(order) / (time.perf_counter() - started)
                rates[name] = max(rates.get(name, 0.0), rate)
    say(
        f"random-access reads of the original bytes: files {rates['files']:,.0f} images/s, "
        f"pack {rates['pack']:,.0f} images/s ({rates['pack'] / rates['files']:.1f}× files)"
    )

    decode: dict[str, float] = {}
    for _ in range(2):
        for name, folder in (("files", old_folder), ("pack", new_folder)):
            for cache in (folder / "cache").glob("*.npy"):
                cache.unlink()
            stand_in = SimpleNamespace(
                id=0, name=name, kind="image", schema=record.schema,
                path=str(folder.relative_to(settings.home)),
            )  # fmt: skip
            started = time.perf_counter()
            image_arrays(settings, stand_in, 8, 1)
            rate = n / (time.perf_counter() - started)
            decode[name] = max(decode.get(name, 0.0), rate)
    say(
        f"first decode of every image into the training cache (8 px, 1 channel): files "
        f"{decode['files']:,.0f} images/s, pack {decode['pack']:,.0f} images/s "
        f"({decode['pack'] / decode['files']:.2f}× files); later runs read the cache either way"
    )


def write_section(begin: str, end: str, title: str, lines: list[str], threads: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_metrics import RESULTS_PATH, cpu_model, replace_section

    section = "\n".join(
        [
            begin,
            title,
            "",
            f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: "
            f"{cpu_model()}, {os.cpu_count()} cores, {threads} torch thread(s); load "
            "average " + "/".join(f"{x:.2f}" for x in os.getloadavg()),
            "- command: `PYTHONPATH=. .venv/bin/python bench/bench_images.py "
            + " ".join(sys.argv[1:])
            + "`",
            *lines,
            end,
        ]
    )
    replace_section(RESULTS_PATH, begin, end, section)
    print(f"wrote {RESULTS_PATH}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--quick", action="store_true", help="200 images of 16 px, no training")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--store-only", action="store_true", help="only the pack vs files part")
    parser.add_argument("--store-images", type=int, default=30000)
    args = parser.parse_args()
    if args.quick:
        args.images, args.side, args.no_train = 200, 16, True

    import torch

    torch.set_num_threads(args.threads)
    home = Path(tempfile.mkdtemp(prefix="seedlab-bench-images-")) / "home"
    os.environ["SEEDLAB_HOME"] = str(home)
    from db.migrate import upgrade_to_head
    from db.session import get_db
    from engine.core.settings import Settings
    from engine.data.datasets import ingest_bytes
    from engine.data.demo import digits_zip
    from engine.data.image_store import image_arrays

    settings = Settings.from_env()
    settings.ensure_dirs()
    db = get_db(settings)
    upgrade_to_head(db)
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(f"- {line}")

    if args.store_only:
        store_section(settings, db, args.store_images, say)
        if args.write_results:
            title = "## Image store: one pack vs one file per image (disk, ingest, reads)"
            write_section(STORE_BEGIN, STORE_END, title, lines, args.threads)
        return

    raw = shapes_zip(args.images, args.side)
    started = time.perf_counter()
    record = ingest_bytes(settings, db, raw, filename="shapes.zip", name="shapes", target=None)
    ingest_s = time.perf_counter() - started
    mb = len(raw) / 1e6
    say(f"ingest {args.images} images of {args.side}px ({mb:.1f} MB): {ingest_s:.2f} s")
    size, channels = record.schema["auto_image_size"], record.schema["auto_channels"]
    timings = []
    for label in ("decode + cache", "cached load"):
        started = time.perf_counter()
        arrays = image_arrays(settings, record, size, channels)
        timings.append(time.perf_counter() - started)
        say(f"{label} → {arrays.shape}: {timings[-1]:.3f} s")
    say(f"cached load is {timings[0] / max(timings[1], 1e-9):.0f}× faster than decoding")
    rates = loading_throughput(settings, record, epochs=1 if args.quick else 2)
    memory_rate = rates["in memory (tensors on the device)"]
    for name, rate in rates.items():
        say(f"training {name}: {rate:,.0f} images/s ({rate / memory_rate:.2f}× in memory)")

    if not args.no_train:
        digits = ingest_bytes(
            settings, db, digits_zip(), filename="d.zip", name="digits", target=None
        )
        # The ResNet on 32-px shapes is GPU-sized (minutes per epoch on 2 CPU cores).
        for name, rec, models in (
            ("digits", digits, ("cnn", "resnet")),
            ("shapes", record, ("cnn",)),
        ):
            for model in models:
                accuracy, seconds, used = train_once(settings, rec, {"model": model})
                say(f"{name} {model} {used}: test accuracy {accuracy:.3f} in {seconds:.1f} s")

    if args.write_results:
        title = "## Image datasets: ingest, decode vs cached arrays, first CNN results"
        write_section(BEGIN, END, title, lines, args.threads)


if __name__ == "__main__":
    main()
