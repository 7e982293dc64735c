"""Scale-out: the same Seedlab storage calls on SQLite and on PostgreSQL, in one process.

    PYTHONPATH=. bench/.venv/bin/python bench/bench_scale_out.py [--quick] [--write-results]

Database section: a team that outgrows one box points SEEDLAB_DB_URL at PostgreSQL so workers on
several machines share one queue. We time, on both backends with the same data and the same
code (db.runs / db.metrics / db.bulk):
- run-claim latency: one worker claiming queued runs one by one (`claim_next_run`);
- concurrent claims: several worker processes draining one queue at once (every run claimed
  exactly once is checked, not assumed);
- metric appends: `append_metrics` in batches of 1,000, and the runner's flush
  (`record_progress`: 100 points + heartbeat + cancel check in one transaction);
- bulk fill (`seedlab demo fill`'s path): finished runs with their points in one transaction.
SQLite is a file in a temp dir with Seedlab's pragmas (WAL, synchronous=NORMAL). PostgreSQL is
a server started in a temp dir from Debian's binaries (tests/pg_server.py) with its defaults
(fsync and synchronous_commit on), on loopback: its figures include a network round trip per
statement and a WAL flush per commit, as a real deployment pays them. A second database on the
same server has synchronous_commit off, which is the durability SQLite's settings give.

Data-parallel section (1 vs 2 DDP workers on the CPU): the engine's training function
(`engine.ml.train.train`, the code a run executes) on the same synthetic table with the same total
batch, once as one process and once as two processes in a real gloo process group (spawned
here, each with its share of the cores as the worker gives it); samples/s of rank 0 from the
first batch to the last epoch's end, process start and group set-up excluded. torchrun and the
runner add a few seconds of start-up per run on top (not measured here).

    PYTHONPATH=. bench/.venv/bin/python bench/bench_scale_out.py --only ddp --write-results

Executor section (local subprocesses vs a Ray cluster): the same small run (iris, 3 epochs)
submitted one after another to a real worker, first `seedlab worker` (local executor), then
`seedlab worker --executor ray` on a loopback `seedlab cluster up --cpus 2`; the time from
submit to the first stored metric (claim + process start + data preparation + one epoch) and to
`completed`. Needs Ray, so run it with the project's venv:

    PYTHONPATH=. .venv/bin/python bench/bench_scale_out.py --only executor --write-results

`--only` runs one section and replaces only that section in RESULTS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


from bench_metrics import (  # noqa: E402
    RESULTS_PATH,
    chunks,
    cpu_model,
    insert_placeholder_dataset,
    make_points,
    replace_section,
)
from sqlalchemy import Engine  # noqa: E402

import db.runs  # noqa: E402
import db.writes.bulk  # noqa: E402
import db.writes.metrics  # noqa: E402
import db.writes.runs  # noqa: E402
from db.migrate import upgrade_to_head  # noqa: E402
from db.session import make_engine  # noqa: E402

BEGIN, END = "<!-- bench_scale_out:begin -->", "<!-- bench_scale_out:end -->"
RELAXED = "PostgreSQL, synchronous_commit=off"


@dataclass(frozen=True)
class Sizes:
    runs_to_claim: int = 500
    claimers: int = 4
    runs_per_claimer: int = 100
    append_keys: int = 10
    append_steps: int = 10_000
    flushes: int = 200
    fill_runs: int = 20
    fill_steps: int = 500
    repeats: int = 3
    ddp_rows: int = 12_000
    ddp_epochs: int = 2
    executor_runs: int = 5


QUICK = Sizes(
    runs_to_claim=40,
    claimers=2,
    runs_per_claimer=20,
    append_keys=2,
    append_steps=1_000,
    flushes=20,
    fill_runs=4,
    fill_steps=100,
    repeats=1,
    ddp_rows=4_000,
    ddp_epochs=1,
    executor_runs=1,
)


@dataclass
class Backend:
    name: str
    url: str
    engine: Engine
    dataset_id: int = 0


@dataclass
class Row:
    """One measurement on both backends: a list of per-repeat values each."""

    name: str
    unit: str  # "ms" (lower is better) or "/s" (higher is better)
    values: dict[str, list[float]] = field(default_factory=dict)

    def median(self, backend: str) -> float:
        return statistics.median(self.values[backend])


def open_backend(name: str, url: str) -> Backend:
    engine = make_engine(url)
    upgrade_to_head(engine)
    return Backend(name, url, engine, insert_placeholder_dataset(engine, "datasets"))


def queue_runs(b: Backend, n: int) -> list[int]:
    return [
        db.writes.runs.create_run(b.engine, name=f"q{i}", dataset_id=b.dataset_id, config={})
        for i in range(n)
    ]


# --------------------------------------------------------------------------------------------
# Measurements: each returns one value per call (one repeat).


def claim_latencies_ms(b: Backend, sizes: Sizes) -> tuple[float, float]:
    """Median and p95 of one claim, a worker draining a queue of `runs_to_claim` runs."""
    queued = queue_runs(b, sizes.runs_to_claim)
    times, claimed = [], []
    for _ in queued:
        start = time.perf_counter()
        claimed.append(db.writes.runs.claim_next_run(b.engine, "bench-worker"))
        times.append((time.perf_counter() - start) * 1000)
    assert claimed == queued, "a single claimer gets the runs oldest first"
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def _claimer(url: str, worker: str, barrier, out) -> None:  # noqa: ANN001
    engine = make_engine(url)
    with engine.connect():
        pass  # open the pool's first connection before the clock starts
    barrier.wait()
    start = time.perf_counter()
    claimed = []
    while (run_id := db.writes.runs.claim_next_run(engine, worker)) is not None:
        claimed.append(run_id)
    out.put((claimed, time.perf_counter() - start))
    engine.dispose()


def concurrent_claims_per_s(b: Backend, sizes: Sizes) -> float:
    """Claims per second with `claimers` processes draining one queue together."""
    queued = queue_runs(b, sizes.claimers * sizes.runs_per_claimer)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(sizes.claimers + 1), ctx.Queue()
    procs = [
        ctx.Process(target=_claimer, args=(b.url, f"w{i}", barrier, out))
        for i in range(sizes.claimers)
    ]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    claimed = [run_id for ids, _ in results for run_id in ids]
    assert sorted(claimed) == queued, f"{b.name}: every run claimed exactly once"
    return len(claimed) / max(seconds for _, seconds in results)


def running_run(b: Backend) -> int:
    """A new run, claimed, so the next repeat's queue holds only the runs it queues."""
    (run_id,) = queue_runs(b, 1)
    assert db.writes.runs.claim_next_run(b.engine, "bench-writer") == run_id
    return run_id


