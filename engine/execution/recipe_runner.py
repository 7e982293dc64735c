"""A recipe run: the team's script in a subprocess, supervised by the runner.

`runner.execute` hands a run whose source is "recipe" here, on the local executor and on Ray
alike (ray_task.py calls the same `execute`). The script runs from the run's code snapshot
(`runs/<id>/code`, engine/services/recipes.py) with its recipe's Python, its parameters as
`--name value`, and the environment the SDK reads (SEEDLAB_RUN_ID, SEEDLAB_SPOOL, …), so
`seedlab.init()` inside it attaches to this run. Its stdout and stderr are this process's, which
the executor already points at the run's log.

This process is the run's one writer: every ~0.5 s it drains the spool the SDK appends to into
the database and beats the heartbeat in the same transaction, which also answers whether a
cancel was requested. A cancel creates the stop file (`run.should_stop()` turns true), then
SIGTERMs the script's process group after STOP_GRACE_S and kills it TERM_GRACE_S later, so a
cancel lands in under 5 s even for a script that never looks. The final status is the one the
script finished with through the SDK; failing that, a cancel makes it `cancelled` and the exit
code decides between `completed` (0) and `failed`.

An engine shutdown (SIGTERM to this runner, or its worker gone) stops the script the same way
and requeues the run: the next attempt starts the script again with SEEDLAB_RESUMED=1 and the
same SEEDLAB_CHECKPOINT_DIR, for the script to resume from what it saved there.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import StatementError

from db import datasets as dataset_store
from db import runs as run_store
from db.records import RunRecord
from db.writes import digests as digest_writes
from db.writes import runs as run_writes
from engine.core.paths import PROJECT_ROOT
from engine.core.recipe_params import script_arguments
from engine.core.run_files import log_path, tail
from engine.core.settings import Settings
from engine.execution.sdk_drain import SpoolDrain
from engine.execution.system_metrics import start_for_run
from engine.services.provenance import record_what_ran

log = logging.getLogger("seedlab.runner")

POLL_S = 0.1  # how often the script's process is looked at
DRAIN_S = 0.5  # how often the spool is drained and the heartbeat beaten (and cancel read)
STOP_GRACE_S = 2.0  # after the stop file, before SIGTERM
TERM_GRACE_S = 1.5  # after SIGTERM, before SIGKILL
SNAPSHOT_WAIT_S = 5.0  # the submitter moves the snapshot in just after queueing the run


class _Stop(Exception):
    """The engine is stopping (SIGTERM) or the worker is gone: requeue the run."""


def _dataset_env(settings: Settings, db: Engine, run: RunRecord) -> dict[str, str]:
    """SEEDLAB_DATASET_PATH: a table's Parquet file (what `pd.read_parquet` takes), else the
    dataset's folder (images, text); SEEDLAB_DATASET_TARGET: the column Seedlab would predict."""
    if run.dataset_id is None:
        return {}
    dataset = dataset_store.get_dataset(db, run.dataset_id)
    if dataset is None:
        return {}
    folder = settings.resolve(dataset.path)
    table = folder / "data.parquet"
    return {
        "SEEDLAB_DATASET_PATH": str(table if table.is_file() else folder),
        "SEEDLAB_DATASET_TARGET": dataset.target,
    }


def recipe_env(settings: Settings, db: Engine, run: RunRecord, spool: Path) -> dict[str, str]:
    """The script's environment: this process's (CUDA_VISIBLE_DEVICES, threads…) plus the
    SDK's variables. PYTHONPATH is the SDK client alone, not the server's packages, so a
    script's own `db` or `engine` module cannot be shadowed and its venv needs nothing else."""
    run_dir = settings.run_dir(run.id)
    env = dict(os.environ)
    # The script reports through the spool, never the database: it gets no database URL
    # (with PostgreSQL that URL carries the server's password).
    for key in ("SEEDLAB_WORKER_PID", "SEEDLAB_DEVICE_LABEL", "SEEDLAB_DB_URL"):
        env.pop(key, None)
    env["PYTHONPATH"] = str(PROJECT_ROOT / "sdk")
    env["PYTHONUNBUFFERED"] = "1"
    env["SEEDLAB_RUN_ID"] = str(run.id)
    env["SEEDLAB_SPOOL"] = str(spool)
    env["SEEDLAB_STOP_FILE"] = str(run_dir / "stop")
    env["SEEDLAB_RUN_DIR"] = str(run_dir)
    env["SEEDLAB_CHECKPOINT_DIR"] = str(run_dir / "checkpoints")
    env["SEEDLAB_RESUMED"] = "1" if run.attempts else "0"
    env["SEEDLAB_PARAMS"] = json.dumps(run.config.get("params") or {})
    env.pop("SEEDLAB_DATASET_PATH", None)
    env.pop("SEEDLAB_DATASET_TARGET", None)
    env.update(_dataset_env(settings, db, run))
    return env


