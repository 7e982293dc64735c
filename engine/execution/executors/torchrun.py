"""How the local executor starts a run's process(es), and how it tells them the engine stops.

A run with `processes > 1` is started under torchrun (`torch.distributed.run`), which starts one
`python -m engine.execution.runner RUN_ID` per process with RANK/WORLD_SIZE/LOCAL_RANK set; every
process
writes to the run's log through the file handles it inherits. Kept apart from the worker so
another executor (Ray) can reuse the pieces it needs.

The stop marker: when any rank fails, torchrun stops the others with SIGTERM, the same signal the
worker sends when the engine shuts down. A run must be requeued only in the second case (else a
crashing run would be requeued forever), so before terminating a run at shutdown the worker
writes the pid it terminates into the run's folder; rank 0 then finds its own launcher's pid
there and requeues, and otherwise fails the run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from engine.core.atomic import write_text_atomic

STOP_MARKER = "engine-stopping"
# torchrun waits this long for its processes to exit after SIGTERM before it SIGKILLs them:
# below the worker's own grace (SHUTDOWN_GRACE_S, 10 s), so no process outlives torchrun.
SHUTDOWN_TIMEOUT_S = 5


def processes_of(config: dict) -> int:
    """The run's data-parallel process count (1 when absent or not a positive integer)."""
    value = config.get("processes", 1)
    return value if isinstance(value, int) and value > 1 else 1


def runner_command(run_id: int, processes: int = 1) -> list[str]:
    """The command line of a run: the runner itself, or torchrun starting `processes` of it."""
    runner = ["-m", "engine.execution.runner", str(run_id)]
    if processes <= 1:
        return [sys.executable, *runner]
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        # A rendezvous on a free loopback port: two data-parallel runs at once never collide.
        "--standalone",
        f"--nproc-per-node={processes}",
        # A failed process fails the run; restarting the group would train from scratch.
        "--max-restarts=0",
        f"--shutdown-timeout={SHUTDOWN_TIMEOUT_S}",
        *runner,
    ]


def thread_share(cores: int, runs_at_once: int, processes: int = 1) -> int:
    """OpenMP threads per training process: the cores shared among all the processes."""
    return max(1, cores // max(1, runs_at_once) // max(1, processes))


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
