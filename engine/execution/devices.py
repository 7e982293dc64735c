"""What the worker can schedule on: the CPU and each GPU, with memory and utilization.

GPUs are read with `nvidia-smi` when it is on the PATH (no CUDA context in the worker, which
would take GPU memory from the runs), else through torch.cuda. The worker refreshes this with
its heartbeat into `workers.devices`, so the Engine page shows the load of a worker that may run
on another machine.
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("seedlab.devices")

NVIDIA_SMI_QUERY = "index,name,memory.total,memory.used,utilization.gpu"


def _mib(value: str) -> int | None:
    try:
        return int(float(value)) * 1024 * 1024
    except ValueError:
        return None


def parse_nvidia_smi(text: str) -> list[dict[str, Any]]:
    """`nvidia-smi --query-gpu=index,name,memory.total,memory.used,utilization.gpu
    --format=csv,noheader,nounits` output → device dicts (memory in bytes, utilization in %)."""
    gpus = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5 or not parts[0].isdigit():
            continue
        index, name, total, used, util = parts
        try:
            utilization: float | None = float(util)
        except ValueError:  # "[N/A]" on some boards
            utilization = None
        gpus.append(
            {
                "kind": "cuda",
                "index": int(index),
                "name": name,
                "memory_total": _mib(total),
                "memory_used": _mib(used),
                "utilization": utilization,
            }
        )
    return gpus


def _gpus_from_nvidia_smi() -> list[dict[str, Any]] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        _say_once(f"nvidia-smi failed ({type(exc).__name__}: {exc}); reading GPUs through torch")
        return None
    if out.returncode != 0:
        detail = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        _say_once(
            f"nvidia-smi exited with {out.returncode} ({detail[0][:200]}); "
            "reading GPUs through torch"
        )
        return None
    return parse_nvidia_smi(out.stdout)


def _gpus_from_torch() -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        return []
    # Indices are physical (what CUDA_VISIBLE_DEVICES names), also under a mask like "2,3".
    mask = [p.strip() for p in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if p.strip()]
    gpus = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        physical = int(mask[i]) if i < len(mask) and mask[i].isdigit() else i
        entry: dict[str, Any] = {
            "kind": "cuda",
            "index": physical,
            "name": props.name,
            "memory_total": int(props.total_memory),
            "memory_used": None,
            "utilization": None,
        }
        gpus.append(add_gpu_load(entry, i))
    return gpus


def add_gpu_load(entry: dict[str, Any], index: int) -> dict[str, Any]:
    """Utilization and memory used of torch's GPU `index` into `entry`; when they cannot be
    read (both need pynvml), `load_unknown` says why and the Engine page shows them unknown."""
    import torch

    try:
        entry["utilization"] = float(torch.cuda.utilization(index))
        entry["memory_used"] = int(torch.cuda.device_memory_used(index))
    except Exception as exc:  # noqa: BLE001 (pynvml missing, or NVML refusing: any is "unknown")
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}"
        entry["load_unknown"] = reason
        _say_once(f"GPU memory used and utilization are unknown ({reason})")
    return entry


_logged_reasons: set[str] = set()


def _say_once(message: str) -> None:
    """Log a probe's failure once per process: the worker probes every few seconds."""
    if message not in _logged_reasons:
        _logged_reasons.add(message)
        log.warning(message)


def _visible(gpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Respect a CUDA_VISIBLE_DEVICES given to the worker itself (e.g. "2,3")."""
    mask = os.environ.get("CUDA_VISIBLE_DEVICES")
    if mask is None:
        return gpus
    allowed = {p.strip() for p in mask.split(",") if p.strip()}
    return [g for g in gpus if str(g["index"]) in allowed]


def cpu_device() -> dict[str, Any]:
    cores = os.cpu_count() or 1
    total = used = None
    try:
        lines = Path("/proc/meminfo").read_text(encoding="ascii").splitlines()
        info = dict(line.split(":", 1) for line in lines)
        total = int(info["MemTotal"].split()[0]) * 1024
        used = total - int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):  # no /proc (macOS, Windows): memory shows unknown
        pass
    return {
        "kind": "cpu",
        "index": None,
        "name": f"CPU ({cores} cores, {platform.machine()})",
        "memory_total": total,
        "memory_used": used,
        "utilization": cpu_busy_percent(cores),
    }


# /proc/stat's CPU times at the previous probe: the busy share is measured between probes.
_last_cpu_times: list[tuple[int, int]] = []
FIRST_SAMPLE_S = 0.2
PROC_STAT = Path("/proc/stat")


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) CPU time of all cores since boot, in clock ticks, from /proc/stat."""
    try:
        first = PROC_STAT.read_text(encoding="ascii").split("\n", 1)[0].split()
        # user nice system idle iowait irq softirq steal (guest time is inside user and nice)
        ticks = [int(v) for v in first[1:9]]
    except (OSError, ValueError):
        return None
    if first[:1] != ["cpu"] or len(ticks) < 4:
        return None
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # waiting on I/O is not busy
    return sum(ticks) - idle, sum(ticks)


def cpu_busy_percent(cores: int) -> float | None:
    """How busy the whole machine's CPU is, 0-100 % of all its cores together, since the
    previous probe (the first probe measures over FIRST_SAMPLE_S).

    Not the load average over cores, which counts runnable and I/O-blocked processes rather
    than CPU time, so it was neither a share of the machine nor bounded by 100. Without
    /proc/stat (macOS, Windows) that load ratio, capped at 100, is the best estimate left.
    """
    now = _cpu_times()
    if now is None:
        try:
            return min(100.0, os.getloadavg()[0] / cores * 100)
        except OSError:
            return None
    if not _last_cpu_times:
        time.sleep(FIRST_SAMPLE_S)
        _last_cpu_times.append(now)
        now = _cpu_times() or now
    before = _last_cpu_times[-1]
    _last_cpu_times[:] = [now]
    busy, total = now[0] - before[0], now[1] - before[1]
    if total <= 0:
        return None
    return round(min(100.0, max(0.0, 100 * busy / total)), 1)


def detect_devices() -> list[dict[str, Any]]:
    """The CPU first, then every GPU this process may use."""
    gpus = _gpus_from_nvidia_smi()
    gpus = _gpus_from_torch() if gpus is None else _visible(gpus)  # torch applies the mask itself
    return [cpu_device(), *gpus]