def _command(run: RunRecord) -> list[str]:
    from engine.services.recipes import python_for

    config = run.config
    return [python_for(config), config["entry"], *script_arguments(config.get("params") or {})]


def _die_with_parent() -> None:
    """In the script's process before it starts: SIGTERM it when this supervisor dies, even by
    SIGKILL (Linux's PR_SET_PDEATHSIG), so no script trains on with nobody draining its spool.
    Elsewhere a no-op: the engine's stale-run check still settles the run."""
    if sys.platform != "linux":
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _stop_process(process: subprocess.Popen, grace_s: float = TERM_GRACE_S) -> None:
    """SIGTERM the script's process group, SIGKILL it after `grace_s`."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _flush(db: Engine, run_id: int, drain: SpoolDrain) -> bool:
    """Drain what the script spooled; beat the heartbeat even when it wrote nothing (a script
    may load data silently for minutes and must not look dead). True: a cancel is requested."""
    read = drain.lines_read
    drain.pump()
    cancelled = drain.cancel_requested
    if drain.lines_read == read:
        cancelled = run_writes.record_progress(db, run_id, []) or cancelled
    return cancelled


def execute_recipe(settings: Settings, db: Engine, run: RunRecord) -> str:
    """Run a recipe run's script to a final status and return it (or "queued" when the engine
    stops meanwhile and the run is requeued)."""
    run_id = run.id
    run_dir = settings.run_dir(run_id)
    code = run_dir / "code"
    deadline = time.monotonic() + SNAPSHOT_WAIT_S
    while not code.is_dir() and time.monotonic() < deadline:
        time.sleep(0.1)
    if not code.is_dir():
        run_writes.finish_run(
            db, run_id, "failed", f"The run's code snapshot ({code}) is missing; launch it again."
        )
        return "failed"
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    stop_file = run_dir / "stop"
    stop_file.unlink(missing_ok=True)  # a cancel of an earlier attempt is not this one's
    spool = run_dir / f"spool-{run.attempts}.jsonl"
    # The SDK helper's drain (engine/execution/sdk_drain.py); the status is settled here, from
    # its `finish` line, a cancel or the exit code.
    drain = SpoolDrain(settings, db, run_id, spool, stop_file=stop_file, apply_finish=False)
    command = _command(run)
    log.info("recipe %s: %s (in %s)", run.config.get("recipe"), " ".join(command), code)
    worker_pid = os.environ.get("SEEDLAB_WORKER_PID", "")
    try:
        process = subprocess.Popen(
            command,
            cwd=code,
            env=recipe_env(settings, db, run, spool),
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: a cancel stops its child processes too
            preexec_fn=_die_with_parent,
        )
    except OSError as exc:
        run_writes.finish_run(
            db,
            run_id,
            "failed",
            f"Could not start the recipe's Python ({command[0]}): {exc.strerror}. Check the "
            "recipe's --python (seedlab recipes show).",
        )
        return "failed"
    device = os.environ.get("SEEDLAB_DEVICE_LABEL") or (
        "cpu" if os.environ.get("CUDA_VISIBLE_DEVICES") == "" else "auto"
    )
    node = os.environ.get("SEEDLAB_RAY_NODE")
    run_writes.mark_started(
        db, run_id, pid=process.pid, device=f"ray {device} on node {node}" if node else device
    )
    # What ran (the code snapshot, this Python, the command) and the script's CPU/memory/GPU
    # figures; a script that uses the SDK sends its own view of what ran, which replaces this.
    record_what_ran(settings, db, run_id, device, code, argv=command)
    sampler = start_for_run(
        db, run, on_gpu=os.environ.get("CUDA_VISIBLE_DEVICES") != "", pid=os.getpid()
    )

    def on_sigterm(_signum: int, _frame: Any) -> None:  # noqa: ANN401
        raise _Stop()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    cancel_at: float | None = None
    termed = False
    last_drain = 0.0
    try:
        while True:
            code_now = process.poll()
            now = time.monotonic()
            if code_now is not None or now - last_drain >= DRAIN_S:
                if worker_pid.isdigit() and os.getppid() != int(worker_pid):
                    raise _Stop()  # the worker died: requeue rather than run unsupervised
                if _flush(db, run_id, drain) and cancel_at is None:
                    cancel_at = now
                    stop_file.touch()
                    log.info("cancel requested: stop file created, SIGTERM in %.0f s", STOP_GRACE_S)
                last_drain = now
            if code_now is not None:
                while True:  # a backlog is drained in bounded reads: take all of it
                    offset = drain.offset
                    drain.pump()
                    if drain.offset == offset:
                        break
                break
            if drain.run_gone:  # deleted, or settled by someone else: nothing to run it for
                log.info("the run ended outside this runner; stopping its script")
                _stop_process(process)
                gone = run_store.get_run(db, run_id)
                return gone.status if gone is not None else "deleted"
            if cancel_at is not None and not termed and now - cancel_at >= STOP_GRACE_S:
                termed = True
                log.info("the script did not stop on its own; terminating it")
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            if termed and now - cancel_at >= STOP_GRACE_S + TERM_GRACE_S:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(POLL_S)
    except (_Stop, KeyboardInterrupt, StatementError) as exc:  # KeyboardInterrupt: ray.cancel
        if isinstance(exc, StatementError) and not isinstance(exc.orig, _Stop):
            raise  # a database error of its own; a _Stop raised mid-write is wrapped by SQLAlchemy
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop_process(process)
        _flush(db, run_id, drain)
        if run_writes.requeue_run(db, run_id):
            log.info("engine stopping: recipe run requeued; it starts again with SEEDLAB_RESUMED=1")
            return "queued"
        now_run = run_store.get_run(db, run_id)
        return now_run.status if now_run is not None else "deleted"
    finally:
        signal.signal(signal.SIGTERM, previous)
        if sampler is not None:
            sampler.stop()
    return _settle(settings, db, run_id, drain, process.returncode, cancel_at is not None)


def _settle(
    settings: Settings,
    db: Engine,
    run_id: int,
    drain: SpoolDrain,
    returncode: int,
    cancelled: bool,
) -> str:
    """The final status: the SDK's word first, then a cancel, then the exit code."""
    status, error = drain.status, drain.error
    if status not in ("completed", "failed", "cancelled"):
        if cancelled:
            status, error = "cancelled", None
        elif returncode == 0:
            status, error = "completed", None
        else:
            how = (
                f"was stopped by signal {-returncode}"
                if returncode < 0
                else f"exited with code {returncode}"
            )
            status = "failed"
            error = f"The script {how}."
            last = tail(log_path(settings, run_id), lines=8)
            if last:
                error += "\nLast lines of its log:\n" + last
    run_writes.finish_run(db, run_id, status, error)
    digest_writes.write_run_digests(db, run_id)  # what charts draw of it (curves.py)
    log.info("recipe run %s %s (exit code %s)", run_id, status, returncode)
    return status


