"""Metric logging throughput: Seedlab's append path against MLflow on SQLite.

    PYTHONPATH=. bench/.venv/bin/python bench/bench_metrics.py [--quick] [--write-results]

Every timed measurement writes into a fresh run in a fresh copy of an already-migrated database,
so schema creation, MLflow's own migrations and run creation never count. Points (Seedlab tuples,
MLflow `Metric` objects) are built before the timer starts, for both sides alike. MLflow keeps
its defaults (rollback journal, no WAL): the baseline is what an MLflow user gets.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import logging
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import sqlalchemy
from sqlalchemy import Engine, insert

ROOT = Path(__file__).resolve().parent.parent
# `python bench/bench_metrics.py` puts bench/ on sys.path, not the repository root; add it so
# the script also runs without PYTHONPATH=. (there is no installable package yet).
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import db.metrics  # noqa: E402
import db.writes.datasets  # noqa: E402
import db.writes.metrics  # noqa: E402
import db.writes.runs  # noqa: E402
from db.migrate import upgrade_to_head  # noqa: E402
from db.models import metrics as metrics_table  # noqa: E402
from db.session import get_db, writing  # noqa: E402
from engine.core.settings import Settings  # noqa: E402

RESULTS_PATH = ROOT / "bench" / "RESULTS.md"
RESULTS_BEGIN = "<!-- bench_metrics:begin -->"
RESULTS_END = "<!-- bench_metrics:end -->"
MLFLOW_MAX_METRICS_PER_BATCH = 1000  # log_batch refuses more (mlflow.utils.validation)
SMALL_BATCH = 100
INSTALL_HINT = (
    "python3 -m venv bench/.venv && grep -v '^pyarrow==' requirements.txt > /tmp/req-bench.txt "
    "&& bench/.venv/bin/pip install -r /tmp/req-bench.txt -r bench/requirements.txt "
    "(mlflow 3.17.2 needs pyarrow<26; see bench/README.md)"
)

Point = tuple[str, int, float, float]  # key, step, value, wall_time (seconds)


# --------------------------------------------------------------------------------------------
# Workload


def make_points(n_keys: int, n_steps: int, seed: int = 0) -> list[Point]:
    """Step-major points, as a training loop emits them: every key at step 0, then step 1 …"""
    rng = random.Random(seed)
    start = 1.7e9
    return [
        (
            f"k{k}",
            step,
            math.exp(-step / max(n_steps, 1)) + k + rng.random() * 0.01,
            start + step * 0.05,
        )
        for step in range(n_steps)
        for k in range(n_keys)
    ]


def chunks(points: Sequence[Point], size: int) -> list[Sequence[Point]]:
    return [points[i : i + size] for i in range(0, len(points), size)]


@dataclass
class Measurement:
    """One row of the table: per-repeat points/s for a write, or seconds for a read."""

    name: str
    points: int
    seconds: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def rates(self) -> list[float]:
        return [self.points / s for s in self.seconds]

    @property
    def median_rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)


def timed(fn: Callable[[], object]) -> float:
    # Collect garbage left by set-up first, so one repeat does not pay for the previous one.
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# Seedlab


def insert_placeholder_dataset(engine: Engine, folder: str) -> int:
    """The one dataset row that runs need to point at (no files: runs here never train)."""
    return db.writes.datasets.insert_dataset(
        engine,
        name="bench",
        kind="tabular",
        task="regression",
        target="y",
        schema={"columns": ["x", "y"]},
        n_rows=1,
        n_columns=2,
        sha256="0" * 64,
        path=f"{folder}/bench",
        source_filename="bench.csv",
    ).id


class SeedlabDatabases:
    """Hands out fresh, migrated Seedlab databases (each with one dataset) by copying a template.

    Copying keeps Alembic out of every measurement and gives each repeat the same empty table.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._count = 0
        template_home = workdir / "seedlab-template"
        settings = Settings(home=template_home, db_url=f"sqlite:///{template_home / 'seedlab.db'}")
        engine = get_db(settings)
        upgrade_to_head(engine)
        self.dataset_id = insert_placeholder_dataset(engine, str(template_home / "datasets"))
        # Closing the last connection checkpoints the WAL into the main file, so a plain copy
        # of seedlab.db is complete.
        engine.dispose()
        self.template = template_home / "seedlab.db"

    def fresh(self) -> tuple[Engine, int]:
        """A new database file and an engine on it (Seedlab's own pragmas), with one run."""
        self._count += 1
        home = self.workdir / f"seedlab-{self._count}"
        home.mkdir()
        shutil.copyfile(self.template, home / "seedlab.db")
        engine = get_db(Settings(home=home, db_url=f"sqlite:///{home / 'seedlab.db'}"))
        run_id = db.writes.runs.create_run(
            engine, name="bench", dataset_id=self.dataset_id, config={}
        )
        return engine, run_id


