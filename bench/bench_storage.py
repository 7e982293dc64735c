"""How long the storage report and the clean-up plan take on a home with thousands of runs.

    python bench/bench_storage.py                   # 3,000 runs; prints its table
    python bench/bench_storage.py --write-results   # also updates its section of RESULTS.md
    python bench/bench_storage.py --quick           # smoke run, 200 runs

In one process, on a fresh SQLite home: N finished runs (bulk-inserted rows) whose folders each
hold a model, a resume checkpoint, a report, a log and an export (6 files, ~50 KB). Timed:
`storage.usage` measured cold (max_age_s=0), the cached report, and `storage.plan_clean`.
The baseline is a bare `os.walk` summing st_size over the same home in the same process, so the
ratio says what Seedlab adds to the walk it cannot avoid (reading the run rows, grouping).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BEGIN, END = "<!-- bench_storage:begin -->", "<!-- bench_storage:end -->"


def _walk(home: Path) -> int:
    return sum(
        os.stat(os.path.join(folder, f)).st_size
        for folder, _, files in os.walk(home)
        for f in files
    )


def _timed(fn, repeats: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def run(n_runs: int, repeats: int) -> dict[str, list[float]]:
    from db.migrate import upgrade_to_head
    from db.session import get_db
    from db.writes import bulk
    from engine.core.settings import Settings
    from engine.services import storage

    settings = Settings.from_env()
    settings.ensure_dirs()
    db = get_db(settings)
    upgrade_to_head(db)
    old = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=90)
    rows = [
        {
            "name": f"run{i}",
            "config": {"model": "mlp"},
            "status": "completed",
            "cancel_requested": False,
            "created_at": old,
            "finished_at": old,
            "notes": "",
            "project_id": 1,
            "archived": False,
            "attempts": 0,
        }
        for i in range(n_runs)
    ]
    ids = bulk.insert_finished_runs(db, rows, [[]] * n_runs, ([] for _ in rows))
    for run_id in ids:
        folder = settings.run_dir(run_id)
        (folder / "exports").mkdir(parents=True)
        (folder / "model.pt").write_bytes(b"m" * 20_000)
        (folder / "resume.pt").write_bytes(b"r" * 25_000)
        (folder / "resume.json").write_text('{"epoch": 3}')
        (folder / "report.json").write_text("{}" * 500)
        (folder / "run.log").write_text("line\n" * 100)
        (folder / "exports" / "model.onnx").write_bytes(b"o" * 4_000)
    times = {
        "baseline: os.walk summing sizes": _timed(lambda: _walk(settings.home), repeats),
        "storage.usage, measured (cold)": _timed(
            lambda: storage.usage(settings, db, max_age_s=0), repeats
        ),
        "storage.usage, cached": _timed(lambda: storage.usage(settings, db), repeats),
        "storage.plan_clean(30 days)": _timed(
            lambda: storage.plan_clean(settings, db, 30), repeats
        ),
    }
    plan = storage.plan_clean(settings, db, 30)
    assert len(plan.items) == 3 * n_runs, len(plan.items)
    return times


def report(times: dict[str, list[float]], n_runs: int) -> str:
    base = statistics.median(times["baseline: os.walk summing sizes"])
    lines = [
        f"| step ({n_runs:,} runs) | median ms | min–max ms | × the bare walk |",
        "|---|---:|---:|---:|",
    ]
    for name, values in times.items():
        med = statistics.median(values)
        lines.append(
            f"| {name} | {med:.1f} | {min(values):.1f}–{max(values):.1f} | {med / base:.2f}× |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="200 runs, 2 repeats")
    parser.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    n_runs, repeats = (200, 2) if args.quick else (args.runs, args.repeats)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as home:
        os.environ["SEEDLAB_HOME"] = home
        os.environ.pop("SEEDLAB_DB_URL", None)
        times = run(n_runs, repeats)
    load_after = os.getloadavg()
    table = report(times, n_runs)
    print(table)
    if args.write_results and not args.quick:
        from bench.bench_metrics import RESULTS_PATH, replace_section

        fmt = "/".join
        section = "\n".join(
            [
                BEGIN,
                "## Storage: disk use and the clean-up plan on thousands of runs",
                "",
                f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: "
                f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                "- command: `PYTHONPATH=. python bench/bench_storage.py --write-results`",
                f"- load average before: {fmt(f'{x:.2f}' for x in load_before)}, "
                f"after: {fmt(f'{x:.2f}' for x in load_after)}",
                f"- {repeats} repeats; each run folder: 6 files, ~50 KB; warm page cache",
                "",
                table,
                END,
            ]
        )
        replace_section(RESULTS_PATH, BEGIN, END, section)


if __name__ == "__main__":
    main()
