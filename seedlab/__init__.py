"""Seedlab's client SDK: log runs that train in your own code into a Seedlab server.

    import seedlab

    with seedlab.init(project="Vision", name="resnet-try", config={"lr": 3e-4}) as run:
        for step in range(1000):
            run.log({"train_loss": loss, "val_accuracy": acc}, step=step)
            if run.should_stop():           # the Cancel button / `seedlab runs cancel`
                break
        run.log_artifact("model.pt")        # copied into the run's folder
        run.summary({"test_accuracy": 0.93})
    print(run.id)

Leaving the `with` block ends the run `completed`; an exception ends it `failed` with its
message (the traceback goes into the run's log); a cancel ends it `cancelled`. Without a `with`:
`seedlab.finish()` or `run.finish(status)`; a script that simply ends finishes its run too.
Logging is batched on a background thread (seedlab/_run.py) into a sink (seedlab/_sinks.py);
where it goes is chosen from the environment (seedlab/_connect.py). A step logged twice for a
key keeps the last value.

It ships two ways:
- as its own small distribution, `seedlab-sdk` (built from sdk/pyproject.toml), for a user's
  training environment. It must stay standard library only: installing it adds neither the
  server's packages (`db`, `engine`, `dashboard`) nor torch, and importing it imports neither;
- inside the server's own install (the root pyproject.toml), beside those packages.

`__version__` is the one version number of both distributions (the root pyproject.toml and
sdk/pyproject.toml read it from here), so an SDK and a server of the same version match.
"""

from __future__ import annotations

import atexit
import json
import sys
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from seedlab._connect import connect, init_line
from seedlab._run import Run, SeedlabSDKError

__version__ = "0.1.0"
__all__ = ["Run", "SeedlabSDKError", "current_run", "finish", "init", "log"]

_current: Run | None = None
_hooks_installed = False
_lock = threading.Lock()


def init(
    project: str | None = None,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    dataset: str | None = None,
) -> Run:
    """Start logging a run and return it (its `id` is known at once). Launched by Seedlab's
    engine, this attaches to the run the engine queued; anywhere else it creates a run in
    `project` (made if missing; default: "Default"), on the Seedlab dataset named `dataset`
    (default: none). `config` is recorded as the run's parameters (JSON-able values).

    A run still open in this process is finished (`completed`) first.
    """
    global _current
    with _lock:
        previous = _current
    if previous is not None:
        previous.finish()
    try:
        plain_config = json.loads(json.dumps(dict(config or {}), default=str))
    except (TypeError, ValueError) as exc:
        raise SeedlabSDKError(
            f"seedlab: config must be a dict of names to plain values; {exc}"
        ) from None
    connection = connect(init_line(project, name, plain_config, dataset))
    run = Run(
        run_id=connection.run_id,
        name=name,
        sink=connection.sink,
        run_dir=connection.run_dir,
        stop_file=connection.stop_file,
        checkpoint_dir=connection.checkpoint_dir,
        resumed=connection.resumed,
        on_close=connection.on_close,
    )
    with _lock:
        _current = run
    _install_hooks()
    return run


def current_run() -> Run | None:
    """The run `seedlab.log()` logs to: the last one started and not finished."""
    run = _current
    return run if run is not None and run.status is None else None


def _require_run() -> Run:
    run = current_run()
    if run is None:
        raise SeedlabSDKError("seedlab: no run is open; start one with seedlab.init().")
    return run


def log(values: Mapping[str, Any], step: int | None = None) -> None:
    """Log to the current run (see Run.log)."""
    _require_run().log(values, step=step)


def finish(status: str | None = None) -> None:
    """Finish the current run (see Run.finish); nothing to do when none is open."""
    run = current_run()
    if run is not None:
        run.finish(status)


def _install_hooks() -> None:
    """At the end of a script: an uncaught exception fails its open run, a normal end completes
    it — so code without a `with` block still ends its run right."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous_hook = sys.excepthook

    def excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        run = current_run()
        if run is not None:
            run._finish_with_exception(exc_type, exc, tb)
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(finish)