def seedlab_append(engine: Engine, run_id: int, batches: list[Sequence[Point]]) -> None:
    for batch in batches:
        db.writes.metrics.append_metrics(engine, run_id, list(batch))


def seedlab_record_progress(engine: Engine, run_id: int, batches: list[Sequence[Point]]) -> None:
    for batch in batches:
        db.writes.runs.record_progress(engine, run_id, list(batch))


def core_plain_insert(engine: Engine, run_id: int, batches: list[Sequence[Point]]) -> None:
    """Reference: a bare Core executemany into the same table (no upsert, no summary)."""
    for batch in batches:
        rows = [
            {"run_id": run_id, "key": k, "step": s, "value": v, "wall_time": t}
            for k, s, v, t in batch
        ]
        with writing(engine) as conn:
            conn.execute(insert(metrics_table), rows)


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


# --------------------------------------------------------------------------------------------
# MLflow


def load_mlflow() -> tuple[ModuleType | None, str]:
    """Import mlflow quietly; (None, why) when it is not installed in this interpreter."""
    # No telemetry thread in a benchmark (it would only add noise; the machine may be offline).
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import mlflow
    except ImportError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    # MLflow and Alembic announce every table they create at INFO; the table is what matters.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"mlflow(\.|$)")
    return mlflow, ""


class MlflowDatabases:
    """Fresh MLflow SQLite stores, copied from one template that MLflow has already migrated."""

    def __init__(self, mlflow: ModuleType, workdir: Path) -> None:
        from mlflow import MlflowClient

        self.mlflow = mlflow
        self.workdir = workdir
        self._count = 0
        self.template = workdir / "mlflow-template.db"
        # MLflow creates and migrates its schema here, once; copies of the file skip that.
        # Copying while MLflow's pool holds an idle connection is safe: in rollback-journal
        # mode the main file is complete whenever no transaction is open.
        client = MlflowClient(tracking_uri=self.uri(self.template))
        self.experiment_id = client.create_experiment("bench")

    @staticmethod
    def uri(path: Path) -> str:
        return f"sqlite:///{path}"

    def fresh(self) -> tuple[Any, str, Path]:
        """(client, run_id, db path) on a new copy of the template; MLflow's defaults kept."""
        from mlflow import MlflowClient

        self._count += 1
        path = self.workdir / f"mlflow-{self._count}.db"
        shutil.copyfile(self.template, path)
        client = MlflowClient(tracking_uri=self.uri(path))
        run_id = client.create_run(self.experiment_id).info.run_id
        return client, run_id, path


def mlflow_metrics(points: Sequence[Point]) -> list[Any]:
    from mlflow.entities import Metric

    # MLflow timestamps are integer milliseconds.
    return [Metric(k, v, int(t * 1000), s) for k, s, v, t in points]


# --------------------------------------------------------------------------------------------
# The benchmark


@dataclass
class Config:
    keys: int
    steps: int
    batch: int
    repeats: int
    log_metric_sample: int


@dataclass
class Results:
    config: Config
    writes: list[Measurement]
    reads: list[Measurement]
    notes: list[str]
    mlflow_version: str | None
    # Other processes on a small machine move the figures; the load says whether they did.
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)


