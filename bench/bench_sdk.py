"""Logging from the team's own code: the SDK (`run.log`) against MLflow's log_metric / log_batch.

    PYTHONPATH=. bench/.venv/bin/python bench/bench_sdk.py [--quick] [--write-results]

Seedlab: a training loop in this process calls `run.log({...}, step=s)` for every step; the SDK
batches the points on its writer thread into a spool, and the local drain (`seedlab sdk drain`,
its own process, as a user gets it) writes them into SQLite. A point counts once it is in the
database: the clock stops when `run.finish()` returns, which waits for the drain to write the
run's end after its last point (and the points are counted there). Starting the run (the
drain's start and migrations) is not timed, as MLflow's store and run creation are not.

MLflow: the same points through `MlflowClient.log_batch` (1,000 a call, its maximum) and the
fluent `mlflow.log_metric` one by one (timed on a sample, extrapolated), on SQLite with MLflow's
defaults (bench/bench_metrics.py sets the stores up). Values are built before every timer.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import seedlab  # noqa: E402
from bench.bench_metrics import (  # noqa: E402
    MLFLOW_MAX_METRICS_PER_BATCH,
    RESULTS_PATH,
    MlflowDatabases,
    chunks,
    cpu_model,
    load_mlflow,
    mlflow_metrics,
    replace_section,
)

RESULTS_BEGIN = "<!-- bench_sdk:begin -->"
RESULTS_END = "<!-- bench_sdk:end -->"


@dataclass
class Row:
    name: str
    points: int
    seconds: list[float] = field(default_factory=list)
    loop_seconds: list[float] = field(default_factory=list)  # the training thread's share
    calls: int = 0  # run.log calls (SDK rows)

    @property
    def rate(self) -> float:
        return self.points / statistics.median(self.seconds)

    def span(self) -> str:
        rates = [self.points / s for s in self.seconds]
        return f"{min(rates):,.0f}–{max(rates):,.0f}"


def _steps(keys: int, steps: int) -> list[dict[str, float]]:
    rng = random.Random(0)
    return [{f"k{j}": rng.random() for j in range(keys)} for _ in range(steps)]


def _count(home: Path, run_id: int) -> int:
    with sqlite3.connect(home / "seedlab.db") as conn:
        return conn.execute("SELECT count(*) FROM metrics WHERE run_id = ?", (run_id,)).fetchone()[
            0
        ]


def sdk_once(workdir: Path, values: list[dict[str, float]], with_step: bool) -> tuple[float, float]:
    """(seconds until every point is in the database, seconds of the logging loop alone)."""
    home = Path(tempfile.mkdtemp(prefix="sdk-home-", dir=workdir))
    os.environ["SEEDLAB_HOME"] = str(home)
    run = seedlab.init(project="bench", name="bench-sdk")  # not timed: the drain starts
    assert run.id is not None
    gc.collect()
    start = time.perf_counter()
    if with_step:
        for step, point in enumerate(values):
            run.log(point, step=step)
    else:
        for point in values:
            run.log(point)
    looped = time.perf_counter()
    run.finish()
    done = time.perf_counter()
    expected = sum(len(v) for v in values)
    got = _count(home, run.id)
    if got != expected:
        raise RuntimeError(f"the database holds {got} points of run {run.id}, not {expected}")
    return done - start, looped - start


def run_bench(args: argparse.Namespace, workdir: Path) -> tuple[list[Row], list[str]]:
    # The local drain is this checkout's server, run by this interpreter.
    os.environ["SEEDLAB_SERVER"] = f"{sys.executable} -m engine.cli.main"
    os.environ.pop("SEEDLAB_DB_URL", None)
    os.environ["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    rows: list[Row] = []
    notes: list[str] = []
    for keys in (args.keys, 1):
        steps = args.points // keys
        values = _steps(keys, steps)
        for with_step in (True, False):
            label = "step=s" if with_step else "no step"
            name = f"Seedlab SDK run.log, {keys} key(s) a call, {label}"
            row = Row(name, keys * steps, calls=steps)
            for _ in range(args.repeats):
                total, loop = sdk_once(workdir, values, with_step)
                row.seconds.append(total)
                row.loop_seconds.append(loop)
            rows.append(row)
            print(f"  … {row.name}: {row.rate:,.0f} points/s", file=sys.stderr, flush=True)

    mlflow, why = load_mlflow()
    if mlflow is None:
        notes.append(f"MLflow not installed in this interpreter ({why}): its rows are missing.")
        return rows, notes
    dbs = MlflowDatabases(mlflow, workdir)
    keys, steps = args.keys, args.points // args.keys
    now = time.time()
    points = [(k, s, v, now) for s, d in enumerate(_steps(keys, steps)) for k, v in d.items()]
    batches = [mlflow_metrics(c) for c in chunks(points, MLFLOW_MAX_METRICS_PER_BATCH)]
    row = Row(f"MLflow log_batch, {MLFLOW_MAX_METRICS_PER_BATCH} a call", len(points))
    for _ in range(args.repeats):
        client, run_id, _ = dbs.fresh()
        gc.collect()
        start = time.perf_counter()
        for batch in batches:
            client.log_batch(run_id, metrics=batch)
        row.seconds.append(time.perf_counter() - start)
    rows.append(row)
    sample = min(args.log_metric_sample, len(points))
    row = Row(f"MLflow log_metric, one by one ({sample}-point sample) *", sample)
    for _ in range(args.repeats):
        _, run_id, path = dbs.fresh()
        mlflow.set_tracking_uri(dbs.uri(path))
        mlflow.start_run(run_id=run_id)
        try:
            gc.collect()
            start = time.perf_counter()
            for k, s, v, t in points[:sample]:
                mlflow.log_metric(k, v, step=s, timestamp=int(t * 1000))
            row.seconds.append(time.perf_counter() - start)
        finally:
            mlflow.end_run()
    rows.append(row)
    notes.append(
        f"\\* MLflow log_metric is timed on the first {sample} points and extrapolated: all "
        f"{len(points):,} points would take about {len(points) / row.rate:,.0f} s."
    )
    notes.append(f"mlflow {mlflow.__version__}, its SQLite store with its defaults.")
    return rows, notes


def table(rows: list[Row]) -> str:
    base = next((r.rate for r in rows if r.name.startswith("MLflow log_batch")), None)
    lines = [
        "| logging path | points | median points/s into the DB | min–max | "
        "training loop µs/call | × MLflow log_batch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        loop = f"{statistics.median(r.loop_seconds) / r.calls * 1e6:.1f}" if r.calls else ""
        ratio = f"{r.rate / base:.3g}×" if base else ""
        lines.append(f"| {r.name} | {r.points:,} | {r.rate:,.0f} | {r.span()} | {loop} | {ratio} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (a smoke run)")
    p.add_argument("--points", type=int, default=200_000, help="points per measurement")
    p.add_argument("--keys", type=int, default=10, help="keys per run.log call")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--log-metric-sample", type=int, default=2000)
    p.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = p.parse_args(argv)
    if args.quick:
        args.points, args.repeats, args.log_metric_sample = 2000, 1, 50
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="seedlab-bench-sdk-") as tmp:
        rows, notes = run_bench(args, Path(tmp))
    load_after = os.getloadavg()
    text = table(rows)
    env = [
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores; Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}",
        f"- command: `PYTHONPATH=. python bench/bench_sdk.py {' '.join(sys.argv[1:])}`",
        "- load average before: "
        + "/".join(f"{x:.2f}" for x in load_before)
        + ", after: "
        + "/".join(f"{x:.2f}" for x in load_after),
        f"- {args.repeats} repeat(s), median; a point counts once it is in the database",
    ]
    print("\n".join(env), "", text, "", *(f"- {n}" for n in notes), sep="\n")
    if args.write_results:
        section = "\n".join(
            [
                RESULTS_BEGIN,
                "## Logging from your own code: the SDK vs MLflow log_metric / log_batch",
                "",
                *env,
                "",
                text,
                "",
                *(f"- {n}" for n in notes),
                "- The SDK's `run.log` returns once the values are queued; its writer thread "
                "encodes them into the spool and the local drain (another process) bulk-inserts "
                "them (db/writes/metrics.py), so logging does not wait for SQLite. The clock "
                "stops when `run.finish()` returns: the drain has written the last point and "
                "the run's end.",
                RESULTS_END,
            ]
        )
        replace_section(RESULTS_PATH, RESULTS_BEGIN, RESULTS_END, section)
        print(f"\nwrote {RESULTS_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
