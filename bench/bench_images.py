"""Image datasets: ingest speed, decode vs cached-array load, and first results with the CNN.

    PYTHONPATH=. .venv/bin/python bench/bench_images.py [--images 3000] [--side 64] [--threads 1]
        [--quick] [--write-results]

Builds a ZIP of coloured shapes (three classes, PNG and JPEG mixed) in a temp SEEDLAB_HOME,
ingests it, then times `image_arrays` twice: the first call decodes every original and writes
the cache, the second loads the cached .npy. Then trains the default CNN on the shapes and on
the digits demo with the suggested settings (engine.core.defaults) and prints accuracy and time.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-train", action="store_true")
    parser.add_argument("--quick", action="store_true", help="200 images of 16 px, no training")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
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
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_metrics import RESULTS_PATH, cpu_model, replace_section

        section = "\n".join(
            [
                BEGIN,
                "## Image datasets: ingest, decode vs cached arrays, first CNN results",
                "",
                f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: "
                f"{cpu_model()}, {os.cpu_count()} cores, {args.threads} torch thread(s); load "
                "average " + "/".join(f"{x:.2f}" for x in os.getloadavg()),
                "- command: `PYTHONPATH=. .venv/bin/python bench/bench_images.py "
                + " ".join(sys.argv[1:])
                + "`",
                *lines,
                END,
            ]
        )
        replace_section(RESULTS_PATH, BEGIN, END, section)
        print(f"wrote {RESULTS_PATH}")


if __name__ == "__main__":
    main()
