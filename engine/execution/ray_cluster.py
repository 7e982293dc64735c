"""A Ray cluster for the engine: start a single-machine one, find its address, connect to it.

`seedlab cluster up` runs Ray's own `ray start --head` (Seedlab manages no cluster of its own)
and records the address in `SEEDLAB_HOME/ray_cluster.json`, so `seedlab worker --executor ray`
with the default `--address auto` finds it. A loopback head (the default) listens on 127.0.0.1
only: Ray then needs RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 in every process of the cluster, the
driver included, or it advertises the machine's network address and nothing can connect.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine.core.atomic import write_json_atomic
from engine.core.errors import SeedlabError
from engine.core.settings import Settings

DEFAULT_PORT = 6390
# Ray reads this once, at import: "0" makes a node use 127.0.0.1 and bind to it alone.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class ClusterError(SeedlabError):
    """The Ray cluster could not be started, found or reached."""


def address_file(settings: Settings) -> Path:
    return settings.home / "ray_cluster.json"


def is_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ray_command() -> str:
    """The `ray` script of this interpreter's environment (the project's venv)."""
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.exists() else shutil.which("ray")
    if not found:
        raise ClusterError("Ray is not installed here: run `make install` (requirements.txt).")
    return found


def ray_env(address: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home
    if is_loopback(address):
        env[LOOPBACK_ENV] = "0"
    return env


def cluster_up(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    cpus: int | None = None,
    gpus: int | None = None,
    temp_dir: str | None = None,
) -> dict[str, Any]:
    """Start a Ray head node on this machine and record its address; returns the record."""
    address = f"{host}:{port}"
    command = [
        ray_command(),
        "start",
        "--head",
        f"--node-ip-address={host}",
        f"--port={port}",
        "--include-dashboard=false",
        "--disable-usage-stats",
    ]
    if cpus is not None:
        command.append(f"--num-cpus={cpus}")
    if gpus is not None:
        command.append(f"--num-gpus={gpus}")
    if temp_dir:
        command.append(f"--temp-dir={temp_dir}")
    done = subprocess.run(
        command, env=ray_env(address), capture_output=True, text=True, timeout=180
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise ClusterError(
            f"`ray start --head` failed on {address}:\n" + "\n".join(detail) + "\n"
            "If a cluster is already running here, `seedlab cluster down` stops it; "
            "or pick another --port."
        )
    record = {"address": address, "temp_dir": temp_dir, "started_at": time.time()}
    write_json_atomic(address_file(settings), record, indent=None)
    return record


def cluster_down(settings: Settings) -> None:
    """Stop the Ray processes of this machine (`ray stop`) and forget the recorded address."""
    record = recorded(settings)
    env = ray_env(record["address"]) if record else dict(os.environ)
    subprocess.run([ray_command(), "stop", "--force"], env=env, capture_output=True, timeout=120)
    address_file(settings).unlink(missing_ok=True)


def recorded(settings: Settings) -> dict[str, Any] | None:
    try:
        return json.loads(address_file(settings).read_text())
    except (OSError, ValueError):
        return None


def resolve_address(settings: Settings, address: str) -> str:
    """`auto` means the cluster `seedlab cluster up` started, else Ray's own `auto` lookup."""
    if address != "auto":
        return address
    record = recorded(settings)
    return record["address"] if record else "auto"


def connect(settings: Settings, address: str):  # noqa: ANN201 - returns the ray module
    """Connect this process to the cluster as a driver and return the `ray` module.

    Ray is imported here, not at the top: the local executor and the dashboard never load it.
    """
    address = resolve_address(settings, address)
    if is_loopback(address):
        os.environ[LOOPBACK_ENV] = "0"  # before `import ray`, which reads it once
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if not ray.is_initialized():
        # ray.init installs its own SIGTERM/SIGINT handlers, which exit at once; the worker's
        # handlers must win so a stop still requeues its runs in order.
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            ray.init(
                address=address,
                logging_level="WARNING",
                log_to_driver=False,  # each run's output goes to its own log file
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(
                f"Could not connect to the Ray cluster at {address!r}: {exc}. Start one with "
                "`seedlab cluster up` (or `ray start --head`), or pass --address HOST:PORT."
            ) from exc
        finally:
            for sig, handler in handlers.items():
                if handler is not None:
                    signal.signal(sig, handler)
    return ray