def append_points_per_s(b: Backend, sizes: Sizes) -> float:
    run_id = running_run(b)
    batches = chunks(make_points(sizes.append_keys, sizes.append_steps), 1000)
    start = time.perf_counter()
    for batch in batches:
        db.writes.metrics.append_metrics(b.engine, run_id, list(batch))
    return sum(len(x) for x in batches) / (time.perf_counter() - start)


def flush_ms(b: Backend, sizes: Sizes) -> float:
    """Median time of the runner's flush: 100 points, heartbeat and cancel check together."""
    run_id = running_run(b)
    batches = chunks(make_points(10, sizes.flushes * 10), 100)
    times = []
    for batch in batches:
        start = time.perf_counter()
        db.writes.runs.record_progress(b.engine, run_id, list(batch))
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def fill_points_per_s(b: Backend, sizes: Sizes) -> float:
    points = make_points(10, sizes.fill_steps)
    rows = [
        {
            "name": f"fill{i}",
            "dataset_id": b.dataset_id,
            "config": {"model": "mlp"},
            "status": "completed",
            "cancel_requested": False,
            "created_at": datetime.now(UTC).replace(tzinfo=None),
            "notes": "",
            "project_id": 1,
            "archived": False,
            "attempts": 0,
        }
        for i in range(sizes.fill_runs)
    ]
    start = time.perf_counter()
    db.writes.bulk.insert_finished_runs(
        b.engine, rows, [["fill"]] * len(rows), (points for _ in rows)
    )
    return len(points) * len(rows) / (time.perf_counter() - start)


# --------------------------------------------------------------------------------------------
# Sections


