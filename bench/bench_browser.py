"""The Datasets page's data browser: one page of 100,000 table rows and of 50,000 images.

    PYTHONPATH=. python bench/bench_browser.py [--rows N] [--images N] [--write-results]

What a page costs on the server, in this process (no Streamlit round trip, no drawing):

- first page: read the stored Parquet (what a version's frame is read from, once per version;
  the page then keeps it cached), then filter and cut out one page (engine/data/browse.py);
- next page: the filters and the page on the cached frame — by label, by text, and by a run's
  predictions (wrong ones, confidence ≥ 0.5) joined by row id;
- images: the same on a 50,000-item (row_id, label) frame, then reading the page's 50 image
  images' bytes (what st.image sends) from the dataset's image pack.

The baseline is a page without the browser's design: the whole Parquet file read again and
the filters applied on every page (no cache). Ratios are baseline / now.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_metrics import RESULTS_PATH, cpu_model, replace_section  # noqa: E402
from engine.data.browse import WRONG, BrowseFilter, browse  # noqa: E402
from engine.data.image_store import PackWriter, open_store  # noqa: E402
from engine.data.versions import apply_to_frame  # noqa: E402

BEGIN, END = "<!-- bench_browser:begin -->", "<!-- bench_browser:end -->"
PAGE = 50
CLASSES = [f"class_{i}" for i in range(10)]
WORDS = np.array("the quick brown fox jumps over a lazy dog while rain falls softly".split())


def _table(rows: int, rng: np.random.Generator) -> pd.DataFrame:
    words = WORDS[rng.integers(0, len(WORDS), size=(rows, 6))]
    return pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.integers(0, 1000, size=rows),
            "city": rng.choice(["Paris", "Lyon", "Nantes", "Lille"], size=rows),
            "note": [" ".join(w) for w in words],
            "label": rng.choice(CLASSES, size=rows),
        }
    )


def _predictions(row_ids: pd.Series, labels: pd.Series, rng: np.random.Generator) -> pd.DataFrame:
    test = rng.choice(len(row_ids), size=len(row_ids) // 5, replace=False)
    predicted = np.where(
        rng.random(len(test)) < 0.8, labels.iloc[test], rng.choice(CLASSES, len(test))
    )
    return pd.DataFrame(
        {
            "row_id": row_ids.iloc[test].to_numpy(),
            "true": labels.iloc[test].to_numpy(),
            "predicted": predicted,
            "correct": predicted == labels.iloc[test].to_numpy(),
            "confidence": rng.uniform(0.1, 1.0, len(test)),
        }
    )


def _time(fn: Callable[[], object], repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def run(rows: int, images: int, repeats: int) -> list[tuple[str, str, list[float]]]:
    rng = np.random.default_rng(0)
    results: list[tuple[str, str, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-browser-") as tmp:
        folder = Path(tmp)
        table = _table(rows, rng)
        path = folder / "data.parquet"
        table.to_parquet(path, index=False)

        # A version 2: ten rows relabelled, five left out (engine/data/versions.py applies it).
        patch = {
            "labels": {str(i): "class_0" for i in range(0, rows, rows // 10)},
            "excluded": [str(i) for i in range(1, rows, rows // 5)],
        }

        def read_version() -> pd.DataFrame:
            # As dataset_versions.load_version_frame: the base file, the patch, a row_id column.
            frame = apply_to_frame(pd.read_parquet(path), patch, "label")
            row_ids = frame.index.astype(str)
            frame = frame.reset_index(drop=True)
            frame.insert(0, "row_id", row_ids)
            return frame

        frame = read_version()
        predictions = _predictions(frame["row_id"], frame["label"], rng)
        cases = {
            "no filter": BrowseFilter(),
            "label": BrowseFilter(labels=("class_3",)),
            "text search": BrowseFilter(search="lazy dog"),
            "run's wrong predictions, confidence ≥ 0.5": BrowseFilter(
                correctness=WRONG, min_confidence=0.5
            ),
        }
        for name, filters in cases.items():
            uses_run = filters.uses_predictions()

            def page(data: pd.DataFrame, filters: BrowseFilter = filters, run: bool = uses_run):
                return browse(
                    data,
                    label_column="label",
                    search_columns=["city", "note"],
                    filters=filters,
                    predictions=predictions if run else None,
                    page=3,
                    page_size=PAGE,
                )

            results.append(
                (f"{rows:,} rows: next page, {name}", "now", _time(lambda: page(frame), repeats))
            )
            results.append(
                (
                    f"{rows:,} rows: next page, {name}",
                    "baseline",
                    _time(lambda: page(read_version()), repeats),
                )
            )
        results.append(
            (
                f"{rows:,} rows: first page (read version 2: base file + patch, then the page)",
                "now",
                _time(
                    lambda: browse(
                        read_version(),
                        label_column="label",
                        search_columns=[],
                        filters=BrowseFilter(),
                        page=0,
                        page_size=PAGE,
                    ),
                    repeats,
                ),
            )
        )

        # The image store as ingested now (engine/data/image_store.py): one pack file.
        image_dir = folder / "images"
        image_dir.mkdir()
        png = io.BytesIO()
        Image.new("L", (8, 8), 128).save(png, format="PNG")  # the digits' size
        writer = PackWriter(image_dir)
        for i in range(images):
            label = i % len(CLASSES)
            writer.add(f"{CLASSES[label]}/{i:06d}.png", png.getvalue(), source="", label=label)
        writer.finish()
        with open_store(image_dir) as store:
            item_frame = pd.DataFrame(store.items(), columns=["row_id", "label"])
        image_predictions = _predictions(item_frame["row_id"], item_frame["label"], rng)

        def image_page(filters: BrowseFilter) -> int:
            shown = browse(
                item_frame,
                label_column="label",
                search_columns=[],
                filters=filters,
                predictions=image_predictions if filters.uses_predictions() else None,
                page=7,
                page_size=PAGE,
            )
            # As the page: the store opened (its index read, the pack mapped) for each page.
            with open_store(image_dir) as store:
                return sum(len(store.read_bytes(r)) for r in shown.rows["row_id"])

        for name, filters in {
            "no filter": BrowseFilter(),
            "label + path search": BrowseFilter(labels=("class_3",), search="0001"),
            "run's wrong predictions": BrowseFilter(correctness=WRONG),
        }.items():
            results.append(
                (
                    f"{images:,} images: a page of {PAGE} (store opened, bytes read), {name}",
                    "now",
                    _time(lambda f=filters: image_page(f), repeats),
                )
            )
    return results


def report(results: list[tuple[str, str, list[float]]], command: str, load: tuple[str, str]) -> str:
    lines = [
        BEGIN,
        "## Data browser: a page of 100,000 rows and of 50,000 images",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {cpu_model()}; Python {sys.version.split()[0]}",
        f"- command: `{command}`",
        f"- load average before: {load[0]}, after: {load[1]}",
        "",
        "| case | variant | median s | min–max s | × faster than baseline |",
        "|---|---|---:|---:|---:|",
    ]
    medians = {(c, v): statistics.median(t) for c, v, t in results}
    for case, variant, times in results:
        base = medians.get((case, "baseline"))
        ratio = f"{base / medians[(case, variant)]:.1f}×" if base and variant == "now" else ""
        lines.append(
            f"| {case} | {variant} | {statistics.median(times):.3f} | "
            f"{min(times):.3f}–{max(times):.3f} | {ratio} |"
        )
    lines += [
        "",
        "- now: the page's filters on the version's rows, read once per version and cached by "
        "the page (versions never change); baseline: the Parquet file read again on every page.",
        "- Server side only, in one process: Streamlit's round trip and the browser's drawing "
        "come on top. Timings move with the machine's load (above); compare ratios.",
        END,
    ]
    return "\n".join(lines)


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    before = _load()
    results = run(args.rows, args.images, args.repeats)
    after = _load()
    command = (
        "PYTHONPATH=. python bench/bench_browser.py"
        + (
            ""
            if args.rows == 100_000 and args.images == 50_000
            else f" --rows {args.rows} --images {args.images}"
        )
        + " --write-results"
    )
    section = report(results, command, (before, after))
    print(section)
    if args.write_results:
        replace_section(RESULTS_PATH, BEGIN, END, section)


if __name__ == "__main__":
    main()