def main(argv: list[str] | None = None) -> int:
    """`python -m engine.execution.recipe_runner RUN_ID`: what the local worker starts for a
    recipe run (runner.py's `execute` hands it here too, on Ray), without importing torch."""
    import sys

    from db.session import get_db

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m engine.execution.recipe_runner RUN_ID", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s"
    )
    settings = Settings.from_env()
    db = get_db(settings)
    run = run_store.get_run(db, int(args[0]))
    if run is None or run.status != "running" or run.source != "recipe":
        print(f"run {args[0]} is not a running recipe run; nothing to do", file=sys.stderr)
        return 1
    try:
        status = execute_recipe(settings, db, run)
    finally:
        path = log_path(settings, run.id)
        if path.exists():
            sys.stdout.flush()
            _record_log(db, run.id, path)
    return 0 if status in ("completed", "cancelled", "queued") else 1


def _record_log(db: Engine, run_id: int, path: Path) -> None:
    """The run's log as an artifact, as runner.py records a built-in run's."""
    import hashlib

    from db.writes import artifacts as artifact_writes

    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    artifact_writes.add_artifact(
        db, run_id, kind="log", path=path.name, size_bytes=path.stat().st_size, sha256=digest
    )


if __name__ == "__main__":
    raise SystemExit(main())
