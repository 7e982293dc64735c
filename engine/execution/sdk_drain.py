"""Moving what the SDK (`seedlab/`) spools into the database: the one writer of an SDK run.

The SDK never writes the database: it appends JSON lines to a spool file (docs: the SDK
protocol; `seedlab/_sinks.py` writes them) and a drain reads them here. Two drains use this
module:
- **engine-attached** (a recipe run, or any process given SEEDLAB_RUN_ID + SEEDLAB_SPOOL): the
  runner that started the script pumps the spool of its run;
- **local** (`seedlab sdk drain --spool PATH`, started by the SDK itself): `start_local_run`
  creates the run from the spool's `init` line, then `drain_until_done` drains it until the
  SDK writes `finish` or its process is gone.

Public API
----------
`SpoolDrain(settings, db, run_id, spool_path, *, stop_file=None, log_traceback=True,
apply_finish=True)`
    `.pump() -> bool`: read every complete line written since the last pump and write it (one
    transaction for the metric points, which also beats the heartbeat); True once the `finish`
    line has been written (then `.status` and `.error` hold it). Cheap when nothing is new.
    `.init` is the `init` line once read (None before), `.cancel_requested` whether a cancel
    was seen (then `stop_file`, if given, exists: the SDK's `run.should_stop()` reads it).
`drain_until_done(settings, db, run_id, spool_path, *, alive=None, poll_s=0.1, stop_file=None,
log_traceback=True, apply_finish=True) -> str | None`
    Pump until `finish` (returns its status) or until `alive()` turns False: then the rest is
    drained and, with no `finish` line, the run is failed with a reason (returns "failed";
    `alive=None` never gives up). Returns None if the run ended meanwhile (deleted, or settled
    by recovery) — then nothing more is written.
`start_local_run(settings, db, init, *, pid=None) -> LocalRun`: the local drain's run.

What a line becomes
-------------------
- `metrics`: points in the `metrics` table, run summaries folded in (db/writes/metrics.py).
  **Repeated steps: the last value wins.** The table's key is (run, key, step), as for the
  engine's own runs, so a step logged twice keeps its latest value (MLflow would keep both).
  A line without a step gets the key's next step (one past its highest so far, in the database
  or in this spool).
  Values that are not numbers are left out; NaN is stored as NULL, as for built-in runs.
- `summary`: each value becomes the key's point one step past its last one (step 0 for a key
  never logged), so it is the run's latest value of that key — the result the run table,
  Compare and the Run page show.
- `artifact`: the file the SDK copied under `<run dir>/artifacts/` is recorded in the
  `artifacts` table (kind "sdk", with size and SHA-256).
- `heartbeat` (and any line at all): the run's heartbeat. A run whose SDK stops writing is
  settled by engine/services/recovery.py like any silent run: `failed`, never requeued.
- `finish`: the run's final status and error; the traceback of a failed run goes into its log.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from db import runs as run_store
from db.datasets import get_dataset_by_name
from db.models import ACTIVE_STATUSES, DEFAULT_PROJECT_ID
from db.projects import DuplicateProjectName, get_project_by_name
from db.writes import digests as digest_writes
from db.writes import projects as project_writes
from db.writes import runs as run_writes
from engine.core.errors import SeedlabError
from engine.core.run_files import append_log_line
from engine.core.settings import Settings
from engine.services import provenance, sdk_lines
from engine.services.alerts import notify_run_ended

log = logging.getLogger("seedlab.sdk_drain")

# One pump reads at most this much of the spool, so a long backlog is written in bounded
# transactions (about 200,000 points) and memory stays small.
MAX_READ_BYTES = 16 * 1024 * 1024
# How often a pump with nothing new still reads the cancel flag and whether the run still runs.
_CHECK_INTERVAL_S = 0.5
ARTIFACT_KIND = sdk_lines.ARTIFACT_KIND
STOP_FILE_NAME = ".stop"
# The local drain's stderr, beside the spool (the SDK quotes it when the drain fails to start).
DRAIN_LOG_NAME = "drain.log"


class SpoolDrain:
    """Reads one run's spool incrementally and writes it (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        db: Engine,
        run_id: int,
        spool_path: str | Path,
        *,
        stop_file: str | Path | None = None,
        log_traceback: bool = True,
        apply_finish: bool = True,
    ) -> None:
        self.settings = settings
        self.db = db
        self.run_id = run_id
        self.spool_path = Path(spool_path)
        self.stop_file = None if stop_file is None else Path(stop_file)
        self.log_traceback = log_traceback
        self.apply_finish = apply_finish
        self.init: dict[str, Any] | None = None
        self.finished = False
        self.status: str | None = None
        self.error: str | None = None
        self.cancel_requested = False
        self.run_gone = False  # the run ended outside this drain (deleted, or settled)
        self.lines_read = 0
        self.points_written = 0
        self._offset = 0
        # A resumed run goes on from its points: a key logged without a step continues after
        # its highest step so far, rather than overwriting step 0.
        record = run_store.get_run(db, run_id)
        self._next_step: dict[str, int] = (
            {} if record is None else {k: int(v["step"]) + 1 for k, v in record.summary.items()}
        )
        self._last_check = 0.0

    # -- reading ------------------------------------------------------------------------------

    def _read_lines(self) -> tuple[list[bytes], int]:
        """The complete lines after the offset, and the offset past them."""
        try:
            with self.spool_path.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read(MAX_READ_BYTES)
        except FileNotFoundError:
            return [], self._offset
        end = data.rfind(b"\n")
        if end < 0:  # nothing, or a line still being written: wait for its newline
            return [], self._offset
        return data[: end + 1].splitlines(), self._offset + end + 1

    def _parse(self, lines: list[bytes]) -> list[Any]:
        if not lines:
            return []
        try:  # one call for the whole batch: a json.loads per line costs about twice as much
            return json.loads(b"[" + b",".join(lines) + b"]")
        except ValueError:
            pass
        parsed = []
        for raw in lines:  # a bad line (or a blank one) somewhere: skip it, keep the rest
            try:
                parsed.append(json.loads(raw))
            except ValueError:
                if raw.strip():
                    log.warning("run %s: spool line not JSON, skipped: %.200r", self.run_id, raw)
        return parsed

    def _step_for(self, key: str, step: Any) -> int:  # noqa: ANN401 - JSON
        if isinstance(step, int) and not isinstance(step, bool):
            chosen = step
        else:
            chosen = self._next_step.get(key, 0)
        if chosen + 1 > self._next_step.get(key, 0):
            self._next_step[key] = chosen + 1
        return chosen

    @property
    def offset(self) -> int:
        """How many bytes of the spool this drain has read (whole lines only)."""
        return self._offset

    # -- pumping ------------------------------------------------------------------------------

    def pump(self) -> bool:
        """Write what is new in the spool; True once the run's `finish` line is written."""
        if self.finished or self.run_gone:
            return self.finished
        lines, next_offset = self._read_lines()
        if not lines:
            if time.monotonic() - self._last_check >= _CHECK_INTERVAL_S:
                self._last_check = time.monotonic()
                self._check_run()
            return self.finished
        parsed = [line for line in self._parse(lines) if isinstance(line, dict)]
        self.lines_read += len(parsed)
        steps_before = dict(self._next_step)
        try:
            # Every batch, even one with only a heartbeat, beats the run and reads the cancel flag.
            written = sdk_lines.write_lines(
                self.settings,
                self.db,
                self.run_id,
                parsed,
                self._next_step,
                apply_finish=self.apply_finish,
                log_traceback=self.log_traceback,
            )
        except Exception:
            # Nothing of the batch's points is written (one transaction): read it again next time.
            self._next_step.clear()
            self._next_step.update(steps_before)
            raise
        self._offset = next_offset
        self.points_written += written.points
        self._last_check = time.monotonic()
        if written.init is not None and self.init is None:
            self.init = written.init
            if isinstance(written.init.get("code"), dict):  # what ran, sent by the SDK
                provenance.record_code(
                    self.settings, self.db, self.run_id, provenance.json_safe(written.init["code"])
                )
        self._note_cancel(written.cancel)
        if written.finish_status is not None:
            self.finished, self.status, self.error = True, written.finish_status, written.error
            if self.apply_finish:  # the run is settled here: store what charts draw of it
                digest_writes.write_run_digests(self.db, self.run_id)
        return self.finished

    def _note_cancel(self, cancel: bool) -> None:
        if cancel and not self.cancel_requested:
            self.cancel_requested = True
            if self.stop_file is not None:
                self.stop_file.parent.mkdir(parents=True, exist_ok=True)
                self.stop_file.touch()

    def _check_run(self) -> None:
        run = run_store.get_run(self.db, self.run_id)
        if run is None or run.status not in ACTIVE_STATUSES:
            self.run_gone = True
            return
        self._note_cancel(bool(run.cancel_requested))

    def fail(self, reason: str) -> bool:
        """End the run `failed` with `reason` (in its log too), unless it has ended already."""
        append_log_line(self.settings, self.run_id, reason)
        ended = run_writes.finish_run(self.db, self.run_id, "failed", reason)
        self.finished, self.status, self.error = True, "failed", reason
        if ended:
            notify_run_ended(self.db, self.settings, self.run_id)
        return ended


