"""The engine worker: `seedlab worker` / `python -m engine.worker`.

Polls for queued runs, claims them atomically, starts one subprocess per run (so a crash kills
one run, never the worker), caps concurrency, beats a heartbeat, enforces cancels a runner does
not honour, and makes sure no run stays `running` after its process is gone.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from db import runs as run_store
from db import workers as worker_store
from db.migrate import upgrade_to_head
from engine.run_files import log_path, tail
from engine.settings import Settings, get_db
from engine.sweeps import advance_all as advance_sweeps

log = logging.getLogger("seedlab.worker")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# A running run owned by no live process of ours is declared dead after this long without a
# heartbeat (runners beat every ~1 s while training).
STALE_AFTER_S = 60.0
# A runner that ignores a cancel for this long is terminated.
CANCEL_GRACE_S = 10.0
# Runners get this long to exit after SIGTERM at shutdown before SIGKILL.
SHUTDOWN_GRACE_S = 10.0


@dataclass
class ActiveRun:
    run_id: int
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    cancel_seen_at: float | None = None
    terminated_for_cancel: bool = False


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = (
            " (often the system killing it for using too much memory)" if name == "SIGKILL" else ""
        )
        return f"was killed by {name}{hint}"
    return f"exited with code {code}"


class Worker:
    def __init__(
        self,
        settings: Settings,
        *,
        max_concurrent: int = 1,
        poll_interval: float = 0.5,
        stale_after_s: float = STALE_AFTER_S,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.settings = settings
        self.db = get_db(settings)
        self.max_concurrent = max_concurrent
        self.poll_interval = poll_interval
        self.stale_after_s = stale_after_s
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.active: dict[int, ActiveRun] = {}
        self._stopping = False

    # ------------------------------------------------------------ lifecycle

    def request_stop(self, *_args: object) -> None:
        self._stopping = True

    def run_forever(self) -> None:
        self.settings.ensure_dirs()
        upgrade_to_head(self.db)
        worker_store.register_worker(
            self.db,
            self.worker_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            max_concurrent=self.max_concurrent,
        )
        log.info(
            "worker %s started (max %d concurrent runs, home %s)",
            self.worker_id,
            self.max_concurrent,
            self.settings.home,
        )
        try:
            while not self._stopping:
                self.poll_once()
                time.sleep(self.poll_interval)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for active in self.active.values():
            if active.process.poll() is None:
                active.process.terminate()
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        for active in self.active.values():
            try:
                active.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                active.process.kill()
                active.process.wait()
        self._reap()
        worker_store.mark_stopped(self.db, self.worker_id)
        log.info("worker %s stopped", self.worker_id)

    # ------------------------------------------------------------ one poll

    def poll_once(self) -> None:
        worker_store.beat(self.db, self.worker_id)
        self._reap()
        self._enforce_cancels()
        self._fail_stale()
        # Sweeps queue their next trials here: the worker is their only writer.
        advance_sweeps(self.db)
        while not self._stopping and len(self.active) < self.max_concurrent:
            run_id = run_store.claim_next_run(self.db, self.worker_id)
            if run_id is None:
                break
            self._spawn(run_id)

    def _spawn(self, run_id: int) -> None:
        path = log_path(self.settings, run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        env = self.settings.child_env()
        env["PYTHONPATH"] = str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        with path.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "engine.runner", str(run_id)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=PROJECT_ROOT,
                # Own session: a Ctrl-C in the terminal reaches the worker, which then stops
                # its runs in order, instead of killing them mid-write.
                start_new_session=True,
            )
        run_store.mark_started(self.db, run_id, pid=process.pid)
        self.active[run_id] = ActiveRun(run_id, process)
        log.info("run %s started (pid %s)", run_id, process.pid)

    def _reap(self) -> None:
        """Runs whose process ended: if it left the run active, say why it failed."""
        for run_id, active in list(self.active.items()):
            code = active.process.poll()
            if code is None:
                continue
            del self.active[run_id]
            if active.terminated_for_cancel:
                if run_store.finish_run(self.db, run_id, "cancelled"):
                    log.info("run %s cancelled (terminated after ignoring the request)", run_id)
                continue
            log_tail = tail(log_path(self.settings, run_id), lines=15)
            message = f"The run's process {_describe_exit(code)} before the run finished."
            if log_tail:
                message += "\nLast lines of its log:\n" + log_tail
            if run_store.finish_run(self.db, run_id, "failed", message):
                log.warning("run %s: %s", run_id, message.splitlines()[0])
            else:
                log.info("run %s finished (process %s)", run_id, _describe_exit(code))

    def _enforce_cancels(self) -> None:
        requested = run_store.cancel_requested_ids(self.db, self.active)
        now = time.monotonic()
        for run_id in requested:
            active = self.active[run_id]
            if active.cancel_seen_at is None:
                active.cancel_seen_at = now
            elif now - active.cancel_seen_at > CANCEL_GRACE_S and not active.terminated_for_cancel:
                log.warning(
                    "run %s ignored its cancel for %.0f s; terminating it", run_id, CANCEL_GRACE_S
                )
                active.terminated_for_cancel = True
                active.process.kill()

    def _fail_stale(self) -> None:
        """Running runs with no live process of ours and no recent heartbeat (their worker
        was killed, or the machine restarted) are failed, so none stays `running` forever."""
        failed = run_store.fail_stale_runs(
            self.db,
            heartbeat_timeout_s=self.stale_after_s,
            exclude_ids=list(self.active),
            reason=(
                f"The engine stopped while the run was in progress (no heartbeat for "
                f"{self.stale_after_s:.0f} s). Clone the run to train it again."
            ),
        )
        for run_id in failed:
            log.warning(
                "run %s had no heartbeat for %.0f s: marked failed", run_id, self.stale_after_s
            )


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="seedlab worker")
    parser.add_argument("--max-concurrent", type=int, default=1)
    parser.add_argument("--poll-interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    run_worker(Settings.from_env(), args.max_concurrent, args.poll_interval)
    return 0


def run_worker(settings: Settings, max_concurrent: int = 1, poll_interval: float = 0.5) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    worker = Worker(settings, max_concurrent=max_concurrent, poll_interval=poll_interval)
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    worker.run_forever()


if __name__ == "__main__":
    raise SystemExit(main())