def database_section(sizes: Sizes, workdir: Path, progress: Callable[[str], None]) -> list[str]:
    from tests.pg_server import PostgresServer, ServerUnavailable

    try:
        server = PostgresServer(fast=False).start()
    except ServerUnavailable as e:
        return ["## Database: SQLite vs PostgreSQL", "", f"Skipped: {e}"]
    try:
        relaxed_url = server.create_database()
        # The same durability as SQLite's WAL + synchronous=NORMAL: a power cut may lose the
        # last commits, never corrupt. A setting of the database, no code change.
        server._admin(
            f'ALTER DATABASE "{server.database_name(relaxed_url)}" SET synchronous_commit = off'
        )
        backends = [
            open_backend("SQLite", f"sqlite:///{workdir / 'seedlab.db'}"),
            open_backend("PostgreSQL", server.create_database()),
            open_backend(RELAXED, relaxed_url),
        ]
        with backends[1].engine.connect() as conn:
            pg_version = conn.exec_driver_sql("SHOW server_version").scalar()
        rows = [
            Row("claim one run, median (one worker)", "ms"),
            Row("claim one run, p95 (one worker)", "ms"),
            Row(f"claims/s, {sizes.claimers} worker processes at once", "/s"),
            Row("append_metrics, batches of 1,000 points", "/s"),
            Row("runner flush (100 points + heartbeat + cancel check)", "ms"),
            Row("bulk fill (demo fill), points", "/s"),
        ]
        for rep in range(sizes.repeats):
            for b in backends:  # alternate, so drift in machine load hits both alike
                progress(f"repeat {rep + 1}/{sizes.repeats}: {b.name}")
                median, p95 = claim_latencies_ms(b, sizes)
                values = [
                    median,
                    p95,
                    concurrent_claims_per_s(b, sizes),
                    append_points_per_s(b, sizes),
                    flush_ms(b, sizes),
                    fill_points_per_s(b, sizes),
                ]
                for row, value in zip(rows, values, strict=True):
                    row.values.setdefault(b.name, []).append(value)
        for b in backends:
            b.engine.dispose()
    finally:
        server.stop()

    def fmt(row: Row, name: str) -> str:
        vals = row.values[name]
        text = f"{row.median(name):,.2f}" if row.unit == "ms" else f"{row.median(name):,.0f}"
        return text if len(vals) == 1 else f"{text} ({min(vals):,.4g}–{max(vals):,.4g})"

    def versus(row: Row, name: str) -> str:
        ratio = row.median(name) / row.median("SQLite")
        faster = ratio < 1 if row.unit == "ms" else ratio > 1
        factor = max(ratio, 1 / ratio)
        return f"{factor:.1f}× {'faster' if faster else 'slower'}"

    table = [
        f"| measurement | SQLite | PostgreSQL | vs SQLite | {RELAXED} | vs SQLite |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        table.append(
            f"| {row.name} ({row.unit}) | {fmt(row, 'SQLite')} | {fmt(row, 'PostgreSQL')} "
            f"| {versus(row, 'PostgreSQL')} | {fmt(row, RELAXED)} | {versus(row, RELAXED)} |"
        )
    return [
        "## Database: SQLite vs PostgreSQL (same process, same data, same code)",
        "",
        f"- PostgreSQL {pg_version} on loopback, server defaults (fsync, synchronous_commit on),"
        " and the same server with `ALTER DATABASE … SET synchronous_commit = off` (SQLite's"
        " durability: a power cut may lose the last commits); SQLite file with WAL,"
        " synchronous=NORMAL",
        f"- sizes: claims of {sizes.runs_to_claim} queued runs; {sizes.claimers} processes ×"
        f" {sizes.runs_per_claimer} runs; appends of {sizes.append_keys} keys ×"
        f" {sizes.append_steps:,} steps; {sizes.flushes} flushes; fill of {sizes.fill_runs} runs"
        f" × {10 * sizes.fill_steps:,} points; {sizes.repeats} repeat(s), median (min–max)",
        "",
        *table,
    ]


DDP_FEATURES, DDP_CLASSES, DDP_BATCH = 32, 4, 256
DDP_CONFIG = {
    "hidden_sizes": [256, 128],
    "batch_size": DDP_BATCH,
    "dropout": 0.0,
    "early_stopping_patience": 0,
    "device": "cpu",
}


def _ddp_rank(rank: int, world: int, store: str, sizes: Sizes, out) -> None:  # noqa: ANN001
    """One training process: the engine's train() on the bench table, timed on rank 0."""
    import torch
    import torch.distributed as dist
    from bench_engine import NullReporter, make_data

    from engine.core.config import validate_config
    from engine.ml import ddp
    from engine.ml.device import choose_device
    from engine.ml.train import train

    # The worker's thread share for one CPU run of `world` processes (executors/torchrun.py).
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    parallel = ddp.DataParallel()
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
        parallel = ddp.DataParallel(rank=rank, world=world, local_rank=rank)
    config = validate_config({**DDP_CONFIG, "epochs": sizes.ddp_epochs})
    data = make_data(sizes.ddp_rows, DDP_FEATURES, DDP_CLASSES, torch.device("cpu"))
    if world > 1:
        dist.barrier()
    start = time.perf_counter()
    result = train(config, data, NullReporter(), choose_device("cpu"), parallel=parallel)
    seconds = time.perf_counter() - start
    if rank == 0:
        out.put((len(data.y_train) * sizes.ddp_epochs / seconds, result.history[-1]["val_loss"]))
    if world > 1:
        dist.destroy_process_group()


