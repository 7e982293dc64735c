"""The engine worker's options, defined once.

`seedlab worker` (engine/cli/engine.py) and `python -m engine.execution.worker` (what `seedlab
up`, the tests and the benchmarks start) both parse them with `worker_command`'s signature. An
option not given falls back to its setting (SEEDLAB_CPU_CAP, SEEDLAB_GPU_CAP, SEEDLAB_EXECUTOR,
SEEDLAB_RAY_ADDRESS; engine/core/settings.py), else to its default.

Kept light (typer and the settings only): the CLI imports it at start-up for every command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import typer

from engine.core.settings import Settings

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class WorkerOptions:
    max_concurrent: int = 1
    gpu_cap: int = 1
    poll_interval: float = 0.5
    executor: str = "local"
    ray_address: str = "auto"
    warm_runner: bool = True


# Shared with `seedlab up`, which passes them on to the worker it starts.
MaxConcurrentOption = Annotated[
    int | None,
    typer.Option(
        "--max-concurrent",
        "--cpu-cap",
        min=1,
        help="Runs at once on the CPU (default: SEEDLAB_CPU_CAP, else 1)",
        show_default=False,
    ),
]
GpuCapOption = Annotated[
    int | None,
    typer.Option(
        "--gpu-cap",
        min=1,
        help="Runs at once on each GPU (default: SEEDLAB_GPU_CAP, else 1)",
        show_default=False,
    ),
]

WorkerStart = Callable[[Settings, WorkerOptions], None]


def worker_command(start: WorkerStart) -> Callable[..., None]:
    """The Typer command of the worker's options; it calls `start(settings, options)`.

    `start` is the caller's: the CLI migrates the database first, `python -m
    engine.execution.worker` runs the worker as it is.
    """

    def worker(
        max_concurrent: MaxConcurrentOption = None,
        gpu_cap: GpuCapOption = None,
        poll_interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls")] = 0.5,
        executor: Annotated[
            str | None,
            typer.Option(
                help="local (subprocesses on this machine) or ray (tasks on a Ray cluster); "
                "default: SEEDLAB_EXECUTOR, else local",
                show_default=False,
            ),
        ] = None,
        address: Annotated[
            str | None,
            typer.Option(
                help="Ray executor: HOST:PORT, ray://HOST:PORT, or auto (the cluster `seedlab "
                "cluster up` started, else Ray's own lookup); default: SEEDLAB_RAY_ADDRESS, "
                "else auto",
                show_default=False,
            ),
        ] = None,
        warm_runner: Annotated[
            bool,
            typer.Option(
                help="Keep one runner process started ahead, torch loaded, so a run starts "
                "training at once (engine/execution/spare.py); --no-warm-runner starts each "
                "run's process when the run starts"
            ),
        ] = True,
    ) -> None:
        """Run the engine worker in the foreground (Ctrl-C stops it; its runs resume on next
        start)."""
        if executor is not None and executor not in EXECUTORS:
            raise typer.BadParameter(f"{executor!r}: use local or ray", param_hint="--executor")
        settings = Settings.from_env()
        options = WorkerOptions(
            max_concurrent=max_concurrent or settings.cpu_cap,
            gpu_cap=gpu_cap or settings.gpu_cap,
            poll_interval=poll_interval,
            executor=executor or settings.executor,
            ray_address=address or settings.ray_address,
            warm_runner=warm_runner,
        )
        start(settings, options)

    return worker
