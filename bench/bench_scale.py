"""Browsing thousands of runs: Seedlab's run list, compare and series reads against MLflow.

    PYTHONPATH=. bench/.venv/bin/python bench/bench_scale.py [--quick] [--write-results]

For each size (default 1,000 and 10,000 runs, 5 metrics × 100 steps each) a fresh Seedlab home
is filled with `seedlab demo fill`'s function, plus one run with a 10,000-step series. When mlflow
imports, the *same rows* (read back from Seedlab's database) are written straight into a fresh
MLflow SQLite store through its own schema (runs, params, tags, metrics, latest_metrics) — untimed
set-up, because logging 5 million points through MLflow's API would take ~10 minutes — and the
same questions are asked through `mlflow.search_runs` and `MlflowClient.get_metric_history`.
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_metrics import (  # noqa: E402
    RESULTS_PATH,
    cpu_model,
    load_mlflow,
    replace_section,
)
from db import metrics as metric_store  # noqa: E402
from db import run_query  # noqa: E402
from db.migrate import upgrade_to_head  # noqa: E402
from db.run_query import MetricThreshold, RunFilter  # noqa: E402
from db.session import get_db  # noqa: E402
from db.writes import metrics as metric_writes  # noqa: E402
from engine.core.settings import Settings  # noqa: E402
from engine.services.demo_fill import fill_project  # noqa: E402

BEGIN, END = "<!-- bench_scale:begin -->", "<!-- bench_scale:end -->"
PAGE = 50
COMPARE_RUNS = 50
LONG_STEPS = 10_000
THRESHOLD = ("val_accuracy", ">=", 0.9)
SERIES_ROW = f"one {LONG_STEPS:,}-step series"
CLIENT_SEARCH = "MLflow MlflowClient.search_runs (Run objects, no DataFrame)"
MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "cancelled": "KILLED"}


@dataclass
class Row:
    size: int
    name: str
    seconds: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median_ms(self) -> float:
        return statistics.median(self.seconds) * 1000


def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    out, result = [], None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - start)
    return out, result


def seedlab_side(
    home: Path, size: int, steps: int, repeats: int, apptest: bool
) -> tuple[list[Row], dict]:
    settings = Settings(home=home, db_url=f"sqlite:///{home / 'seedlab.db'}")
    settings.ensure_dirs()
    db = get_db(settings)
    upgrade_to_head(db)
    fill = fill_project(settings, db, project="Bench", runs=size, steps=steps)
    long_id = run_query.query_runs(db, RunFilter(project_id=fill.project_id), limit=1)[0].id
    metric_writes.append_metrics(
        db, long_id, [("long_series", s, 1.0 / (s + 1), 1.7e9 + s) for s in range(LONG_STEPS)]
    )
    rows = [
        Row(size, f"fill {size:,} runs × 5 metrics × {steps} steps (demo fill)", [fill.seconds])
    ]
    flt = RunFilter(
        project_id=fill.project_id,
        statuses=("completed",),
        thresholds=(MetricThreshold(*THRESHOLD),),
    )

    def list_page() -> list:
        page = run_query.query_runs(db, flt, sort="metric:val_accuracy", limit=PAGE)
        return [page, run_query.count_runs(db, flt)]

    seconds, (page, total) = timed(list_page, repeats)
    rows.append(
        Row(
            size,
            f"list page of {PAGE}: filter status + val_accuracy ≥ 0.9, sort by it, count",
            seconds,
            f"{total:,} match",
        )
    )
    newest = RunFilter(project_id=fill.project_id)
    seconds, _ = timed(lambda: run_query.query_runs(db, newest, limit=PAGE), repeats)
    rows.append(Row(size, f"list page of {PAGE}: newest first, no filter", seconds))
    # The run holding the long series stays out: Compare's 50 runs have 5 × steps points each.
    candidates = run_query.query_runs(db, newest, limit=COMPARE_RUNS + 1)
    compare_ids = [r.id for r in candidates if r.id != long_id][:COMPARE_RUNS]
    seconds, hist = timed(lambda: metric_store.metric_history(db, compare_ids), repeats)
    rows.append(
        Row(
            size,
            f"curves of {len(compare_ids)} runs (all 5 metrics) for Compare",
            seconds,
            f"{len(hist):,} points",
        )
    )
    seconds, series = timed(lambda: metric_store.metric_series(db, long_id, "long_series"), repeats)
    assert len(series) == LONG_STEPS
    rows.append(Row(size, SERIES_ROW, seconds, "metric_series: steps, values, wall times"))
    seconds, frame = timed(
        lambda: metric_store.metric_history(db, [long_id], ["long_series"]), repeats
    )
    assert len(frame) == LONG_STEPS
    rows.append(Row(size, "the same series as a DataFrame (metric_history)", seconds))
    if apptest:
        rows += runs_page_apptest(home, size, repeats)
    info = {
        "page_names": [r.name for r in page],
        "total": total,
        "compare_ids": compare_ids,
        "long_id": long_id,
        "db_path": home / "seedlab.db",
        "project_id": fill.project_id,
    }
    db.dispose()
    return rows, info


def runs_page_apptest(home: Path, size: int, repeats: int) -> list[Row]:
    from streamlit.testing.v1 import AppTest

    os.environ["SEEDLAB_HOME"] = str(home)
    os.environ.pop("SEEDLAB_DB_URL", None)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120).run()
    at.switch_page("views/runs.py")
    at.query_params["project"] = "Bench"
    start = time.perf_counter()
    at.run()
    cold = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"Runs page failed: {[e.value for e in at.exception]}")
    seconds, _ = timed(at.run, repeats)
    return [
        Row(size, "Runs page rendered by AppTest, first render (cold caches)", [cold]),
        Row(size, "Runs page rendered by AppTest, rerun (as after a widget change)", seconds),
    ]


def mlflow_side(
    mlflow: Any, workdir: Path, size: int, info: dict, repeats: int, history_repeats: int
) -> list[Row]:
    """MLflow's answers to the same questions, each repeated as often as Seedlab's (a median
    of several against one sample would be unfair on a busy machine either way), except the
    250 get_metric_history calls for Compare (minutes at 10,000 runs: `history_repeats`)."""
    from mlflow import MlflowClient

    path = workdir / f"mlflow-{size}.db"
    uri = f"sqlite:///{path}"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("bench")
    uuids = copy_into_mlflow(info["db_path"], path, experiment_id, info["project_id"])
    mlflow.set_tracking_uri(uri)

    def search() -> Any:
        return mlflow.search_runs(
            experiment_ids=[experiment_id],
            filter_string="attributes.status = 'FINISHED' and metrics.val_accuracy >= 0.9",
            order_by=["metrics.val_accuracy DESC"],
            max_results=PAGE,
        )

    def search_entities() -> Any:
        return client.search_runs(
            experiment_ids=[experiment_id],
            filter_string="attributes.status = 'FINISHED' and metrics.val_accuracy >= 0.9",
            order_by=["metrics.val_accuracy DESC"],
            max_results=PAGE,
        )

    seconds, frame = timed(search, repeats)
    if list(frame["tags.mlflow.runName"]) != info["page_names"]:
        raise RuntimeError("MLflow's page differs from Seedlab's: the comparison would be unfair")
    rows = [Row(size, f"MLflow search_runs, same filter + sort, max_results={PAGE}", seconds)]
    # The client's search returns Run objects without building a DataFrame: MLflow's fastest
    # way to the same page, so the ratio is also given against it.
    seconds, page = timed(search_entities, repeats)
    if [r.info.run_name for r in page] != info["page_names"]:
        raise RuntimeError("MLflow's page differs from Seedlab's: the comparison would be unfair")
    rows.append(Row(size, f"{CLIENT_SEARCH}, same filter + sort, max_results={PAGE}", seconds))
    keys = ["train_loss", "val_loss", "val_accuracy", "val_f1_macro", "lr"]
    ids = [uuids[i] for i in info["compare_ids"]]
    seconds, _ = timed(
        lambda: [client.get_metric_history(r, k) for r in ids for k in keys], history_repeats
    )
    rows.append(Row(size, f"MLflow get_metric_history × {len(ids)} runs × 5 metrics", seconds))
    long_uuid = uuids[info["long_id"]]
    seconds, got = timed(lambda: client.get_metric_history(long_uuid, "long_series"), repeats)
    assert len(got) == LONG_STEPS
    rows.append(Row(size, f"MLflow get_metric_history, one {LONG_STEPS:,}-step series", seconds))
    return rows


def copy_into_mlflow(
    seedlab_db: Path, mlflow_db: Path, experiment_id: str, project_id: int
) -> dict[int, str]:
    """The project's runs, params, tags and every metric point, written into MLflow's tables."""
    import json

    src = sqlite3.connect(seedlab_db)
    dst = sqlite3.connect(mlflow_db)
    uuids: dict[int, str] = {}
    runs, params, tags = [], [], []
    for run_id, name, status, config, created in src.execute(
        "SELECT id, name, status, config, created_at FROM runs WHERE project_id = ?", (project_id,)
    ):
        uid = uuid.uuid4().hex
        uuids[run_id] = uid
        start = int(time.mktime(time.strptime(created[:19], "%Y-%m-%d %H:%M:%S")) * 1000)
        runs.append(
            (
                uid,
                name,
                "LOCAL",
                "",
                "",
                "bench",
                MLFLOW_STATUS.get(status, "FINISHED"),
                start,
                start + 60_000,
                "",
                "active",
                f"/tmp/mlruns/{uid}",
                int(experiment_id),
                None,
            )
        )
        params += [(k, str(v), uid) for k, v in json.loads(config).items()]
        tags.append(("mlflow.runName", name, uid))
    dst.executemany(f"INSERT INTO runs VALUES ({','.join('?' * 14)})", runs)
    dst.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
    dst.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)
    cursor = src.execute("SELECT run_id, key, step, value, wall_time FROM metrics")
    latest: dict[tuple[str, str], tuple] = {}
    while batch := cursor.fetchmany(200_000):
        rows = []
        for run_id, key, step, value, wall in batch:
            uid = uuids.get(run_id)
            if uid is None:
                continue
            row = (key, value, int(wall * 1000), uid, step, 0)
            rows.append(row)
            if (uid, key) not in latest or step >= latest[(uid, key)][4]:
                latest[(uid, key)] = row
        dst.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?,?,?,?,?,?)",
            rows,
        )
    dst.executemany(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
        "VALUES (?,?,?,?,?,?)",
        [(k, v, t, s, n, u) for k, v, t, u, s, n in latest.values()],
    )
    dst.commit()
    src.close()
    dst.close()
    return uuids


def format_table(rows: list[Row], mlflow_rows: dict[tuple[int, str], Row]) -> str:
    lines = [
        "| runs | measurement | median ms | min–max ms | note |",
        "|---:|---|---:|---:|---|",
    ]
    for r in rows:
        lo, hi = min(r.seconds) * 1000, max(r.seconds) * 1000
        lines.append(
            f"| {r.size:,} | {r.name} | {r.median_ms:,.1f} | {lo:,.1f}–{hi:,.1f} | {r.note} |"
        )
    return "\n".join(lines)


def ratios(rows: list[Row]) -> list[str]:
    out = []
    for r in rows:
        if r.name.startswith("MLflow search_runs"):
            ours = next(x for x in rows if x.size == r.size and "filter status" in x.name)
            out.append(
                f"{r.size:,} runs: list page {ours.median_ms:.1f} ms vs MLflow search_runs "
                f"{r.median_ms:.1f} ms = {r.median_ms / ours.median_ms:.1f}× faster"
            )
        if r.name.startswith(CLIENT_SEARCH):
            ours = next(x for x in rows if x.size == r.size and "filter status" in x.name)
            out.append(
                f"{r.size:,} runs: list page {ours.median_ms:.1f} ms vs MLflow "
                f"MlflowClient.search_runs {r.median_ms:.1f} ms = "
                f"{r.median_ms / ours.median_ms:.1f}× faster"
            )
        if r.name.startswith("MLflow get_metric_history, one"):
            ours = next(x for x in rows if x.size == r.size and x.name == SERIES_ROW)
            out.append(
                f"{r.size:,} runs: 10,000-step series {ours.median_ms:.1f} ms vs MLflow "
                f"{r.median_ms:.1f} ms = {r.median_ms / ours.median_ms:.1f}× faster"
            )
        if r.name.startswith("MLflow get_metric_history ×"):
            ours = next(x for x in rows if x.size == r.size and x.name.startswith("curves of"))
            out.append(
                f"{r.size:,} runs: Compare curves {ours.median_ms:.1f} ms vs MLflow "
                f"{r.median_ms:.1f} ms = {r.median_ms / ours.median_ms:.1f}× faster"
            )
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="200 runs × 10 steps, 1 repeat (smoke)")
    p.add_argument("--sizes", default=None, help="comma-separated run counts (default 1000,10000)")
    p.add_argument("--steps", type=int, default=None, help="steps per metric (default 100)")
    p.add_argument("--repeats", type=int, default=None, help="repeats per timing (default 5)")
    p.add_argument(
        "--mlflow-repeats",
        type=int,
        default=1,
        help="repeats of MLflow's Compare curves (default 1)",
    )
    p.add_argument("--no-apptest", action="store_true", help="skip the AppTest render")
    p.add_argument("--no-mlflow", action="store_true", help="skip the MLflow baseline")
    p.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = p.parse_args(argv)
    sizes = [int(s) for s in (args.sizes or ("200" if args.quick else "1000,10000")).split(",")]
    steps = args.steps or (10 if args.quick else 100)
    repeats = args.repeats or (1 if args.quick else 5)
    mlflow, why = (None, "--no-mlflow") if args.no_mlflow else load_mlflow()
    load_before = os.getloadavg()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="seedlab-bench-scale-") as tmp:
        for size in sizes:
            print(f"  … {size:,} runs: Seedlab", file=sys.stderr, flush=True)
            ours, info = seedlab_side(
                Path(tmp) / f"home-{size}", size, steps, repeats, not args.no_apptest
            )
            rows += ours
            if mlflow is not None:
                print(f"  … {size:,} runs: MLflow", file=sys.stderr, flush=True)
                rows += mlflow_side(mlflow, Path(tmp), size, info, repeats, args.mlflow_repeats)
            print(format_table(rows, {}), file=sys.stderr, flush=True)
    notes = ratios(rows)
    if mlflow is None:
        notes.append(f"MLflow baseline skipped ({why}).")
    env = [
        f"- machine: {cpu_model()}, {os.cpu_count()} cores; Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}, "
        f"mlflow {getattr(mlflow, '__version__', 'not installed')}",
        f"- command: `PYTHONPATH=. {Path(sys.executable).name} bench/bench_scale.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
        + "`",
        f"- workload: {', '.join(f'{s:,}' for s in sizes)} runs × 5 metrics × {steps} steps, "
        f"plus one {LONG_STEPS:,}-step series; {repeats} repeat(s), median and min–max",
        "- load average before/after: "
        + "/".join(f"{x:.2f}" for x in load_before)
        + " → "
        + "/".join(f"{x:.2f}" for x in os.getloadavg()),
    ]
    table = format_table(rows, {})
    print("\n".join(env) + "\n\n" + table + "\n")
    for n in notes:
        print(f"- {n}")
    if args.write_results:
        section = "\n".join(
            [
                BEGIN,
                "## Browsing thousands of runs: Seedlab vs MLflow search_runs",
                "",
                *env,
                "",
                table,
                "",
                *(f"- {n}" for n in notes),
                END,
            ]
        )
        replace_section(RESULTS_PATH, BEGIN, END, section)
        print(f"\nwrote {RESULTS_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
