"""What a Ray worker process executes for one run (engine/ray_executor.py submits it).

The run trains in this process exactly as `python -m engine.runner` would: the same `execute`,
which writes metrics, heartbeats, checkpoints and the final status to the database itself. The
process's stdout and stderr go to the run's log file, so the Run page shows the same log as with
the local executor. The Ray worker serves this one task and exits (max_calls=1), so the
redirection and the environment never leak into another run.

`ray.cancel(ref)` (the engine shutting down) raises KeyboardInterrupt here; `execute` treats it
as the SIGTERM of the local executor and puts the run back in the queue.
"""

from __future__ import annotations

import logging
import os
import sys

from engine.run_files import log_path
from engine.settings import Settings


def _log_to_run_file(settings: Settings, run_id: int) -> None:
    path = log_path(settings, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(message)s",
        force=True,  # Ray configured the root logger for its own worker log
    )


def run_task(run_id: int) -> str:
    """Train run `run_id` in this Ray worker; returns its final status."""
    import ray

    from engine.runner import execute

    settings = Settings.from_env()
    _log_to_run_file(settings, run_id)
    context = ray.get_runtime_context()
    node = ray.util.get_node_ip_address()
    gpus = context.get_accelerator_ids().get("GPU", [])
    os.environ["SEEDLAB_RAY_NODE"] = node
    if gpus:
        os.environ["SEEDLAB_DEVICE_LABEL"] = f"cuda:{gpus[0]}"
    logging.getLogger("seedlab.runner").info(
        "ray task on node %s (pid %s, GPUs %s)", node, os.getpid(), gpus or "none"
    )
    return execute(settings, run_id)
