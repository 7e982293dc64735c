"""Four processes writing metrics at once while a fifth lists runs: Seedlab vs MLflow on SQLite.

    PYTHONPATH=. bench/.venv/bin/python bench/bench_concurrency.py [--quick] [--write-results]

This is a team's normal afternoon: several runs training (each flushing a batch of points about
every second) while someone keeps the runs page open. Each writer is its own process with its
own run in one shared database file, as the engine's runners are; the reader lists the 50 newest
runs with their summary metrics in a loop. We count points written per second in total, the
reader's latency, and errors (for example "database is locked"): a failed batch is counted and
skipped, not retried, so its points are lost, which is what a user would see. MLflow gets the
same workload through `MlflowClient.log_batch` and `search_runs`, with its defaults.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_metrics import (  # noqa: E402
    RESULTS_PATH,
    MlflowDatabases,
    SeedlabDatabases,
    chunks,
    cpu_model,
    load_mlflow,
    make_points,
    mlflow_metrics,
    replace_section,
)

BEGIN, END = "<!-- bench_concurrency:begin -->", "<!-- bench_concurrency:end -->"
WRITERS = 4
LIST_LIMIT = 50


@dataclass
class Side:
    """One system's figures for one repeat."""

    points_written: int = 0
    write_errors: int = 0
    seconds: float = 0.0
    read_latencies: list[float] = field(default_factory=list)
    read_errors: int = 0
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.points_written / self.seconds if self.seconds else 0.0


# ---------------------------------------------------------------- processes


def _seedlab_writer(url: str, run_id: int, cfg: dict, go: Any, out: Any) -> None:  # noqa: ANN401
    import db.writes.runs
    from db.session import make_engine

    engine = make_engine(url)
    batches = chunks(make_points(cfg["keys"], cfg["steps"], seed=run_id), cfg["batch"])
    written, errors, first = 0, 0, ""
    out.put(("ready",))
    go.wait()
    for batch in batches:
        try:
            db.writes.runs.record_progress(engine, run_id, list(batch))  # the runner's own call
            written += len(batch)
        except Exception as exc:  # counted, as a user would lose these points
            errors += 1
            first = first or f"{type(exc).__name__}: {str(exc)[:120]}"
    out.put(("writer", written, errors, time.monotonic(), first))


def _seedlab_reader(url: str, go: Any, stop: Any, out: Any) -> None:  # noqa: ANN401
    import db.runs
    from db.session import make_engine

    engine = make_engine(url)
    latencies, errors, first = [], 0, ""
    out.put(("ready",))
    go.wait()
    while not stop.is_set() or not (latencies or errors):
        started = time.perf_counter()
        try:
            db.runs.list_runs(engine, limit=LIST_LIMIT)
            latencies.append(time.perf_counter() - started)
        except Exception as exc:
            errors += 1
            first = first or f"{type(exc).__name__}: {str(exc)[:120]}"
    out.put(("reader", latencies, errors, first))


def _mlflow_writer(uri: str, run_id: str, cfg: dict, go: Any, out: Any) -> None:  # noqa: ANN401
    mlflow, _ = load_mlflow()
    client = mlflow.MlflowClient(tracking_uri=uri)
    batches = chunks(make_points(cfg["keys"], cfg["steps"]), cfg["batch"])
    batches = [mlflow_metrics(b) for b in batches]
    written, errors, first = 0, 0, ""
    out.put(("ready",))
    go.wait()
    for batch in batches:
        try:
            client.log_batch(run_id, metrics=batch)
            written += len(batch)
        except Exception as exc:
            errors += 1
            first = first or f"{type(exc).__name__}: {str(exc)[:120]}"
    out.put(("writer", written, errors, time.monotonic(), first))


def _mlflow_reader(uri: str, experiment_id: str, go: Any, stop: Any, out: Any) -> None:  # noqa: ANN401
    mlflow, _ = load_mlflow()
    client = mlflow.MlflowClient(tracking_uri=uri)
    latencies, errors, first = [], 0, ""
    out.put(("ready",))
    go.wait()
    while not stop.is_set() or not (latencies or errors):
        started = time.perf_counter()
        try:
            client.search_runs([experiment_id], max_results=LIST_LIMIT)
            latencies.append(time.perf_counter() - started)
        except Exception as exc:
            errors += 1
            first = first or f"{type(exc).__name__}: {str(exc)[:120]}"
    out.put(("reader", latencies, errors, first))


def _race(writers: list[tuple], reader: tuple) -> Side:
    """Start all processes, release them at once, collect what each reports."""
    ctx = mp.get_context("spawn")
    go, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=fn, args=(*args, go, out)) for fn, *args in writers]
    fn, *args = reader
    procs.append(ctx.Process(target=fn, args=(*args, go, stop, out)))
    for p in procs:
        p.start()
    # Every process imports and prepares its points first; the clock starts when all are ready.
    for _ in procs:
        assert out.get(timeout=300) == ("ready",)
    started = time.monotonic()
    go.set()
    side = Side()
    finished = []
    reader_report = None
    while len(finished) < len(writers):
        message = out.get(timeout=600)
        if message[0] == "reader":
            reader_report = message
            continue
        _, written, errors, ended, first = message
        side.points_written += written
        side.write_errors += errors
        side.first_error = side.first_error or first
        finished.append(ended)
    stop.set()
    _, side.read_latencies, side.read_errors, first = reader_report or out.get(timeout=120)
    side.first_error = side.first_error or first
    for p in procs:
        p.join(timeout=60)
    side.seconds = max(finished) - started
    return side


