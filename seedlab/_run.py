"""A run as the training code sees it, and the background thread that writes what it logs.

`Run.log()` only checks its arguments and appends a tuple to a deque (thread-safe, no lock):
encoding JSON and writing it happen on the writer thread, in batches, so logging costs the
training loop about a microsecond per call.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from math import isfinite
from pathlib import Path
from types import TracebackType
from typing import Any

from seedlab._sinks import Sink

FINISHED_STATUSES = ("completed", "failed", "cancelled")
# The writer wakes this often to write what was logged meanwhile.
FLUSH_INTERVAL_S = 0.05
# A cancel is looked for at most this often (a stat() per call would cost ~2 µs).
STOP_CHECK_INTERVAL_S = 0.2
_PLAIN_NUMBERS = (float, int)


class SeedlabSDKError(Exception):
    """Something the SDK cannot do; the message says what is wrong and what to do."""


def heartbeat_interval_s() -> float:
    """A quarter of the server's heartbeat timeout (SEEDLAB_HEARTBEAT_TIMEOUT_S, default 60 s),
    at most 5 s: a live run is never taken for a dead one."""
    try:
        timeout = float(os.environ.get("SEEDLAB_HEARTBEAT_TIMEOUT_S") or 60.0)
    except ValueError:
        timeout = 60.0
    return min(5.0, max(0.05, timeout / 4))


def _number(key: object, value: object) -> float:
    """A logged value as a float: plain numbers, NumPy scalars, 0-d tensors (anything float()
    takes except text)."""
    if isinstance(value, str | bytes):
        raise TypeError(
            f"seedlab: the value logged for {key!r} is text ({value!r}); log numbers only "
            f"(put text in the run's config instead)."
        )
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError(
            f"seedlab: the value logged for {key!r} is a {type(value).__name__}, not a number; "
            f"log a float or int (for a tensor: .item())."
        ) from None


def _checked(values: Mapping[str, Any]) -> dict[str, float]:
    return {str(k): _number(k, v) for k, v in values.items()}


class _Writer:
    """The background thread: batches records into the sink, and beats the heartbeat."""

    def __init__(self, sink: Sink, heartbeat_s: float) -> None:
        self.sink = sink
        self.heartbeat_s = heartbeat_s
        self.records: deque[tuple] = deque()
        self._keys: dict[str, str] = {}  # key -> its JSON text and ": "
        self.error: BaseException | None = None
        self._wake = threading.Event()
        self._closing = False
        self._thread = threading.Thread(target=self._loop, name="seedlab-writer", daemon=True)
        self._thread.start()

    def put(self, record: tuple) -> None:
        self.records.append(record)

    def _encode(self, record: tuple) -> str:
        if record[0] != "m":
            return json.dumps(record[1])
        _, step, values, at = record
        # By hand, with each key's JSON text cached: json.dumps of the whole line costs about
        # twice as much, and at one value a call the encoding is most of the SDK's work.
        keys = self._keys
        parts = []
        for key, value in values.items():
            text = keys.get(key)
            if text is None:
                text = keys[key] = json.dumps(key) + ": "
            plain = value.__class__ is int or isfinite(value)  # an int may be past a float's range
            parts.append(text + (repr(value) if plain else json.dumps(value)))
        step_text = "null" if step is None else str(step)
        return (
            f'{{"type": "metrics", "step": {step_text}, "values": {{{", ".join(parts)}}}, '
            f'"time": {at!r}}}'
        )

    def _write_pending(self) -> None:
        records = self.records
        lines = []
        # popleft until empty: whatever is appended meanwhile waits for the next round.
        for _ in range(len(records)):
            lines.append(self._encode(records.popleft()))
        if lines:
            self.sink.write(lines)

    def _loop(self) -> None:
        last_beat = 0.0
        while True:
            closing = self._closing
            try:
                now = time.time()
                if now - last_beat >= self.heartbeat_s:
                    self.put(("x", {"type": "heartbeat", "time": now}))
                    last_beat = now
                self._write_pending()
            except BaseException as exc:  # noqa: BLE001 - kept and raised in the training thread
                self.error = exc
                return
            if closing:
                return
            self._wake.wait(FLUSH_INTERVAL_S)

    def close(self) -> None:
        """Write everything logged so far, then stop the thread and close the sink."""
        self._closing = True
        self._wake.set()
        self._thread.join()
        if self.error is None:
            self._write_pending()  # a record put after the thread's last round
        self.sink.close()


class Run:
    """One run being logged. Made by `seedlab.init()`; use it as a context manager, or call
    `finish()` yourself. Attributes: `id`, `name`, `checkpoint_dir` (a folder kept across a
    resume, or None), `resumed` (whether this is a resume of an earlier attempt), `dir` (the
    run's folder on the server, when it is on this machine)."""

    def __init__(
        self,
        *,
        run_id: int | None,
        name: str | None,
        sink: Sink,
        run_dir: str | None = None,
        stop_file: str | None = None,
        checkpoint_dir: str | None = None,
        resumed: bool = False,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.id = run_id
        self.name = name
        self.dir = None if run_dir is None else Path(run_dir)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        if self.checkpoint_dir is not None:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.resumed = resumed
        self.status: str | None = None  # set once finished
        self._stop_file = stop_file
        self._stop_seen = False
        self._next_stop_check = 0.0
        self._on_close = on_close
        self._writer = _Writer(sink, heartbeat_interval_s())
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<seedlab.Run id={self.id} name={self.name!r} status={self.status or 'running'}>"

    # -- logging --------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.status is not None:
            raise SeedlabSDKError(
                f"seedlab: run {self.id} is already {self.status}; start another with "
                f"seedlab.init()."
            )
        if self._writer.error is not None:
            raise SeedlabSDKError(
                f"seedlab: logging stopped: {self._writer.error}. The run's data up to then is "
                f"kept."
            ) from self._writer.error

    def log(self, values: Mapping[str, Any], step: int | None = None) -> None:
        """Log metric values (numbers) at `step`; without a step, each key's next step.
        A step logged twice for a key keeps the last value."""
        self._check_open()
        for key, value in values.items():
            if value.__class__ not in _PLAIN_NUMBERS or key.__class__ is not str:
                values = _checked(values)
                break
        else:
            values = dict(values)  # the caller may change its dict after this call
        if step is not None:
            step = int(step)
        self._writer.records.append(("m", step, values, time.time()))

    def summary(self, values: Mapping[str, Any]) -> None:
        """Record the run's results (e.g. {"test_accuracy": 0.93}): each value becomes the latest
        value of its key, which is what the run tables and Compare show."""
        self._check_open()
        self._writer.put(("x", {"type": "summary", "values": _checked(values)}))

    def log_artifact(self, path: str | os.PathLike[str], name: str | None = None) -> str:
        """Copy a file (or a folder) into the run's folder under artifacts/; returns its name
        there. The copy is made now, so the file may change or go afterwards."""
        self._check_open()
        source = Path(path)
        if not source.exists():
            raise FileNotFoundError(f"seedlab: no file {str(source)!r} to log as an artifact.")
        if self.dir is None:
            raise SeedlabSDKError(
                "seedlab: this run has no folder on this machine (SEEDLAB_RUN_DIR is not set), "
                "so log_artifact cannot copy files into it."
            )
        target_name = Path(name or source.name).name  # a name, never a path out of artifacts/
        target = self.dir / "artifacts" / target_name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
            size = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
        else:
            shutil.copyfile(source, target)
            size = target.stat().st_size
        record = {"type": "artifact", "name": target_name, "bytes": size, "source": str(source)}
        self._writer.put(("x", record))
        return target_name

    def should_stop(self) -> bool:
        """Whether a cancel was asked for (the Cancel button, `seedlab runs cancel`): stop the
        loop, and the run ends `cancelled`."""
        if self._stop_seen or self._stop_file is None:
            return self._stop_seen
        now = time.monotonic()
        if now >= self._next_stop_check:
            self._next_stop_check = now + STOP_CHECK_INTERVAL_S
            self._stop_seen = os.path.exists(self._stop_file)
        return self._stop_seen

    # -- ending ---------------------------------------------------------------------------------

    def finish(
        self,
        status: str | None = None,
        *,
        error: str | None = None,
        traceback_text: str | None = None,
    ) -> None:
        """End the run: `completed` (or `cancelled` once should_stop() said so) by default,
        else the status given. Writes everything logged, then returns; a second call does
        nothing."""
        with self._lock:
            if self.status is not None:
                return
            if status is None:
                status = "cancelled" if self._stop_seen else "completed"
            if status not in FINISHED_STATUSES:
                raise ValueError(
                    f"seedlab: status must be one of {', '.join(FINISHED_STATUSES)}; "
                    f"got {status!r}."
                )
            self.status = status
            record = {
                "type": "finish",
                "status": status,
                "error": error,
                "traceback": traceback_text,
            }
            self._writer.put(("x", record))
            self._writer.close()
            if self._on_close is not None:
                self._on_close()

    def _finish_with_exception(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        message = f"{exc_type.__name__}: {exc}" if str(exc) else exc_type.__name__
        if issubclass(exc_type, KeyboardInterrupt):
            self.finish("cancelled", error="Interrupted (Ctrl-C).", traceback_text=None)
        else:
            self.finish("failed", error=message, traceback_text=text)

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None or (issubclass(exc_type, SystemExit) and not _failing_exit(exc)):
            self.finish()
        else:
            assert exc is not None
            self._finish_with_exception(exc_type, exc, tb)
        # The exception, if any, goes on: the script fails as it would without Seedlab.


def _failing_exit(exc: BaseException | None) -> bool:
    code = getattr(exc, "code", None)
    return code not in (None, 0)