def run_benchmark(cfg: Config, workdir: Path, progress: Callable[[str], None]) -> Results:
    load_before = os.getloadavg()
    points = make_points(cfg.keys, cfg.steps)
    n = len(points)
    writes: list[Measurement] = []
    reads: list[Measurement] = []
    notes: list[str] = []

    seedlab_dbs = SeedlabDatabases(workdir)
    written: dict[str, tuple[Engine, int]] = {}  # measurement name -> its last database

    def seedlab_measure(
        name: str, fn: Callable[[Engine, int, list[Sequence[Point]]], None], batch: int
    ) -> Measurement:
        progress(name)
        m = Measurement(name, n)
        batches = chunks(points, batch)
        for _ in range(cfg.repeats):
            engine, run_id = seedlab_dbs.fresh()
            m.seconds.append(timed(lambda e=engine, r=run_id: fn(e, r, batches)))
            written[name] = (engine, run_id)
        return m

    main_name = f"Seedlab append_metrics, batch {cfg.batch}"
    writes.append(seedlab_measure(main_name, seedlab_append, cfg.batch))
    if cfg.batch != SMALL_BATCH:
        writes.append(
            seedlab_measure(
                f"Seedlab append_metrics, batch {SMALL_BATCH}", seedlab_append, SMALL_BATCH
            )
        )
    writes.append(
        seedlab_measure(
            f"Seedlab record_progress, batch {cfg.batch}", seedlab_record_progress, cfg.batch
        )
    )
    writes.append(
        seedlab_measure(
            f"ref: Core insert executemany, batch {cfg.batch}", core_plain_insert, cfg.batch
        )
    )
    # The series read back comes from the last database append_metrics wrote.
    read_engine, read_run_id = written[main_name]
    notes.append(
        f"Seedlab DB journal_mode={journal_mode(Path(str(read_engine.url.database)))} "
        "(Seedlab's own pragmas: WAL, synchronous=NORMAL, BEGIN IMMEDIATE per batch)."
    )
    notes.append(
        "ref row: plain `insert(metrics)` executemany through SQLAlchemy Core on the same table "
        "and pragmas, without Seedlab's upsert and run_summaries update; shown to locate "
        "Seedlab's own overhead."
    )

    progress(f"Seedlab metric_history (one {cfg.steps}-step series)")
    seed_read = Measurement(f"Seedlab metric_history, {cfg.steps} steps", cfg.steps)
    for _ in range(cfg.repeats):
        frame: list[Any] = []
        seed_read.seconds.append(
            timed(
                lambda f=frame: f.append(
                    db.metrics.metric_history(read_engine, [read_run_id], ["k0"])
                )
            )
        )
        if len(frame[0]) != cfg.steps:
            raise RuntimeError(f"Seedlab read {len(frame[0])} points of k0, expected {cfg.steps}")
    reads.append(seed_read)

    mlflow, why = load_mlflow()
    mlflow_version = None
    if mlflow is None:
        notes.append(
            f"MLflow baseline skipped: `import mlflow` failed ({why}). "
            f"Install it in the bench venv: {INSTALL_HINT}"
        )
    else:
        mlflow_version = mlflow.__version__
        writes_ml, reads_ml, notes_ml = run_mlflow(mlflow, cfg, points, workdir, progress)
        writes.extend(writes_ml)
        reads.extend(reads_ml)
        notes.extend(notes_ml)
    notes.append(
        "Points (tuples, MLflow Metric objects) are built before timing; set-up "
        "(migrations, experiment and run creation) is excluded from every timing."
    )
    return Results(cfg, writes, reads, notes, mlflow_version, load_before, os.getloadavg())


