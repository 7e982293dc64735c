"""Compare and the Run page with long runs, timed in a real browser (Playwright + Chromium).

    PYTHONPATH=. python bench/bench_compare_browser.py [--runs N] [--steps N] [--write-results]

A temporary SEEDLAB_HOME is filled with `--runs` synthetic runs of `--steps` steps each (five
curves per run, written by `seedlab demo fill`'s bulk insert). Two dashboards serve it on free
loopback ports: this checkout, and the baseline — the same pages as they were at
`--baseline-ref` (git archive of that commit), which read every point of every run before
downsampling. Headless Chromium opens each page once to warm the server (imports, caches),
then `--repeats` times, timing navigation → the chart drawn (Plotly has its traces and
Streamlit's "running" widget is gone):

- Compare of every run, on its default metric (val_loss: runs × steps points);
- the Run page of one run (its loss and quality curves, steps points each).

The same process also times the server's read alone: what the pages read now
(engine.services.curves.drawn_history, first read and cached) against the full read they did
before (db.metrics.metric_history). Ratios are baseline / now.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_metrics import RESULTS_PATH, cpu_model, replace_section  # noqa: E402
from db import metrics as metric_store  # noqa: E402
from db import run_query  # noqa: E402
from db.migrate import alembic_config, upgrade_to_head  # noqa: E402
from db.run_query import RunFilter  # noqa: E402
from db.session import get_db  # noqa: E402
from db.writes import digests as digest_writes  # noqa: E402
from engine.core.settings import Settings  # noqa: E402
from engine.report.charts import MAX_POINTS_PER_TRACE as RUN_PAGE_POINTS  # noqa: E402
from engine.report.compare_charts import points_per_run  # noqa: E402
from engine.services.curves import clear_cache, drawn_history  # noqa: E402
from engine.services.demo_fill import fill_project  # noqa: E402

BEGIN, END = "<!-- bench_compare_browser:begin -->", "<!-- bench_compare_browser:end -->"
# The last commit before Compare and the Run page read only what they draw (issue 18).
BASELINE_REF = "cd43e911c9a3f1c720bf8dfeef524a4967f546c9"
# The schema revision of BASELINE_REF: its pages refuse a newer database.
BASELINE_REVISION = "0009_jobs"
STARTUP_S = 120
PAGE_TIMEOUT_MS = 120_000
VIEWPORT = {"width": 1280, "height": 1000}
STATUS_WIDGET = '[data-testid="stStatusWidget"]'

# True once the page has at least `minPlots` Plotly charts, each with `minTraces` traces
# drawn (Plotly's own _fullData), and Streamlit is not running the script any more.
DRAWN = """
([minPlots, minTraces]) => {
  if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
  const plots = [...document.querySelectorAll('[data-testid="stMain"] .js-plotly-plot')]
    .filter(p => p._fullData && p._fullData.length >= minTraces);
  return plots.length >= minPlots;
}
"""


@dataclass
class Row:
    measurement: str
    variant: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read() == b"ok"
    except OSError:
        return False


@contextmanager
def dashboard(code: Path, home: Path, log: Path) -> Iterator[str]:
    """`seedlab dashboard` of the checkout at `code` on a free port, serving `home`."""
    env = dict(os.environ)
    env.update({"SEEDLAB_HOME": str(home), "SEEDLAB_AUTH": "off", "PYTHONPATH": str(code)})
    env.pop("SEEDLAB_DB_URL", None)
    port = free_port()
    out = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli.main", "dashboard", "--port", str(port)],
        cwd=code,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard in {code} did not start: {log.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.close()


def baseline_checkout(ref: str, into: Path) -> Path | None:
    """The repository's files at `ref` (git archive: no worktree, nothing shared), or None
    when this is no git checkout or the commit is not in it (a shallow clone)."""
    try:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", ref],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"  … no baseline: git archive {ref} failed ({exc})", file=sys.stderr)
        return None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def time_visit(page: Any, url: str, min_plots: int, min_traces: int) -> float:  # noqa: ANN401
    """Seconds from navigation to the charts drawn."""
    page.goto("about:blank")
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_function(DRAWN, arg=[min_plots, min_traces], timeout=PAGE_TIMEOUT_MS)
    return time.perf_counter() - start


def browser_rows(
    variants: dict[str, str], compare_ids: list[int], repeats: int, *, run_page: bool = True
) -> list[Row]:
    """Per variant, interleaved so both see the same load on a shared machine:

    - Compare, first open: each visit on a metric no visit has drawn yet (nothing cached);
    - Compare, reopened: the same comparison again (the drawing is cached now);
    - the Run page, first open of runs not opened yet, and reopened.

    One untimed visit to each page first: the server's imports, not the page, would be timed.
    """
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    n = len(compare_ids)
    compare = "/compare?runs=" + ",".join(map(str, compare_ids)) + "&metric="
    fresh_keys = ["train_loss", "val_accuracy", "val_f1_macro"][: max(1, min(repeats, 3))]
    fresh_runs = compare_ids[1 : 1 + repeats] or compare_ids[:1]
    rows: dict[tuple[str, str], Row] = {}

    def add(measurement: str, variant: str, seconds: float) -> None:
        rows.setdefault((measurement, variant), Row(measurement, variant)).seconds.append(seconds)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=VIEWPORT)
            for name, url in variants.items():
                print(f"  … warming {name}", file=sys.stderr, flush=True)
                time_visit(page, url + compare + "lr", 1, n)
                time_visit(page, url + compare + "val_loss", 1, n)
                if run_page:
                    time_visit(page, f"{url}/run?run={compare_ids[0]}", 2, 1)
            first = f"Compare of {n} runs, first open (a metric not drawn before) → drawn"
            again = f"Compare of {n} runs, reopened → curves drawn"
            run_first = "Run page, first open of a run → loss and quality curves drawn"
            run_again = "Run page, reopened → loss and quality curves drawn"
            names = list(variants)
            # Compare rounds, then Run page rounds; the variant that goes first alternates, so
            # neither always follows the other's heaviest page.
            for i in range(repeats):
                for name in names if i % 2 == 0 else names[::-1]:
                    print(f"  … Compare round {i + 1}, {name}", file=sys.stderr, flush=True)
                    url = variants[name]
                    if i < len(fresh_keys):
                        add(first, name, time_visit(page, url + compare + fresh_keys[i], 1, n))
                    add(again, name, time_visit(page, url + compare + "val_loss", 1, n))
            for i in range(repeats if run_page else 0):
                for name in names if i % 2 == 0 else names[::-1]:
                    print(f"  … Run page round {i + 1}, {name}", file=sys.stderr, flush=True)
                    url = variants[name]
                    if i < len(fresh_runs):
                        run_url = f"{url}/run?run={fresh_runs[i]}"
                        add(run_first, name, time_visit(page, run_url, 2, 1))
                    add(run_again, name, time_visit(page, f"{url}/run?run={compare_ids[0]}", 2, 1))
        finally:
            browser.close()
    return list(rows.values())


def timed(fn: Callable[[], Any], repeats: int, *, cold: bool = True) -> list[float]:
    """Seconds per call; `cold`: the drawn-series cache emptied before each (a first read)."""
    out = []
    for _ in range(repeats):
        if cold:
            clear_cache()
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def read_rows(db: Any, compare_ids: list[int], run_keys: list[str], repeats: int) -> list[Row]:  # noqa: ANN401
    run_id = compare_ids[0]
    points = points_per_run(len(compare_ids))
    compare = f"server read for Compare: {len(compare_ids)} runs × val_loss"
    run_page = f"server read for the Run page: {len(run_keys)} curves of one run"

    def compare_now() -> Any:  # noqa: ANN401
        return drawn_history(db, compare_ids, ["val_loss"], points)

    def run_now() -> Any:  # noqa: ANN401
        return drawn_history(db, [run_id], run_keys, RUN_PAGE_POINTS)

    rows = [
        Row(compare, "now", timed(compare_now, repeats)),
        Row(f"{compare}, cached", "now", timed(compare_now, repeats, cold=False)),
        Row(
            compare,
            "baseline",
            timed(lambda: metric_store.metric_history(db, compare_ids, ["val_loss"]), repeats),
        ),
        Row(run_page, "now", timed(run_now, repeats)),
        Row(
            run_page,
            "baseline",
            timed(lambda: metric_store.metric_history(db, [run_id], run_keys), repeats),
        ),
    ]
    # The baseline keeps nothing: its second read is its first.
    rows.append(Row(f"{compare}, cached", "baseline", rows[2].seconds))
    # The same first read without stored digests (db/writes/digests.py): the points picked in
    # SQL as before them, and the one read that builds and stores them (then served as "now").
    rows.append(
        Row(
            f"{compare}, no digests (picked in SQL)",
            "now",
            timed(
                lambda: metric_store.downsampled_series(db, compare_ids, "val_loss", points),
                repeats,
            ),
        )
    )
    rows.append(Row(f"{compare}, no digests (picked in SQL)", "baseline", rows[2].seconds))
    builds = []
    for _ in range(repeats):
        digest_writes.drop_digests(db, compare_ids)
        builds += timed(compare_now, 1)
    rows.append(Row(f"{compare}, digests built and stored", "now", builds))
    rows.append(Row(f"{compare}, digests built and stored", "baseline", rows[2].seconds))
    return rows


def format_table(rows: list[Row]) -> str:
    lines = [
        "| measurement | variant | median s | min–max s | baseline / now |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        base = next(
            (b for b in rows if b.measurement == r.measurement and b.variant == "baseline"), None
        )
        ratio = f"{base.median / r.median:.1f}×" if r.variant == "now" and base else ""
        lines.append(
            f"| {r.measurement} | {r.variant} | {r.median:.2f} | "
            f"{min(r.seconds):.2f}–{max(r.seconds):.2f} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=100, help="runs compared (default 100)")
    p.add_argument("--steps", type=int, default=10_000, help="steps per run (default 10,000)")
    p.add_argument("--repeats", type=int, default=3, help="timed visits per page (default 3)")
    p.add_argument(
        "--baseline-ref",
        default=BASELINE_REF,
        help="git commit of the baseline pages (default: the last one before the drawn read)",
    )
    p.add_argument(
        "--baseline-revision",
        default=BASELINE_REVISION,
        help="schema revision of --baseline-ref ('head': the same as this checkout's)",
    )
    p.add_argument("--no-baseline", action="store_true", help="time this checkout only")
    p.add_argument(
        "--compare-only", action="store_true", help="time Compare alone, not the Run page"
    )
    p.add_argument(
        "--server-only", action="store_true", help="time the server's reads alone, no browser"
    )
    p.add_argument("--write-results", action="store_true", help="update bench/RESULTS.md")
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    uptime_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="seedlab-bench-compare-") as tmp:
        home = Path(tmp) / "home"
        settings = Settings(home=home, db_url=f"sqlite:///{home / 'seedlab.db'}")
        settings.ensure_dirs()
        db = get_db(settings)
        upgrade_to_head(db)
        print(f"  … filling {args.runs} runs × {args.steps:,} steps", file=sys.stderr, flush=True)
        fill = fill_project(settings, db, project="Bench", runs=args.runs, steps=args.steps)
        runs = run_query.query_runs(db, RunFilter(project_id=fill.project_id), limit=None)
        compare_ids = sorted(r.id for r in runs)
        run_keys = ["train_loss", "val_loss", "val_accuracy", "val_f1_macro", "lr"]
        rows = read_rows(db, compare_ids, run_keys, args.repeats)
        db.dispose()
        if args.server_only:
            print(format_table(rows))
            print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
            return 0
        variants = {"now": (ROOT, home)}
        baseline = None
        if not args.no_baseline:
            baseline = baseline_checkout(args.baseline_ref, Path(tmp) / "baseline")
        if baseline is not None:
            variants["baseline"] = (
                baseline,
                baseline_home(home, Path(tmp) / "baseline-home", args.baseline_revision),
            )
        with contextlib_stack(variants, Path(tmp)) as urls:
            rows += browser_rows(urls, compare_ids, args.repeats, run_page=not args.compare_only)
    order = list(dict.fromkeys(r.measurement for r in rows if not r.measurement.startswith("s")))
    order += [r.measurement for r in rows if r.measurement.startswith("s")]
    rows.sort(key=lambda r: (order.index(r.measurement), r.variant != "now"))
    table = format_table(rows)
    uptime_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    env = [
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores; Chromium (headless, Playwright), "
        f"viewport {VIEWPORT['width']}×{VIEWPORT['height']}",
        "- command: `PYTHONPATH=. python bench/bench_compare_browser.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
        + "`",
        f"- workload: {args.runs} runs × {args.steps:,} steps × 5 curves "
        f"({fill.points:,} points) in SQLite; {args.repeats} timed visits per page after one "
        "untimed (warm server), median and min–max",
        "- baseline: "
        + (
            "none in the browser (--no-baseline, or its commit is not in this clone)"
            if baseline is None
            else f"the pages at commit {args.baseline_ref[:9]} (read every point, then "
            "downsample), serving a copy of the same home taken down to its schema, in the same run"
        ),
        f"- uptime before: `{uptime_before}`",
        f"- uptime after: `{uptime_after}`",
        "- load average (1/5/15 min) before: " + "/".join(f"{x:.2f}" for x in load_before),
    ]
    print("\n".join(env) + "\n\n" + table)
    if args.write_results:
        section = "\n".join(
            [
                BEGIN,
                "## Compare and the Run page with long runs, in the browser",
                "",
                *env,
                "",
                table,
                "",
                "- Browser rows time navigation → every chart drawn (Plotly's traces present, "
                "Streamlit idle) in headless Chromium; server rows time the read alone.",
                "- Timings on a shared machine move with its load (see uptime above); the "
                "variants are timed back to back, the first of each pair alternating, so both "
                "see the same conditions; compare ratios, not seconds, across machines.",
                "- The server rows show how much of a page is its metric read; the rest is the "
                "page's other sections, Streamlit's round trip and drawing in the browser.",
                END,
            ]
        )
        replace_section(RESULTS_PATH, BEGIN, END, section)
        print(f"\nwrote {RESULTS_PATH.relative_to(ROOT)}")
    return 0


def baseline_home(home: Path, target: Path, revision: str = BASELINE_REVISION) -> Path:
    """A copy of `home` with its database taken down to the baseline's schema `revision`: the
    old pages refuse a database written by a newer Seedlab. The same runs and points, read by
    old code. "head" leaves the schema as it is (a baseline of the same schema)."""
    from alembic import command

    shutil.copytree(home, target)
    db = get_db(Settings(home=target, db_url=f"sqlite:///{target / 'seedlab.db'}"))
    if revision != "head":
        command.downgrade(alembic_config(db), revision)
    db.dispose()
    return target


@contextmanager
def contextlib_stack(variants: dict[str, tuple[Path, Path]], tmp: Path) -> Iterator[dict[str, str]]:
    """Every variant's dashboard (its code, its home) running at once, stopped together."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield {
            name: stack.enter_context(dashboard(code, home, tmp / f"dashboard-{name}.log"))
            for name, (code, home) in variants.items()
        }


if __name__ == "__main__":
    sys.exit(main())
