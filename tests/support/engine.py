"""The engine for real in tests: a worker subprocess, and what its runs are checked with."""

from __future__ import annotations

import signal
import subprocess
import sys

from sqlalchemy import Engine

from db import runs as run_store
from db import workers as worker_store
from tests.support.commands import ROOT, child_env
from tests.support.waiting import wait_until

# A churn table with gaps, an empty category, a free-text column and a yes/no target (240 rows).
MESSY_CHURN_CSV = (
    "\n".join(
        ["tenure,monthly_fee,region,contract,comment,churn"]
        + [
            f"{'' if i % 7 == 0 else i % 40},{'' if i % 11 == 0 else 20 + (i * 37) % 80},"
            f"{['north', 'south', 'east', ''][i % 4]},{['monthly', 'yearly'][i % 2]},"
            f"customer note number {i} says something long about the service quality,"
            f"{'yes' if (i % 40) < 12 and i % 2 == 0 else 'no'}"
            for i in range(240)
        ]
    )
    + "\n"
)


def start_worker(*extra: str) -> subprocess.Popen:
    """`seedlab worker` as its own process, polling every 0.2 s (stdout and stderr piped)."""
    return subprocess.Popen(
        [sys.executable, "-m", "engine.execution.worker", "--poll-interval", "0.2", *extra],
        env=child_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_worker(proc: subprocess.Popen) -> str:
    """SIGTERM (what `seedlab up` sends), SIGKILL after 30 s; returns the worker's output."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.stdout.read() if proc.stdout else ""


def run_status(db: Engine, run_id: int) -> str:
    return run_store.get_run(db, run_id).status


def wait_for_worker_polls(db: Engine, polls: int = 2, timeout: float = 30) -> None:
    """Return once the live worker has run `polls` whole polls that began after this call.

    For checks that something does NOT happen (a capped run stays queued, a cancelled sweep
    launches no trial): each poll beats the heartbeat first and then claims runs and advances
    sweeps, so once `polls + 1` fresh beats are seen, `polls` whole polls have had their chance.
    """
    seen: list[object] = []

    def beaten() -> bool:
        worker = worker_store.last_worker(db)
        assert worker is not None, "no worker has registered"
        if not seen or worker.heartbeat_at > seen[-1]:
            seen.append(worker.heartbeat_at)
        return len(seen) > polls + 1  # seen[0] may be a poll already under way

    wait_until(beaten, timeout, what=f"{polls} worker polls", interval=0.02)


def epochs_of(db: Engine, run_id: int, key: str) -> list[float]:
    """The epoch of each stored point of `key`, in step order: the points sit at optimizer
    steps, the run's `epoch` series says which epoch each one is (engine/core/epochs.py)."""
    from db import metrics as metric_store
    from engine.core.epochs import EPOCH_KEY, epochs_at

    points, marks = (metric_store.metric_series(db, run_id, k) for k in (key, EPOCH_KEY))
    return epochs_at(points.steps, marks.steps, marks.values).tolist()