def run_mlflow(
    mlflow: ModuleType,
    cfg: Config,
    points: list[Point],
    workdir: Path,
    progress: Callable[[str], None],
) -> tuple[list[Measurement], list[Measurement], list[str]]:
    progress("MLflow: creating its SQLite store (untimed)")
    dbs = MlflowDatabases(mlflow, workdir)
    n = len(points)
    batch = min(cfg.batch, MLFLOW_MAX_METRICS_PER_BATCH)
    batches = [mlflow_metrics(c) for c in chunks(points, batch)]

    progress("MLflow log_batch")
    log_batch = Measurement(f"MLflow log_batch, batch {batch}", n)
    last: tuple[Any, str, Path] | None = None
    for _ in range(cfg.repeats):
        client, run_id, path = dbs.fresh()
        log_batch.seconds.append(
            timed(lambda c=client, r=run_id: [c.log_batch(r, metrics=b) for b in batches])
        )
        last = (client, run_id, path)
    assert last is not None
    client, run_id, path = last
    notes = [f"MLflow DB journal_mode={journal_mode(path)} (MLflow's default; not WAL)."]

    sample = min(cfg.log_metric_sample, n)
    progress(f"MLflow log_metric, first {sample} points")
    log_metric = Measurement(
        f"MLflow log_metric, one by one ({sample}-point sample)", sample, note="extrapolated"
    )
    for _ in range(cfg.repeats):
        # The fluent API logs to the active run: point it at a fresh store, start the run
        # before the timer.
        _, lm_run_id, lm_path = dbs.fresh()
        mlflow.set_tracking_uri(dbs.uri(lm_path))
        mlflow.start_run(run_id=lm_run_id)
        try:
            log_metric.seconds.append(
                timed(
                    lambda: [
                        mlflow.log_metric(k, v, step=s, timestamp=int(t * 1000))
                        for k, s, v, t in points[:sample]
                    ]
                )
            )
        finally:
            mlflow.end_run()
    notes.append(
        f"MLflow log_metric is timed on the first {sample} points only and its points/s "
        f"extrapolated: all {n:,} points would take about "
        f"{n / log_metric.median_rate:,.0f} s."
    )

    progress(f"MLflow get_metric_history (one {cfg.steps}-step series)")
    read = Measurement(f"MLflow get_metric_history, {cfg.steps} steps", cfg.steps)
    for _ in range(cfg.repeats):
        got: list[Any] = []
        read.seconds.append(timed(lambda g=got: g.append(client.get_metric_history(run_id, "k0"))))
        if len(got[0]) != cfg.steps:
            raise RuntimeError(f"MLflow read {len(got[0])} points of k0, expected {cfg.steps}")
    return [log_batch, log_metric], [read], notes


# --------------------------------------------------------------------------------------------
# Report


def _fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def _fmt_ratio(x: float) -> str:
    # Two significant digits below 1, so log_metric's 0.02× does not print as 0.0×.
    return f"{x:.2g}×" if x < 1 else f"{x:.1f}×"


