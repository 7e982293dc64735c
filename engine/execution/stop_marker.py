"""How a run's process tells an engine shutdown from a failed peer.

When any rank of a data-parallel run fails, torchrun stops the others with SIGTERM, the same
signal the worker sends when the engine shuts down. A run must be requeued only in the second
case (else a crashing run would be requeued forever), so before terminating a run at shutdown
the worker writes the pid it terminates into the run's folder; rank 0 then finds its own
launcher's pid there and requeues, and otherwise fails the run.
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.core.atomic import write_text_atomic

STOP_MARKER = "engine-stopping"


def mark_engine_stopping(run_dir: Path, launcher_pid: int) -> None:
    """Called by the worker just before it terminates the run's process at shutdown."""
    try:
        write_text_atomic(run_dir / STOP_MARKER, str(launcher_pid))
    except OSError:
        pass  # without the marker a data-parallel run fails instead of resuming; nothing worse


def engine_is_stopping(run_dir: Path) -> bool:
    """Whether the SIGTERM this rank got came from the engine shutting down: the marker names
    this process's launcher (a marker left by an earlier attempt names another pid)."""
    try:
        return (run_dir / STOP_MARKER).read_text().strip() == str(os.getppid())
    except OSError:
        return False