def drain_until_done(
    settings: Settings,
    db: Engine,
    run_id: int,
    spool_path: str | Path,
    *,
    alive: Callable[[], bool] | None = None,
    poll_s: float = 0.1,
    stop_file: str | Path | None = None,
    log_traceback: bool = True,
    apply_finish: bool = True,
) -> str | None:
    """Pump a run's spool until it finishes (see the module docstring); returns its status."""
    drain = SpoolDrain(
        settings,
        db,
        run_id,
        spool_path,
        stop_file=stop_file,
        log_traceback=log_traceback,
        apply_finish=apply_finish,
    )
    while True:
        try:
            if drain.pump():
                return drain.status
        except OperationalError as exc:  # the database busy or away for a moment: try again
            log.warning("run %s: writing its spool failed (%s); retrying", run_id, exc)
            time.sleep(max(poll_s, 1.0))
            continue
        except DBAPIError:
            if run_store.get_run(db, run_id) is None:
                return None  # deleted while it logged: nothing left to write into
            raise
        if drain.run_gone:
            return None
        if alive is not None and not alive():
            # The process may have written its last lines just before it ended: take them.
            while True:
                offset = drain.offset
                if drain.pump():
                    return drain.status
                # A torn last line (killed mid-write) never gets its newline: stop there.
                if drain.offset == offset or drain.run_gone:
                    break
            drain.fail(
                "The process that logged this run ended without finishing it (it was killed "
                "or crashed before the run's end was written). Its metrics up to then are kept; "
                "run the script again to train it again."
            )
            return "failed"
        time.sleep(poll_s)


