"""One job in its own process: `python -m engine.execution.job_runner JOB_ID`.

The worker starts this for each job it claimed (export, compression, importance), so an exporter
that crashes or hangs never takes the worker down. It does the work through
engine.services.job_work.perform, records progress while it runs, and ends the job `completed` with
its result or `failed` with a sentence a user can act on. If this process dies before it could
record either, the worker fails the job with how it ended and the last lines of its log.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from sqlalchemy import Engine

from db import jobs as job_store
from db.session import get_db
from db.writes import jobs as job_writes
from engine.core.errors import SeedlabError
from engine.core.settings import Settings
from engine.services.job_work import perform

log = logging.getLogger("seedlab.job")

WHAT = {"export": "export", "compress": "compression", "importance": "importance computation"}


def job_log_path(settings: Settings, run_id: int, job_id: int) -> Path:
    """The job's output, in its run's folder (deleted with the run)."""
    return settings.run_dir(run_id) / "jobs" / f"job-{job_id}.log"


def run_job(settings: Settings, db: Engine, job_id: int) -> str:
    """Do a claimed job; returns the status it ended with ("skipped" if it was not running)."""
    job = job_store.get_job(db, job_id)
    if job is None or job.status != "running":
        log.warning("job %s is %s; nothing to do", job_id, job.status if job else "gone")
        return "skipped"

    def progress(text: str, fraction: float | None = None) -> None:
        log.info("%s", text)
        job_writes.set_progress(db, job_id, text, fraction)

    try:
        result = perform(settings, db, job.kind, job.run_id, job.params, progress)
    except SeedlabError as exc:  # ours: already a sentence that says what to do
        log.info("job %s failed: %s", job_id, exc)
        job_writes.finish_job(db, job_id, "failed", error=str(exc))
        return "failed"
    except Exception as exc:  # noqa: BLE001 - any other failure ends the job, said plainly
        log.exception("job %s failed", job_id)
        first = (str(exc).splitlines() or [""])[0][:300]
        job_writes.finish_job(
            db,
            job_id,
            "failed",
            error=(
                f"The {WHAT.get(job.kind, job.kind)} failed: {type(exc).__name__}: {first}. "
                f"The details are in {job_log_path(settings, job.run_id, job_id)}."
            ),
        )
        return "failed"
    job_writes.finish_job(db, job_id, "completed", result=result)
    log.info("job %s completed", job_id)
    return "completed"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m engine.execution.job_runner JOB_ID", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s job %(levelname)s %(message)s")
    settings = Settings.from_env()
    run_job(settings, get_db(settings), int(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
