"""What a Ray worker process executes for one run (ray_executor.py submits it).

The run trains in this process exactly as `python -m engine.execution.runner` would: the same
`execute`,
which writes metrics, heartbeats, checkpoints and the final status to the database itself. The
process's stdout and stderr go to the run's log file, so the Run page shows the same log as with
the local executor. The Ray worker serves this one task and exits (max_calls=1), so the
redirection and the environment never leak into another run.

`ray.cancel(ref)` (the engine shutting down) raises KeyboardInterrupt here; `execute` treats it
as the SIGTERM of the local executor and puts the run back in the queue.

A data-parallel run (`processes > 1`) is trained by Ray Train's TorchTrainer instead: this task
only coordinates (it reserves nothing), and each of the trainer's workers runs the same
`execute` inside the process group Ray Train set up (gloo on CPUs, NCCL on GPUs); rank 0 writes
to the database, as under torchrun (engine/ml/ddp.py).
"""

from __future__ import annotations

import logging
import os
import sys

from engine.core.run_files import log_path
from engine.core.settings import Settings

log = logging.getLogger("seedlab.runner")


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


def _name_the_node(what: str) -> None:
    import ray

    node = ray.util.get_node_ip_address()
    gpus = ray.get_runtime_context().get_accelerator_ids().get("GPU", [])
    os.environ["SEEDLAB_RAY_NODE"] = node
    if len(gpus) == 1:
        os.environ["SEEDLAB_DEVICE_LABEL"] = f"cuda:{gpus[0]}"
    log.info("%s on node %s (pid %s, GPUs %s)", what, node, os.getpid(), gpus or "none")


def run_task(run_id: int) -> str:
    """Train run `run_id` in this Ray worker; returns its final status."""
    from engine.execution.runner import execute

    settings = Settings.from_env()
    _log_to_run_file(settings, run_id)
    _name_the_node("ray task")
    return execute(settings, run_id)


def _train_worker(config: dict) -> None:
    """One rank of a data-parallel run, in a Ray Train worker (the group is Ray Train's)."""
    from engine.execution.runner import execute

    settings = Settings.from_env()
    _log_to_run_file(settings, config["run_id"])
    _name_the_node("ray train worker")
    execute(settings, config["run_id"])


def run_data_parallel_task(
    run_id: int, processes: int, cpus: float, gpus: int, memory_bytes: int
) -> str:
    """Train run `run_id` on `processes` Ray Train workers; returns the run's final status."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from db import runs as run_store
    from db.session import get_db

    settings = Settings.from_env()
    _log_to_run_file(settings, run_id)
    log.info("ray train: %d processes, each %s CPU, %s GPU", processes, cpus, gpus)
    per_worker: dict[str, float] = {"CPU": cpus}
    if gpus:
        per_worker["GPU"] = gpus
    if memory_bytes:
        per_worker["memory"] = memory_bytes
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config={"run_id": run_id},
        torch_config=TorchConfig(backend="nccl" if gpus else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=processes, use_gpu=bool(gpus), resources_per_worker=per_worker
        ),
        # Ray Train's own bookkeeping; the run's checkpoints are Seedlab's (rank 0 writes them).
        run_config=RunConfig(name=f"run-{run_id}", storage_path=str(settings.home / "ray_train")),
    )
    trainer.fit()  # raises when a worker failed: the engine fails the run with the reason
    run = run_store.get_run(get_db(settings), run_id)
    return run.status if run else "failed"