def ddp_samples_per_s(world: int, sizes: Sizes, workdir: Path) -> tuple[float, float]:
    """(samples/s, last val_loss) of one training with `world` processes."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    store = workdir / f"ddp-store-{world}-{time.monotonic_ns()}"
    procs = [
        ctx.Process(target=_ddp_rank, args=(rank, world, str(store), sizes, out))
        for rank in range(world)
    ]
    for p in procs:
        p.start()
    result = out.get(timeout=600)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0, f"a training process exited with {p.exitcode}"
    return result


def ddp_section(sizes: Sizes, workdir: Path, progress: Callable[[str], None]) -> list[str]:
    rates: dict[int, list[float]] = {1: [], 2: []}
    losses: dict[int, float] = {}
    for rep in range(sizes.repeats):
        for world in (1, 2):  # alternate, so drift in machine load hits both alike
            progress(f"DDP repeat {rep + 1}/{sizes.repeats}: {world} process(es)")
            rate, losses[world] = ddp_samples_per_s(world, sizes, workdir)
            rates[world].append(rate)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])

    def fmt(values: list[float]) -> str:
        text = f"{statistics.median(values):,.0f}"
        return text if len(values) == 1 else f"{text} ({min(values):,.0f}–{max(values):,.0f})"

    return [
        "## Data-parallel training: 1 vs 2 DDP processes on the CPU (gloo)",
        "",
        f"- the engine's `train()`; synthetic table of {sizes.ddp_rows:,} rows × {DDP_FEATURES}"
        f" features, {DDP_CLASSES} classes, MLP {DDP_CONFIG['hidden_sizes']}, total batch"
        f" {DDP_BATCH} rows per step (2 processes: {DDP_BATCH // 2} each), {sizes.ddp_epochs}"
        f" epoch(s), fp32; threads per process = {os.cpu_count()} cores / processes;"
        f" {sizes.repeats} repeat(s), median (min–max)",
        "",
        "| processes | samples/s | last val_loss |",
        "|---:|---:|---:|",
        f"| 1 | {fmt(rates[1])} | {losses[1]:.4f} |",
        f"| 2 | {fmt(rates[2])} | {losses[2]:.4f} |",
        "",
        f"2 processes / 1 process: **{two / one:.2f}×** the throughput"
        + (
            " (slower: on this machine the cores are shared, so each process gets half the"
            " threads and every step adds a gradient all-reduce)"
            if two < one
            else ""
        ),
    ]


def _wait(predicate: Callable[[], object], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the run did not get there in time")
        time.sleep(0.05)


def _timed_runs(env: dict[str, str], worker_args: list[str], n: int) -> list[tuple[float, float]]:
    """(submit → first metric, submit → completed) seconds for n runs, one after another."""
    import subprocess

    from db.session import get_db
    from engine.core.settings import Settings
    from engine.services.launch import submit_run

    store = get_db(Settings(home=Path(env["SEEDLAB_HOME"]), db_url=env["SEEDLAB_DB_URL"]))
    worker = subprocess.Popen(
        [sys.executable, "-m", "engine.execution.worker", "--poll-interval", "0.1", *worker_args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out = []
    try:
        for _ in range(n):
            started = time.perf_counter()
            run_id = submit_run(store, "iris", {"epochs": 3})
            _wait(lambda: db.runs.get_run(store, run_id).summary, 300)  # noqa: B023
            first = time.perf_counter() - started
            _wait(lambda: db.runs.get_run(store, run_id).status != "running", 300)  # noqa: B023
            status = db.runs.get_run(store, run_id).status
            assert status == "completed", f"run {run_id} ended {status}"
            out.append((first, time.perf_counter() - started))
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    return out


def executor_section(sizes: Sizes, workdir: Path, progress: Callable[[str], None]) -> list[str]:
    import subprocess

    home = workdir / "executors"
    env = {
        **os.environ,
        "SEEDLAB_HOME": str(home),
        "SEEDLAB_DB_URL": f"sqlite:///{home / 'seedlab.db'}",
        "PYTHONPATH": str(ROOT),
    }
    cli = [sys.executable, "-m", "engine.cli.main"]
    subprocess.run([*cli, "init"], env=env, cwd=ROOT, check=True, capture_output=True)
    progress(f"local executor: {sizes.executor_runs} runs")
    local = _timed_runs(env, [], sizes.executor_runs)
    ray_tmp = tempfile.mkdtemp(prefix="slray", dir="/tmp")  # short: Ray's socket paths
    progress("starting a loopback Ray cluster")
    with socket.socket() as probe:  # a free port, so the head never collides with a used one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    up = [*cli, "cluster", "up", "--cpus", "2", "--port", str(port), "--temp-dir", ray_tmp]
    subprocess.run(up, env=env, cwd=ROOT, check=True, capture_output=True)
    try:
        progress(f"Ray executor: {sizes.executor_runs} runs")
        ray = _timed_runs(env, ["--executor", "ray"], sizes.executor_runs)
    finally:
        subprocess.run([*cli, "cluster", "down"], env=env, cwd=ROOT, capture_output=True)
    rows = []
    for label, idx in (("submit → first epoch stored", 0), ("submit → completed", 1)):
        lo = statistics.median(r[idx] for r in local)
        ra = statistics.median(r[idx] for r in ray)
        rows.append(f"| {label} | {lo:.2f} s | {ra:.2f} s | {ra / lo:.2f}× |")
    return [
        "## Executors: local subprocess vs Ray task (one run at a time)",
        "",
        f"- iris, 3 epochs, {sizes.executor_runs} runs one after another per executor, median;"
        " a real `seedlab worker` (poll 0.1 s) and, for Ray, a loopback `seedlab cluster up"
        " --cpus 2`; SQLite",
        "",
        "| | local | Ray | Ray / local |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        "The difference is Ray's per-run cost: a fresh Ray worker process (one per run, so no"
        " state leaks between runs) started with the run's environment, then the same training.",
    ]


SECTIONS: dict[str, Callable[[Sizes, Path, Callable[[str], None]], list[str]]] = {
    "database": database_section,
    "ddp": ddp_section,
    "executor": executor_section,
}


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- bench_scale_out:{name}:begin -->", f"<!-- bench_scale_out:{name}:end -->"


def _replace_subsection(name: str, lines: list[str]) -> None:
    """Replace one section inside this script's block of RESULTS.md (appended at the block's
    end when it is not there yet), keeping the others."""
    begin, end = _markers(name)
    section = "\n".join([begin, *lines]).rstrip("\n") + "\n" + end
    text = RESULTS_PATH.read_text() if RESULTS_PATH.exists() else ""
    if begin not in text and END in text:
        RESULTS_PATH.write_text(text.replace(END, section + "\n\n" + END, 1))
        return
    replace_section(RESULTS_PATH, begin, end, section)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke check")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--only", choices=sorted(SECTIONS), help="run one section")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()

    def progress(msg: str) -> None:
        print(f"  … {msg}", file=sys.stderr, flush=True)

    load_before = os.getloadavg()
    parts: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="seedlab-bench-scale-out-") as tmp:
        for name, section in SECTIONS.items():
            if args.only in (None, name):
                parts[name] = section(sizes, Path(tmp), progress)
    load_after = os.getloadavg()
    header = [
        "## Scale-out: PostgreSQL vs SQLite",
        "",
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores",
        f"- command: `PYTHONPATH=. {Path(sys.executable).name} bench/bench_scale_out.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
        + "`",
        "- load average before: "
        + "/".join(f"{x:.2f}" for x in load_before)
        + ", after: "
        + "/".join(f"{x:.2f}" for x in load_after),
        "",
    ]
    for name, part in parts.items():
        parts[name] = [
            line.replace("## ", "### ", 1) if line.startswith("## ") else line for line in part
        ]
    if args.only:
        # One section: its own date, command and load, in its place inside the block.
        header[0] = ""
        parts[args.only][1:1] = header[1:-1]
    body = []
    for name, part in parts.items():
        begin, end = _markers(name)
        body += [begin, *part, end, ""]
    print("\n".join(([] if args.only else header) + body))
    if args.write_results and args.only:
        _replace_subsection(args.only, parts[args.only])
        print(f"wrote {RESULTS_PATH.relative_to(ROOT)}")
    elif args.write_results:
        section = "\n".join([BEGIN, *header, *body]).rstrip("\n") + "\n" + END
        replace_section(RESULTS_PATH, BEGIN, END, section)
        print(f"wrote {RESULTS_PATH.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
