"""Keeping run statuses true: stale runs, resumes, and what counts as "stale".

A run is `running` only while a runner beats its heartbeat (about every second). When it stops
beating — its worker was SIGKILLed, the machine restarted — whoever looks first settles it: the
worker at every poll (after one heartbeat timeout), and, so that no run stays `running` when no
worker ever comes back, every dashboard page and CLI command that shows runs (after two). A run
with a resume checkpoint goes back to `queued` and continues from its last epoch; one without
is `failed` with the reason. A run logged through the SDK (source "sdk") is always failed:
nobody can re-run the notebook or script that logged it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine

from db import runs as run_store
from db.session import utcnow
from db.writes import runs as run_writes
from engine.core.epochs import epochs_done
from engine.core.errors import SeedlabError
from engine.core.run_files import append_log_line, log_path, resume_path
from engine.core.settings import Settings
from engine.ml.checkpoints import checkpoint_epoch, saved_epoch
from engine.services.alerts import notify_run_ended

log = logging.getLogger("seedlab.recovery")


def heartbeat_timeout_s() -> float:
    """Seconds without a heartbeat after which a worker settles a run (SEEDLAB_HEARTBEAT_TIMEOUT_S,
    default 60, at least 1). Readers (dashboard, CLI) wait twice as long, so a live worker acts
    first."""
    return max(1.0, Settings.from_env().heartbeat_timeout_s)


def _now_text() -> str:
    return datetime.isoformat(utcnow(), timespec="seconds") + "Z"


def settle_stale_runs(
    settings: Settings,
    db: Engine,
    *,
    timeout_s: float,
    exclude_ids: Iterable[int] = (),
    who: str = "the engine",
) -> dict[int, str]:
    """Requeue (with a checkpoint) or fail (without) every `running` run whose heartbeat is older
    than `timeout_s`. Returns {run_id: "queued" | "failed"} for the runs it changed."""
    settled: dict[int, str] = {}
    for run_id in run_store.stale_run_ids(
        db, heartbeat_timeout_s=timeout_s, exclude_ids=exclude_ids
    ):
        run = run_store.get_run(db, run_id)
        if run is not None and run.source == "sdk":
            # Nobody can re-run a notebook or a script the engine did not start: never requeued.
            reason = (
                f"The process logging this run stopped sending heartbeats (none for "
                f"{timeout_s:.0f} s): it was killed, crashed or hangs. Its metrics up to then "
                f"are kept; run the script again to train it again."
            )
            if run_writes.fail_stale_run(db, run_id, heartbeat_timeout_s=timeout_s, reason=reason):
                settled[run_id] = "failed"
                append_log_line(settings, run_id, f"{_now_text()} {who}: {reason}")
            continue
        if run is not None and run.source == "recipe":
            # The engine has the script's code (its snapshot): it starts again, resumed.
            if run_writes.requeue_run(db, run_id, stale_after_s=timeout_s):
                settled[run_id] = "queued"
                append_log_line(
                    settings,
                    run_id,
                    f"{_now_text()} {who}: no heartbeat for {timeout_s:.0f} s; requeued: the "
                    "script starts again with SEEDLAB_RESUMED=1.",
                )
            continue
        epoch = saved_epoch(resume_path(settings, run_id))
        if epoch is not None:
            if run_writes.requeue_run(db, run_id, stale_after_s=timeout_s):
                settled[run_id] = "queued"
                append_log_line(
                    settings,
                    run_id,
                    f"{_now_text()} {who}: no heartbeat for {timeout_s:.0f} s; requeued to "
                    f"resume after epoch {epoch}.",
                )
            else:  # nothing to record on the run: it beat again, or another process settled it
                log.info("run %s not requeued: it beat again or was settled meanwhile", run_id)
            continue
        reason = (
            f"The engine stopped while the run was in progress (no heartbeat for "
            f"{timeout_s:.0f} s) before its first checkpoint. Clone the run to train it again."
        )
        if run_writes.fail_stale_run(db, run_id, heartbeat_timeout_s=timeout_s, reason=reason):
            settled[run_id] = "failed"
    for run_id, status in settled.items():
        log.warning("run %s had no heartbeat for %.0f s: %s", run_id, timeout_s, status)
        if status == "failed":
            notify_run_ended(db, settings, run_id)
    return settled


def settle_for_readers(settings: Settings, db: Engine) -> dict[int, str]:
    """The dashboard's and CLI's check: settle runs silent for two heartbeat timeouts, so a run
    never shows `running` while no engine is running it. Cheap when nothing is stale."""
    try:
        return settle_stale_runs(
            settings, db, timeout_s=2 * heartbeat_timeout_s(), who="a status check"
        )
    except OSError:  # an unreadable run folder must not break a page that only reads
        log.exception("settling stale runs failed")
        return {}


def resumable_epoch(settings: Settings, run_id: int) -> int | None:
    """The epoch a cancelled or failed run would resume after, or None without a checkpoint."""
    return saved_epoch(resume_path(settings, run_id))


def _cleaned_up(settings: Settings, run_id: int) -> bool:
    from engine.services.storage import CLEANED_BY_STORAGE

    path = log_path(settings, run_id)
    return path.is_file() and CLEANED_BY_STORAGE in path.read_text(errors="replace")


def resume_run(settings: Settings, db: Engine, run_id: int) -> int:
    """Queue a cancelled or failed run again; it continues after its last checkpointed epoch.

    Returns that epoch. Raises SeedlabError saying why a run cannot be resumed.
    """
    run = run_store.get_run(db, run_id)
    if run is None:
        raise SeedlabError(f"No run {run_id}.")
    if run.status not in ("cancelled", "failed"):
        raise SeedlabError(
            f"Run {run_id} is {run.status}; only a cancelled or failed run can be resumed."
        )
    if run.source == "recipe":  # the script resumes itself from its SEEDLAB_CHECKPOINT_DIR
        if not run_writes.requeue_run(db, run_id, from_statuses=("cancelled", "failed")):
            raise SeedlabError(f"Run {run_id} changed status meanwhile; look at it again.")
        append_log_line(
            settings,
            run_id,
            f"{_now_text()} resume requested: the script starts again with SEEDLAB_RESUMED=1 "
            "and its checkpoint folder.",
        )
        return 0
    # From the checkpoint the run will load, not its side file: the epoch said is the real one,
    # and a damaged or replaced checkpoint is refused here (InvalidCheckpoint) before queueing.
    epoch = checkpoint_epoch(resume_path(settings, run_id))
    if epoch is None:
        if _cleaned_up(settings, run_id):
            why = "a storage clean-up removed its resume checkpoint (its log says when)"
        elif epochs_done(run.summary) >= 1:
            why = "its resume checkpoint is missing (deleted from its folder)"
        else:
            why = "it stopped before its first epoch ended, so it saved no resume checkpoint"
        raise SeedlabError(
            f"Run {run_id} cannot be resumed: {why}. "
            f"Clone it to train it again: seedlab runs clone {run_id}"
        )
    if not run_writes.requeue_run(db, run_id, from_statuses=("cancelled", "failed")):
        raise SeedlabError(f"Run {run_id} changed status meanwhile; look at it again.")
    append_log_line(
        settings, run_id, f"{_now_text()} resume requested: continues after epoch {epoch}."
    )
    return epoch
