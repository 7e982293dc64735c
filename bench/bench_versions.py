"""Storage cost of a dataset edit: relabel 10 rows of a 100,000-row table.

    PYTHONPATH=. python bench/bench_versions.py [--rows N] [--edits N] [--write-results]

A temporary SEEDLAB_HOME gets a synthetic table of `--rows` rows (8 numeric features, a
3-class target), stored as usual (Parquet). Then `--edits` successive edits each relabel 10
rows (engine.services.dataset_versions.edit). Measured per edit: the bytes the new version adds
— its row in dataset_versions (the JSON patch dominates; patches are cumulative, so the last is
the largest) and the growth of the SQLite file and of SEEDLAB_HOME's files — against the
baseline of copying the data file per version (what a copy-per-version store would add). The
issue's bound: ≤ 64 KB per edit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

BEGIN, END = "<!-- bench_versions:begin -->", "<!-- bench_versions:end -->"
LIMIT = 64 * 1024


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def checkpoint(db: object) -> None:
    """Fold the write-ahead log into the database file (no pooled reader left open)."""
    import sqlite3

    db.dispose()  # type: ignore[attr-defined]
    with sqlite3.connect(db.url.database) as conn:  # type: ignore[attr-defined]
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument(
        "--images", type=int, default=50_000, help="images in the image set (0: skip it)"
    )
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="seedlab-bench-versions-")) / "home"
    os.environ["SEEDLAB_HOME"] = str(home)
    from db.migrate import upgrade_to_head
    from db.session import get_db
    from engine.core.settings import Settings
    from engine.data.datasets import store_frame
    from engine.services import dataset_versions as dv
    from engine.services.permissions import LOCAL_ADMIN

    settings = Settings.from_env()
    settings.ensure_dirs()
    db = get_db(settings)
    upgrade_to_head(db)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(args.rows, 8)), columns=[f"x{i}" for i in range(8)])
    frame["label"] = rng.choice(["a", "b", "c"], size=args.rows)
    record = store_frame(
        settings, db, frame, name="big", target="label", filename="big.csv", sha256="0" * 64
    )
    data_file = settings.resolve(record.path) / "data.parquet"
    copy_bytes = data_file.stat().st_size
    db_file = settings.home / "seedlab.db"
    lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(f"- {line}")

    say(
        f"table: {args.rows:,} rows × 9 columns; its Parquet file {copy_bytes / 1024:,.0f} KB "
        "(what a copy per version would add)"
    )
    rows_cost: list[int] = []
    db_growth: list[int] = []
    file_growth: list[int] = []
    seconds: list[float] = []
    for edit in range(args.edits):
        picks = rng.choice(args.rows, size=10, replace=False)
        current = frame["label"].to_numpy()
        relabel = {str(int(i)): next(c for c in ("a", "b", "c") if c != current[i]) for i in picks}
        checkpoint(db)
        files_before, db_before = tree_bytes(settings.home), db_file.stat().st_size
        started = time.perf_counter()
        version = dv.edit(
            settings, db, LOCAL_ADMIN, record.id, relabel=relabel, exclude=[], note=f"edit {edit}"
        )
        seconds.append(time.perf_counter() - started)
        checkpoint(db)  # the write-ahead log folded into the file: what the edit keeps
        # The row's bytes as stored: its JSON columns serialised, plus the scalar columns.
        row_bytes = sum(
            len(json.dumps(v)) if isinstance(v, dict | list) else len(str(v))
            for v in version.to_dict().values()
        )
        rows_cost.append(row_bytes)
        db_growth.append(db_file.stat().st_size - db_before)
        file_growth.append(tree_bytes(settings.home) - files_before - db_growth[-1])
    say(
        f"{args.edits} edits of 10 relabels each: version row {min(rows_cost):,}–"
        f"{max(rows_cost):,} bytes (the last holds all {10 * args.edits} relabels: patches "
        f"are cumulative); SQLite file growth {min(db_growth):,}–{max(db_growth):,} bytes per "
        f"edit (page-granular, after a WAL checkpoint); other files added: "
        f"{max(file_growth):,} bytes"
    )
    worst = max(max(rows_cost), max(db_growth)) + max(0, max(file_growth))
    say(
        f"worst cost of one edit: {worst:,} bytes = {worst / 1024:.1f} KB (limit 64 KB: "
        f"{'met' if worst <= LIMIT else 'NOT met'}); {copy_bytes / max(worst, 1):,.0f}× less "
        "than a copy of the data file"
    )
    say(
        f"edit time (reads the target column to check rows and count classes): median "
        f"{sorted(seconds)[len(seconds) // 2] * 1000:.0f} ms"
    )
    started = time.perf_counter()
    loaded = dv.load_version_frame(settings, db, record.id, version.number)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    pd.read_parquet(data_file)
    base_s = time.perf_counter() - started
    say(
        f"reading version {version.number} ({len(loaded):,} rows, base + patch): "
        f"{load_s * 1000:.0f} ms vs {base_s * 1000:.0f} ms for the bare file"
    )

    if args.images:
        image_edits(settings, db, args.images, say, rng)

    if args.write_results:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_metrics import RESULTS_PATH, cpu_model, replace_section

        section = "\n".join(
            [
                BEGIN,
                "## Dataset versions: the storage cost of an edit",
                "",
                f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: "
                f"{cpu_model()}, {os.cpu_count()} cores; load average "
                + "/".join(f"{x:.2f}" for x in os.getloadavg())
                + " (other jobs were running: times are inflated, sizes are not)",
                "- command: `PYTHONPATH=. .venv/bin/python bench/bench_versions.py "
                + " ".join(sys.argv[1:])
                + "`",
                *lines,
                "- A version is its base data plus one cumulative JSON patch (relabels and "
                "exclusions by row id: a table's row position, an image's path), so an edit "
                "writes one small row and no data file, for tables and image sets alike.",
                END,
            ]
        )
        replace_section(RESULTS_PATH, BEGIN, END, section)
        print(f"wrote {RESULTS_PATH}")


def image_edits(settings, db, n_images: int, say, rng) -> None:  # noqa: ANN001
    """The same edit on an image set: `n_images` tiny PNGs in two classes, stored as an upload
    is (one pack file), then 3 edits of 10 relabels by image path."""
    import io
    import zipfile

    from PIL import Image

    from engine.data.datasets import ingest_bytes
    from engine.services import dataset_versions as dv
    from engine.services.permissions import LOCAL_ADMIN

    buffer = io.BytesIO()
    pixels = rng.integers(0, 256, size=(64, 4, 4, 3), dtype=np.uint8)
    encoded = []
    for tile in pixels:  # 64 distinct tiny images, repeated: the pack keeps every copy
        out = io.BytesIO()
        Image.fromarray(tile, "RGB").save(out, format="PNG")
        encoded.append(out.getvalue())
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(n_images):
            archive.writestr(f"{'ab'[i % 2]}/{i:06d}.png", encoded[i % len(encoded)])
    record = ingest_bytes(
        settings, db, buffer.getvalue(), filename="many.zip", name="many", target=None
    )
    stored = tree_bytes(settings.resolve(record.path))
    db_file = settings.home / "seedlab.db"
    costs = []
    for edit in range(3):
        picks = rng.choice(n_images, size=10, replace=False)
        relabel = {f"{'ab'[i % 2]}/{i:06d}.png": "ba"[i % 2] for i in picks}
        checkpoint(db)
        files_before, db_before = tree_bytes(settings.home), db_file.stat().st_size
        version = dv.edit(
            settings, db, LOCAL_ADMIN, record.id, relabel=relabel, exclude=[], note=str(edit)
        )
        checkpoint(db)
        db_growth = db_file.stat().st_size - db_before
        # As for the table: the version row as stored (or the file's growth, if larger), plus
        # any other file the edit wrote.
        row_bytes = sum(
            len(json.dumps(v)) if isinstance(v, dict | list) else len(str(v))
            for v in version.to_dict().values()
        )
        others = max(0, tree_bytes(settings.home) - files_before - db_growth)
        costs.append(max(row_bytes, db_growth) + others)
    say(
        f"image set: {n_images:,} images ({stored / 2**20:,.1f} MB stored); 3 edits of 10 "
        f"relabels each cost {min(costs):,}–{max(costs):,} bytes "
        f"(limit 64 KB: {'met' if max(costs) <= LIMIT else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
