"""System metrics of a run: CPU %, resident memory and, on a GPU, its utilisation and memory,
sampled every few seconds on a thread of the runner and stored as `sys/…` metrics.

The sampler reads a process and all its children (psutil), so DataLoader workers and a recipe's
subprocess count with the runner. GPU figures come from NVML (nvidia-ml-py); without it, or
without a driver, they are skipped without a word: a CPU-only machine is no error.

The step of a `sys/…` point is the whole number of seconds since the run was created, so the
points of a resumed run's later attempts follow the earlier ones instead of overwriting them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

import psutil
from sqlalchemy import Engine

from db.records import RunRecord
from db.writes import metrics as metric_writes

log = logging.getLogger("seedlab.system_metrics")

SAMPLE_SECONDS = 5.0
# The first sample waits this long: psutil's CPU % is measured between two readings.
FIRST_SAMPLE_SECONDS = 1.0

CPU_PERCENT = "sys/cpu_percent"
RSS_MB = "sys/rss_mb"
GPU_UTIL_PERCENT = "sys/gpu_util_percent"
GPU_MEM_MB = "sys/gpu_mem_mb"

Sink = Callable[[list[tuple[str, int, float, float]]], None]


def visible_gpu_indices(env: dict[str, str] | None = None) -> list[int] | None:
    """The physical GPU indices CUDA_VISIBLE_DEVICES names (the worker gives each run its GPU
    that way); None when it is unset (all GPUs); [] when it hides them all or names GPUs by
    UUID, which NVML indices cannot match here."""
    value = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not all(p.isdigit() for p in parts):
        return []
    return [int(p) for p in parts]


class _Gpus:
    """NVML handles of the run's GPUs; empty when NVML or a driver is missing."""

    def __init__(self, indices: list[int] | None) -> None:
        self.nvml: Any = None
        self.handles: list[Any] = []
        if indices == []:  # a CPU run, or every GPU hidden from it
            return
        try:
            import pynvml  # nvidia-ml-py

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            wanted = range(count) if indices is None else [i for i in indices if i < count]
            self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in wanted]
            self.nvml = pynvml
        except Exception:  # noqa: BLE001 - no package, no driver, no GPU: skip quietly
            self.handles = []

    def sample(self, pids: set[int]) -> dict[str, float]:
        if not self.handles:
            return {}
        nvml = self.nvml
        util, mine, used = [], 0.0, 0.0
        for handle in self.handles:
            try:
                util.append(float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
                used += nvml.nvmlDeviceGetMemoryInfo(handle).used
                for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                    if proc.pid in pids and proc.usedGpuMemory:
                        mine += proc.usedGpuMemory
            except Exception:  # noqa: BLE001 - a GPU that stops answering: skip this sample
                continue
        if not util:
            return {}
        # The run's own processes when NVML can see them; in a container NVML reports host
        # pids, which match none of ours: the memory used on the run's GPUs is the next best.
        memory = mine or used
        return {GPU_UTIL_PERCENT: sum(util) / len(util), GPU_MEM_MB: memory / 2**20}

    def close(self) -> None:
        if self.nvml is not None:
            try:
                self.nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001
                pass


class SystemSampler:
    """Samples a process tree every `interval_s` on a daemon thread and hands the points to
    `sink`; `stop()` takes one last sample, so even a short run has its figures."""

    def __init__(
        self,
        sink: Sink,
        *,
        origin: float,
        pid: int | None = None,
        gpu_indices: list[int] | None = None,
        gpu: bool = True,
        interval_s: float = SAMPLE_SECONDS,
    ) -> None:
        self.sink = sink
        self.origin = origin
        self.root = psutil.Process(pid or os.getpid())
        self.interval_s = interval_s
        self.gpus = _Gpus(gpu_indices) if gpu else _Gpus([])
        self.procs: dict[int, psutil.Process] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="seedlab-sys-metrics", daemon=True)
        self.failed = False
        self._tree()  # prime each process's CPU counter

    def _tree(self) -> list[psutil.Process]:
        """The root and its children now, reusing Process objects (they keep the CPU reading
        that the next cpu_percent() is measured from)."""
        try:
            current = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            current = [self.root]
        alive: dict[int, psutil.Process] = {}
        for proc in current:
            known = self.procs.get(proc.pid)
            if known is None:
                known = proc
                try:
                    known.cpu_percent(None)
                except psutil.Error:
                    continue
            alive[proc.pid] = known
        self.procs = alive
        return list(alive.values())

    def sample(self) -> dict[str, float]:
        cpu, rss = 0.0, 0
        procs = self._tree()
        for proc in procs:
            try:
                with proc.oneshot():
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
            except psutil.Error:  # it ended between listing and reading
                continue
        values = {CPU_PERCENT: cpu, RSS_MB: rss / 2**20}
        values.update(self.gpus.sample({p.pid for p in procs}))
        return values

    def _record(self) -> None:
        now = time.time()
        step = max(0, int(now - self.origin))
        try:
            self.sink([(key, step, value, now) for key, value in self.sample().items()])
        except Exception:  # noqa: BLE001 - figures are a bonus: a locked DB must not stop training
            if not self.failed:
                log.warning("system metrics not recorded", exc_info=True)
            self.failed = True

    def _loop(self) -> None:
        wait = min(FIRST_SAMPLE_SECONDS, self.interval_s)
        while not self.stopped.wait(wait):
            self._record()
            wait = self.interval_s

    def start(self) -> SystemSampler:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self.thread.ident is not None:  # started
            self.thread.join(timeout=10)
        self._record()
        self.gpus.close()


def start_for_run(
    db: Engine, run: RunRecord, *, on_gpu: bool, pid: int | None = None
) -> SystemSampler | None:
    """Sample `pid` (default: this process) and its children into `run`'s sys/… metrics until
    `.stop()`; None (and a log line) if sampling cannot start: figures are never a reason to
    fail a run. The runner calls it for built-in runs; a recipe's supervisor, whose script is
    its child, calls it the same way."""
    try:
        return SystemSampler(
            lambda points: metric_writes.append_metrics(db, run.id, points),
            origin=run.created_at.replace(tzinfo=UTC).timestamp(),
            pid=pid,
            gpu_indices=visible_gpu_indices(),
            gpu=on_gpu,
        ).start()
    except Exception:  # noqa: BLE001
        log.warning("no system metrics for run %s", run.id, exc_info=True)
        return None