# ---------------------------------------------------------------- the benchmark


def run(cfg: dict, workdir: Path, with_mlflow: bool) -> dict[str, list[Side]]:
    import db.writes.runs

    results: dict[str, list[Side]] = {"Seedlab": [], "MLflow": []}
    seedlab = SeedlabDatabases(workdir)
    mlflow, _ = load_mlflow() if with_mlflow else (None, "")
    mlflow_dbs = MlflowDatabases(mlflow, workdir) if mlflow else None
    for _ in range(cfg["repeats"]):
        engine, first_run = seedlab.fresh()
        run_ids = [first_run] + [
            db.writes.runs.create_run(
                engine, name="bench", dataset_id=seedlab.dataset_id, config={}
            )
            for _ in range(WRITERS - 1)
        ]
        url = engine.url.render_as_string(hide_password=False)
        engine.dispose()
        results["Seedlab"].append(
            _race(
                [(_seedlab_writer, url, rid, cfg) for rid in run_ids],
                (_seedlab_reader, url),
            )
        )
        if mlflow_dbs is not None:
            client, first_mlflow_run, path = mlflow_dbs.fresh()
            ids = [first_mlflow_run] + [
                client.create_run(mlflow_dbs.experiment_id).info.run_id for _ in range(WRITERS - 1)
            ]
            uri = mlflow_dbs.uri(path)
            results["MLflow"].append(
                _race(
                    [(_mlflow_writer, uri, rid, cfg) for rid in ids],
                    (_mlflow_reader, uri, mlflow_dbs.experiment_id),
                )
            )
    return results


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _p95(values: Sequence[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def table(results: dict[str, list[Side]], cfg: dict) -> str:
    base = [s.rate for s in results.get("MLflow", [])]
    lines = [
        f"| system | points written (of {WRITERS * cfg['keys'] * cfg['steps']:,}) "
        "| median points/s (min–max) | × MLflow | write errors | list runs median / p95 ms "
        "| lists done | read errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, sides in results.items():
        if not sides:
            continue
        rates = [s.rate for s in sides]
        ratio = _median(rates) / _median(base) if base and _median(base) else float("nan")
        latencies = [x for s in sides for x in s.read_latencies]
        lines.append(
            f"| {name} | {_median([s.points_written for s in sides]):,.0f} "
            f"| {_median(rates):,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) "
            f"| {ratio:.1f}× | {sum(s.write_errors for s in sides)} "
            f"| {_median(latencies) * 1000:.1f} / {_p95(latencies) * 1000:.1f} "
            f"| {len(latencies):,} | {sum(s.read_errors for s in sides)} |"
        )
    errors = [
        f"{n}: {s.first_error}" for n, sides in results.items() for s in sides if s.first_error
    ]
    if errors:
        lines += ["", "First error seen: " + "; ".join(dict.fromkeys(errors))]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat (a smoke run)")
    p.add_argument("--keys", type=int, help="metric keys per writer (default 10)")
    p.add_argument("--steps", type=int, help="steps per key per writer (default 2000; quick 100)")
    p.add_argument("--repeats", type=int, help="repeats (default 3; quick 1)")
    p.add_argument("--no-mlflow", action="store_true", help="skip the MLflow baseline")
    p.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = p.parse_args(argv)
    cfg = {
        "keys": args.keys or (2 if args.quick else 10),
        "steps": args.steps or (100 if args.quick else 2000),
        "batch": 500,  # the runner flushes at 500 points or 1 s
        "repeats": args.repeats or (1 if args.quick else 3),
    }
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="seedlab-bench-conc-") as tmp:
        results = run(cfg, Path(tmp), with_mlflow=not args.no_mlflow)
    load_after = os.getloadavg()
    if not results["MLflow"]:
        results.pop("MLflow")
    text = table(results, cfg)
    header = [
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores",
        f"- workload: {WRITERS} writer processes × {cfg['keys']} keys × {cfg['steps']:,} steps "
        f"in batches of {cfg['batch']}, one reader listing the {LIST_LIMIT} newest runs in a "
        f"loop; {cfg['repeats']} repeat(s), medians",
        "- command: `PYTHONPATH=. bench/.venv/bin/python bench/bench_concurrency.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
        + "`",
        "- load average before: "
        + "/".join(f"{x:.2f}" for x in load_before)
        + ", after: "
        + "/".join(f"{x:.2f}" for x in load_after),
    ]
    print("\n".join(header) + "\n\n" + text)
    if args.write_results:
        section = "\n".join(
            [
                BEGIN,
                "## Concurrent writers and a reader: Seedlab vs MLflow on SQLite",
                "",
                *header,
                "",
                text,
                END,
            ]
        )
        replace_section(RESULTS_PATH, BEGIN, END, section)
        print(f"\nwrote {RESULTS_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
