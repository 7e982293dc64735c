"""The Ray executor: the worker claims runs as always and hands each to a Ray cluster as a task.

The worker stays the only claimer, so queue order, cancel, heartbeats and recovery are the local
executor's: the task trains with the same `engine.execution.runner.execute`
(ray_task.py), which
writes metrics and heartbeats to the database itself. What changes is where the process runs
and what it reserves: a run's `cpus`, `memory_gb` and, for `device` cuda/auto on a cluster with
GPUs, one GPU, as Ray resources. Every node needs the project at the same path with the same
environment, the same database URL (PostgreSQL when there are several machines) and the same
SEEDLAB_HOME (a shared folder), because runs read datasets and write checkpoints there.

Handles answer the worker the way `subprocess.Popen` does (poll / terminate / kill / wait), so
the worker's reaping, cancel enforcement and shutdown code is shared by both executors.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

from engine.core.config import validate_config
from engine.core.errors import SeedlabError
from engine.core.paths import PROJECT_ROOT
from engine.core.settings import Settings
from engine.execution.ray_cluster import connect, resolve_address

# Exit codes the worker's reaper understands: 0 done, 1 the runner failed the run itself.
_ENDED_BY_RAY = -9


@dataclass(frozen=True)
class Request:
    """What one run reserves on the cluster: per training process, times `processes`."""

    cpus: float
    gpus: int
    memory_bytes: int
    processes: int = 1

    def describe(self) -> str:
        parts = [f"{self.cpus:g} CPU"]
        if self.gpus:
            parts.append(f"{self.gpus} GPU")
        if self.memory_bytes:
            parts.append(f"{self.memory_bytes / 2**30:g} GiB memory")
        each = ", ".join(parts)
        return each if self.processes == 1 else f"{self.processes} processes × ({each})"

    @property
    def total_cpus(self) -> float:
        return self.cpus * self.processes

    @property
    def total_gpus(self) -> int:
        return self.gpus * self.processes


class RayRun:
    """One submitted run, answering like a Popen: poll() is None while it runs."""

    def __init__(self, ray: Any, ref: Any) -> None:
        self._ray = ray
        self.ref = ref
        self.pid: int | None = None  # the runner records its own pid in the run
        self.returncode: int | None = None
        self.failure = ""

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        ready, _ = self._ray.wait([self.ref], timeout=0)
        if not ready:
            return None
        try:
            status = self._ray.get(self.ref)
            self.returncode = 0 if status in ("completed", "cancelled", "queued") else 1
        except self._ray.exceptions.TaskCancelledError:
            self.returncode, self.failure = _ENDED_BY_RAY, "was cancelled on the Ray cluster"
        except self._ray.exceptions.WorkerCrashedError:
            self.returncode = _ENDED_BY_RAY
            self.failure = (
                "died on the Ray cluster (its worker process was killed, crashed or ran out "
                "of memory)"
            )
        except self._ray.exceptions.RayError as exc:
            self.returncode = 1
            detail = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else ""
            self.failure = f"failed on the Ray cluster ({type(exc).__name__}: {detail})"
        return self.returncode

    def terminate(self) -> None:
        """Ask the run to stop and requeue itself (KeyboardInterrupt in the task)."""
        self._ray.cancel(self.ref, force=False)

    def kill(self) -> None:
        self._ray.cancel(self.ref, force=True)

    def wait(self, timeout: float | None = None) -> int:
        ready, _ = self._ray.wait([self.ref], timeout=timeout)
        if not ready:
            raise subprocess.TimeoutExpired("ray task", timeout or 0)
        code = self.poll()
        return _ENDED_BY_RAY if code is None else code

    def describe_exit(self, code: int) -> str:
        return self.failure or f"ended with code {code} on the Ray cluster"


class RayExecutor:
    """Submits runs to a Ray cluster and keeps the worker from claiming more than it holds."""

    def __init__(self, settings: Settings, address: str = "auto") -> None:
        self.settings = settings
        self.address = resolve_address(settings, address)
        self.ray = connect(settings, address)
        from engine.execution.executors.ray_task import run_data_parallel_task, run_task

        # One fresh worker process per run (max_calls=1), as the local executor's subprocess;
        # no retry: a run that died is settled by the engine (failed, or resumed by a requeue).
        self._task = self.ray.remote(max_calls=1, max_retries=0)(run_task)
        self._parallel_task = self.ray.remote(max_calls=1, max_retries=0)(run_data_parallel_task)

    # ------------------------------------------------------------ capacity

    def _nodes(self) -> list[dict[str, float]]:
        return [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]

    def totals(self) -> dict[str, float]:
        return dict(self.ray.cluster_resources())

    def request_for(self, config: dict[str, Any]) -> Request:
        try:
            typed = validate_config(config)
            device, cpus, memory_gb = typed.device, typed.cpus, typed.memory_gb
            processes = typed.processes
        except SeedlabError:  # the runner fails it with the message; reserve the defaults
            device, cpus, memory_gb, processes = "auto", 1.0, 0.0, 1
        has_gpus = self.totals().get("GPU", 0) >= 1
        gpus = 1 if device in ("cuda", "auto") and has_gpus else 0
        return Request(
            cpus=cpus, gpus=gpus, memory_bytes=int(memory_gb * 2**30), processes=processes
        )

    def infeasible(self, request: Request) -> str | None:
        """Why no node of the cluster can ever hold the run, or None when one can."""
        totals = self.totals()
        if request.processes > 1 and (
            totals.get("CPU", 0) < request.total_cpus or totals.get("GPU", 0) < request.total_gpus
        ):
            return (
                f"The run asks the Ray cluster for {request.describe()}, and the whole cluster "
                f"has {totals.get('CPU', 0):g} CPU and {totals.get('GPU', 0):g} GPU. Lower "
                "`processes` or `cpus`, or add nodes, and launch it again."
            )
        nodes = self._nodes()
        for node in nodes:
            if (
                node.get("CPU", 0) >= request.cpus
                and node.get("GPU", 0) >= request.gpus
                and node.get("memory", 0) >= request.memory_bytes
            ):
                return None
        biggest = max(nodes, key=lambda n: n.get("CPU", 0), default={})
        return (
            f"The run asks the Ray cluster for {request.describe()} on one machine, and its "
            f"largest node has {biggest.get('CPU', 0):g} CPU, {biggest.get('GPU', 0):g} GPU, "
            f"{biggest.get('memory', 0) / 2**30:.1f} GiB memory. Lower `cpus` / `memory_gb` "
            "(or set device=cpu), or add a bigger node, and launch it again."
        )

    def free_requests(self, in_use: list[Request]) -> list[str]:
        """The `device` config values a run may have to be claimable now (see scheduling.py):
        free = the cluster's resources less what this worker's runs reserved."""
        totals = self.totals()
        cpu_free = totals.get("CPU", 0) - sum(r.total_cpus for r in in_use)
        gpu_total = totals.get("GPU", 0)
        gpu_free = gpu_total - sum(r.total_gpus for r in in_use)
        wanted: set[str] = set()
        if gpu_free >= 1 and cpu_free > 0:
            wanted |= {"cuda", "auto"}
        if cpu_free >= 1 or (cpu_free > 0 and not in_use):
            wanted.add("cpu")
            if gpu_total < 1:
                wanted |= {"auto", "cuda"}  # 'cuda' without GPUs: its runner says why it fails
        return sorted(wanted)

    def devices(self) -> list[dict[str, Any]]:
        """The cluster as one device row for the Engine page."""
        totals, free = self.totals(), dict(self.ray.available_resources())
        nodes = len(self._nodes())
        cpus, gpus = totals.get("CPU", 0), totals.get("GPU", 0)
        memory = totals.get("memory")
        return [
            {
                "kind": "ray",
                "key": "ray",
                "name": f"Ray cluster at {self.address}: {nodes} node(s), {cpus:g} CPU, "
                f"{gpus:g} GPU",
                "memory_total": int(memory) if memory else None,
                "memory_used": int(memory - free.get("memory", memory)) if memory else None,
                "utilization": round(100 * (1 - free.get("CPU", cpus) / cpus), 1) if cpus else None,
            }
        ]

    # ------------------------------------------------------------ runs

    def start(self, run_id: int, request: Request) -> RayRun:
        # Only Seedlab's own settings travel: PATH, CUDA_VISIBLE_DEVICES and the like belong to
        # the node the task lands on (Ray sets the GPU and OMP_NUM_THREADS from the request).
        env = self.settings.child_env()
        env_vars = {k: v for k, v in env.items() if k.startswith("SEEDLAB_")}
        env_vars.update(
            PYTHONPATH=str(PROJECT_ROOT),
            PYTHONUNBUFFERED="1",
            OMP_WAIT_POLICY=env.get("OMP_WAIT_POLICY", "PASSIVE"),
        )
        runtime_env = {"env_vars": env_vars}
        if request.processes > 1:
            # The coordinating task reserves nothing: Ray Train's workers hold the resources.
            ref = self._parallel_task.options(num_cpus=0, runtime_env=runtime_env).remote(
                run_id, request.processes, request.cpus, request.gpus, request.memory_bytes
            )
            return RayRun(self.ray, ref)
        options: dict[str, Any] = {
            "num_cpus": request.cpus,
            "num_gpus": request.gpus,
            "runtime_env": runtime_env,
        }
        if request.memory_bytes:
            options["memory"] = request.memory_bytes
        ref = self._task.options(**options).remote(run_id)
        return RayRun(self.ray, ref)

    def close(self) -> None:
        if self.ray.is_initialized():
            self.ray.shutdown()