def format_table(results: Results) -> str:
    """Markdown tables: writes in points/s vs MLflow log_batch, reads in ms vs MLflow."""
    baseline = next((m for m in results.writes if m.name.startswith("MLflow log_batch")), None)
    lines = [
        "| write path | points | median points/s | min–max points/s | × MLflow log_batch |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in results.writes:
        ratio = _fmt_ratio(m.median_rate / baseline.median_rate) if baseline else "n/a"
        name = m.name + (" *" if m.note == "extrapolated" else "")
        lines.append(
            f"| {name} | {m.points:,} | {_fmt_rate(m.median_rate)} | "
            f"{_fmt_rate(min(m.rates))}–{_fmt_rate(max(m.rates))} | {ratio} |"
        )
    baseline_read = next((m for m in results.reads if m.name.startswith("MLflow")), None)
    lines += [
        "",
        "| read one series | points | median ms | min–max ms | × faster than MLflow |",
        "|---|---:|---:|---:|---:|",
    ]
    for m in results.reads:
        ratio = (
            _fmt_ratio(baseline_read.median_seconds / m.median_seconds) if baseline_read else "n/a"
        )
        lines.append(
            f"| {m.name} | {m.points:,} | {m.median_seconds * 1000:,.1f} | "
            f"{min(m.seconds) * 1000:,.1f}–{max(m.seconds) * 1000:,.1f} | {ratio} |"
        )
    if any(m.note == "extrapolated" for m in results.writes):
        lines += ["", "\\* timed on a sample and extrapolated (see notes)."]
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def command_line() -> str:
    exe = Path(sys.executable)
    try:
        exe_text = str(exe.relative_to(ROOT))
    except ValueError:
        exe_text = str(exe)
    # Relative to the repository root, where the command is meant to be run.
    return f"PYTHONPATH=. {exe_text} bench/bench_metrics.py " + " ".join(sys.argv[1:])


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def environment_lines(results: Results) -> list[str]:
    return [
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
        f"{platform.release()}",
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"SQLAlchemy {sqlalchemy.__version__}, pandas {pd.__version__}, "
        f"pyarrow {_version('pyarrow')}, "
        f"mlflow {results.mlflow_version or 'not installed (baseline skipped)'}",
        f"- command: `{command_line()}`",
        "- load average (1/5/15 min) before: "
        + "/".join(f"{x:.2f}" for x in results.load_before)
        + ", after: "
        + "/".join(f"{x:.2f}" for x in results.load_after),
        f"- workload: {results.config.keys} keys × {results.config.steps:,} steps = "
        f"{results.config.keys * results.config.steps:,} points, "
        f"{results.config.repeats} repeat(s) per measurement (median, min–max)",
    ]


def replace_section(path: Path, begin: str, end: str, section: str) -> None:
    """Put `section` (which starts with `begin` and ends with `end`) into RESULTS.md, replacing
    the previous one between the same markers and keeping every other benchmark's section."""
    if path.exists():
        text = path.read_text()
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            tail = rest.split(end, 1)[1]
            path.write_text(head + section + tail)
            return
        path.write_text(text.rstrip("\n") + "\n\n" + section + "\n")
        return
    path.write_text(
        "# Benchmark results\n\nEach section is written by the script it names "
        "(`make bench` runs them all); re-run it to refresh.\n\n" + section + "\n"
    )


def write_results(results: Results, table: str, path: Path = RESULTS_PATH) -> None:
    """Replace this script's section of RESULTS.md (between markers), keeping anything else."""
    section = "\n".join(
        [
            RESULTS_BEGIN,
            "## Metric logging: Seedlab vs MLflow on SQLite",
            "",
            *environment_lines(results),
            "",
            table,
            "",
            *(f"- {n}" for n in results.notes),
            RESULTS_END,
        ]
    )
    replace_section(path, RESULTS_BEGIN, RESULTS_END, section)


def parse_args(argv: Sequence[str] | None = None) -> tuple[Config, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and 1 repeat (a smoke run, not figures to quote)",
    )
    p.add_argument("--keys", type=int, help="metric keys (default 10)")
    p.add_argument("--steps", type=int, help="steps per key (default 10000; quick: 1000)")
    p.add_argument(
        "--batch",
        type=int,
        default=1000,
        help="points per flush (default 1000, the runner's ~1 s flush)",
    )
    p.add_argument("--repeats", type=int, help="repeats per measurement (default 3; quick: 1)")
    p.add_argument(
        "--log-metric-sample",
        type=int,
        help="points timed for MLflow log_metric (default 2000; quick: 200)",
    )
    p.add_argument(
        "--write-results",
        action="store_true",
        help=f"update the section in {RESULTS_PATH.relative_to(ROOT)}",
    )
    args = p.parse_args(argv)
    cfg = Config(
        keys=args.keys or 10,
        steps=args.steps or (1000 if args.quick else 10_000),
        batch=args.batch,
        repeats=args.repeats or (1 if args.quick else 3),
        log_metric_sample=args.log_metric_sample or (200 if args.quick else 2000),
    )
    if min(cfg.keys, cfg.steps, cfg.batch, cfg.repeats, cfg.log_metric_sample) < 1:
        p.error("--keys, --steps, --batch, --repeats and --log-metric-sample must be ≥ 1")
    return cfg, args


def main(argv: Sequence[str] | None = None) -> int:
    cfg, args = parse_args(argv)

    def progress(msg: str) -> None:
        print(f"  … {msg}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="seedlab-bench-") as tmp:
        results = run_benchmark(cfg, Path(tmp), progress)
        # Engines hold the temp files open; close them before the directory goes.
        for engine_url_db in list(Path(tmp).glob("seedlab-*/seedlab.db")):
            get_db(
                Settings(home=engine_url_db.parent, db_url=f"sqlite:///{engine_url_db}")
            ).dispose()
    table = format_table(results)
    print()
    print("\n".join(environment_lines(results)))
    print()
    print(table)
    print()
    for note in results.notes:
        print(f"- {note}")
    if args.write_results:
        write_results(results, table)
        print(f"\nwrote {RESULTS_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