# -- the local drain: `seedlab sdk drain` -----------------------------------------------------


@dataclass(frozen=True)
class LocalRun:
    """What the local drain tells the SDK once it has created the run."""

    run_id: int
    run_dir: Path
    checkpoint_dir: Path
    stop_file: Path

    def reply(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run_dir": str(self.run_dir),
            "checkpoint_dir": str(self.checkpoint_dir),
            "stop_file": str(self.stop_file),
        }


def _project_id(db: Engine, name: Any) -> int:  # noqa: ANN401 - JSON
    if not name:
        return DEFAULT_PROJECT_ID
    clean = str(name).strip()
    project = get_project_by_name(db, clean)
    if project is not None:
        return project.id
    try:
        return project_writes.create_project(db, clean).id
    except DuplicateProjectName:  # another SDK run created it just now
        again = get_project_by_name(db, clean)
        assert again is not None
        return again.id


def start_local_run(
    settings: Settings, db: Engine, init: dict[str, Any], *, pid: int | None = None
) -> LocalRun:
    """Create the SDK run an `init` line asks for: its project by name (created if missing),
    its Seedlab dataset by name (none: a run on no dataset). Raises SeedlabError for a dataset
    Seedlab does not have."""
    dataset_id = None
    dataset = init.get("dataset")
    if dataset:
        record = get_dataset_by_name(db, str(dataset))
        if record is None:
            raise SeedlabError(
                f"No dataset named {dataset!r} in Seedlab. Upload it first "
                f"(seedlab datasets upload FILE --name {dataset}), or leave dataset= out."
            )
        dataset_id = record.id
    config = init.get("config")
    config = config if isinstance(config, dict) else {}
    name = str(init.get("name") or "").strip() or "sdk run"
    run_id = run_writes.create_sdk_run(
        db,
        name=name[:200],
        config=config,
        project_id=_project_id(db, init.get("project")),
        dataset_id=dataset_id,
        pid=pid,
    )
    run_dir = settings.run_dir(run_id)
    checkpoint_dir = run_dir / "checkpoints"
    (run_dir / "artifacts").mkdir(parents=True, exist_ok=True)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    return LocalRun(run_id, run_dir.resolve(), checkpoint_dir.resolve(), run_dir / STOP_FILE_NAME)


def read_init(spool_path: Path, timeout_s: float = 30.0) -> dict[str, Any]:
    """The spool's first line, which the SDK writes before it starts the local drain."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with spool_path.open("rb") as fh:
                first = fh.readline()
        except FileNotFoundError:
            first = b""
        if first.endswith(b"\n"):
            line = json.loads(first)
            if isinstance(line, dict) and line.get("type") == "init":
                return line
            raise SeedlabError(f"{spool_path} does not start with the SDK's init line.")
        if time.monotonic() > deadline:
            raise SeedlabError(f"No SDK init line in {spool_path} after {timeout_s:.0f} s.")
        time.sleep(0.05)


def process_alive(pid: int) -> Callable[[], bool]:
    """Whether the SDK's process still runs. The drain is its child: once the parent is gone the
    drain is re-parented, which also covers a killed parent left a zombie (a zombie still
    answers kill(pid, 0))."""
    watch_parent = os.getppid() == pid

    def alive() -> bool:
        if watch_parent:
            return os.getppid() == pid
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    return alive
