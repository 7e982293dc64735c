"""Remote logging benchmark: points logged by the SDK over HTTP (SEEDLAB_URL + SEEDLAB_TOKEN),
counted once they are in the server's database, against the same points written straight into
the same database in this process (`append_metrics`, the floor).

    python bench/bench_remote.py                    # prints the table
    python bench/bench_remote.py --write-results    # also updates its section of RESULTS.md
    python bench/bench_remote.py --quick            # smoke run

It starts `seedlab dashboard` on a free port with its own SEEDLAB_HOME, makes a member and a
token, and runs a plain Python process that logs `--steps` steps of `--keys` keys with
`run.log(...)`; the clock stops when the run's points are all in the database. The baseline
writes the same points (batches of 1,000) into another run of that database from this process.
Both run in turn, `--repeats` times; the median is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_metrics import RESULTS_PATH, replace_section  # noqa: E402

BEGIN, END = "<!-- bench_remote:begin -->", "<!-- bench_remote:end -->"

SDK_SCRIPT = """
    import sys, time, seedlab
    steps, keys = int(sys.argv[1]), int(sys.argv[2])
    names = [f"k{i}" for i in range(keys)]
    t0 = time.perf_counter()
    with seedlab.init(name="bench-remote") as run:
        for step in range(steps):
            run.log({n: float(step) for n in names}, step=step)
        logged = time.perf_counter() - t0
    print(run.id, logged, time.perf_counter() - t0)
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_env(**extra: str) -> dict[str, str]:
    """This process's environment with the repo importable and `extra` set."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def start_server(home: Path, port: int, command: list[str], **env: str) -> subprocess.Popen:
    """`seedlab <command>` (a server on `port`) with its own home, once /api/v1/health answers.
    Also bench_serving.py's server (`models serve`)."""
    child = bench_env(SEEDLAB_HOME=str(home), **env)
    child.pop("SEEDLAB_DB_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", *command],
        env=child,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/api/v1/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"`seedlab {command[0]}` did not come up within 120 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--keys", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.keys, args.repeats = 200, 2, 1

    with tempfile.TemporaryDirectory(prefix="bench-remote-") as tmp:
        home, port = Path(tmp) / "home", free_port()
        server = start_server(home, port, ["dashboard", "--port", str(port)])
        try:
            os.environ["SEEDLAB_HOME"] = str(home)
            os.environ.pop("SEEDLAB_DB_URL", None)
            from db.metrics import metric_series
            from db.session import get_db
            from db.writes import metrics as metric_writes
            from db.writes import runs as run_writes
            from engine.core.settings import Settings
            from engine.services import accounts, api_tokens
            from engine.services.permissions import cli_actor

            db = get_db(Settings.from_env())
            accounts.add_user(db, cli_actor(), "bench", "bench-password", "member")
            token = api_tokens.create_token(db, cli_actor(), "bench")
            points = args.steps * args.keys
            remote, remote_logged, direct = [], [], []
            for _ in range(args.repeats):
                out = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        textwrap.dedent(SDK_SCRIPT),
                        str(args.steps),
                        str(args.keys),
                    ],
                    env=bench_env(
                        SEEDLAB_URL=f"http://localhost:{port}",
                        SEEDLAB_TOKEN=token,
                        SEEDLAB_SPOOL_DIR=str(Path(tmp) / "spool"),
                    ),
                    capture_output=True,
                    text=True,
                    check=True,
                )
                run_id, logged, total = out.stdout.split()
                stored = sum(len(metric_series(db, int(run_id), f"k{i}")) for i in range(args.keys))
                assert stored == points, f"{stored} of {points} points stored"
                remote.append(float(total))
                remote_logged.append(float(logged))

                run_id = run_writes.create_sdk_run(db, name="bench-direct", config={})
                rows = [
                    (f"k{i}", step, float(step), time.time())
                    for step in range(args.steps)
                    for i in range(args.keys)
                ]
                t0 = time.perf_counter()
                for start in range(0, len(rows), 1000):
                    metric_writes.append_metrics(db, run_id, rows[start : start + 1000])
                direct.append(time.perf_counter() - t0)
        finally:
            os.killpg(server.pid, signal.SIGINT)
            server.wait(30)

    r, d, logged = (statistics.median(x) for x in (remote, direct, remote_logged))
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    section = "\n".join(
        [
            BEGIN,
            "## Remote logging: the SDK over HTTP vs writing the database directly",
            "",
            f"- {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
            f"{os.cpu_count()} CPUs, load average {load} (1/5/15 min); server and SDK on this "
            "machine (localhost), SQLite.",
            f"- command: `python bench/bench_remote.py --write-results` ({args.steps:,} steps x "
            f"{args.keys} keys = {points:,} points, median of {args.repeats}).",
            "",
            "| path | points | seconds | points/s | vs direct |",
            "|---|---:|---:|---:|---:|",
            f"| SDK over HTTP, until all are in the database | {points:,} | {r:.2f} | "
            f"{points / r:,.0f} | {d / r:.2f}x |",
            f"| `append_metrics` in this process, batch 1,000 | {points:,} | {d:.2f} | "
            f"{points / d:,.0f} | 1.00x |",
            "",
            f"- The script itself: {logged:.2f} s for `seedlab.init` and the {points:,} "
            "`run.log` calls (the writer and uploader threads do the rest).",
            "- Timings on a shared machine move with its load (see above).",
            END,
        ]
    )
    print(section)
    if args.write_results:
        replace_section(RESULTS_PATH, BEGIN, END, section)


if __name__ == "__main__":
    main()
