"""Running Seedlab: `seedlab init|worker|dashboard|up` and `seedlab engine status`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Annotated

import typer
from sqlalchemy import Engine

from engine.cli.common import actor, print_json, ready
from engine.core.epochs import epochs_done
from engine.core.paths import PROJECT_ROOT
from engine.core.settings import Settings, proxy_networks
from engine.execution.worker_options import (
    GpuCapOption,
    MaxConcurrentOption,
    WorkerOptions,
    worker_command,
)

# The pages and the HTTP routes beside them (dashboard/web.py builds both on one port).
DASHBOARD_APP = PROJECT_ROOT / "dashboard" / "web.py"

# Top-level commands (the root adds this group without a name) plus the `engine` group.
app = typer.Typer()
status_app = typer.Typer(help="What the engine is running, where.", no_args_is_help=True)
app.add_typer(status_app, name="engine")

AddressOption = Annotated[
    str, typer.Option(help="Address to bind (not localhost: access control on)")
]


@app.command()
def init(
    demo: Annotated[bool, typer.Option(help="Register the bundled demo datasets.")] = True,
) -> None:
    """Create SEEDLAB_HOME, migrate the database to the current schema, add demo datasets."""
    from engine.services.datasets import add_demo_datasets

    settings, db = ready()
    added = add_demo_datasets(settings, db, actor()) if demo else []
    typer.echo(f"Seedlab home: {settings.home}")
    typer.echo(f"Database: {settings.db_url_shown} (schema up to date)")
    if added:
        typer.echo(f"Demo datasets added: {', '.join(added)}")


def _start_worker(settings: Settings, options: WorkerOptions) -> None:
    from engine.execution.worker import run_with_options

    settings, _ = ready(settings)
    run_with_options(settings, options)


# The options are engine/execution/worker_options.py's, shared with `python -m
# engine.execution.worker`.
app.command("worker")(worker_command(_start_worker))


def _size(n: float | None) -> str:
    return "?" if n is None else f"{n / 2**30:.1f} GiB"


@status_app.command("status")
def engine_status_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Is a worker alive, what is queued, what runs where, and each device's load."""
    from engine.services.engine_status import START_HINT, engine_status

    settings, db = ready()
    status = engine_status(settings, db)
    if as_json:
        print_json(status.to_dict())
        return
    if not status.alive:
        seen = status.last_seen
        when = f" (last heartbeat {status.heartbeat_age_s(seen):.0f} s ago)" if seen else " (never)"
        typer.echo(f"Engine not running{when}. {START_HINT}")
    for w in status.workers:
        typer.echo(
            f"worker {w.id} on {w.hostname} (pid {w.pid}): alive, heartbeat "
            f"{status.heartbeat_age_s(w):.1f} s ago, {w.max_concurrent} slots"
        )
    typer.echo(f"queued: {status.queued}   running: {len(status.running)}")
    for r in status.running:
        epoch = int(epochs_done(r.summary))
        typer.echo(
            f"  run {r.id} {r.name[:30]!r} on {r.device or '?'}: epoch {epoch}/"
            f"{r.config.get('epochs', '?')}"
        )
    for d in status.devices():
        util = "" if d.get("utilization") is None else f", {d['utilization']:.0f}% busy"
        typer.echo(
            f"  device {d['key']}: {d['name']}, memory {_size(d.get('memory_used'))} of "
            f"{_size(d.get('memory_total'))}{util}, runs {d['runs'] or '-'}"
        )
    kinds = {d.get("kind") for d in status.devices()}
    if status.alive and not kinds & {"cuda", "ray"}:
        typer.echo("  no GPU: runs train on the CPU")


def _dashboard_env(env: dict[str, str]) -> dict[str, str]:
    """The dashboard's environment, with SEEDLAB_TRUSTED_PROXIES as the one rule for forwarded
    headers: uvicorn, which serves it, believes X-Forwarded-For and X-Forwarded-Proto from
    127.0.0.1 and ::1 unless FORWARDED_ALLOW_IPS says otherwise, and rewrites the client address
    before the login route sees it, so any local process could name any address and step around
    the login limits. An empty value trusts nobody."""
    trusted = proxy_networks(Settings.from_env().trusted_proxies)
    return {**env, "FORWARDED_ALLOW_IPS": ",".join(str(n) for n in trusted)}


def _dashboard_cmd(port: int, address: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(DASHBOARD_APP),
        "--server.port",
        str(port),
        "--server.address",
        address,
        # Streamlit's source watcher (rerun on save, for development) resolves the path of every
        # imported module on each page run: with pandas, Plotly and SQLAlchemy loaded that is
        # thousands of realpath calls on the server's event loop, ~1 s of every Run page visit
        # on 2 cores. A served dashboard never reloads its own code.
        "--server.fileWatcherType",
        "none",
        # Streamlit runs a full gc.collect() after every page run by default: ~0.2 s of each
        # visit with torch and pandas in memory, before the page counts as loaded. Python's own
        # collector still runs; dashboard/warm.py freezes the imported modules' objects.
        "--runner.postScriptGC",
        "false",
    ]


def _auth_notice(db: Engine, address: str) -> None:
    """Access control follows the bind address (the dashboard reads it too); say so, and how
    to create the first admin when there are no users."""
    from engine.services.accounts import FIRST_ADMIN_HINT, has_users
    from engine.services.permissions import auth_required

    if not auth_required(address):
        return
    typer.echo(f"Access control is on (address {address}, SEEDLAB_AUTH): pages ask for a login.")
    if not has_users(db):
        typer.echo(f"No users yet: create the first admin with `{FIRST_ADMIN_HINT}`.")


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="Port to serve on")] = 8501,
    address: AddressOption = "localhost",
) -> None:
    """Serve the dashboard (the engine must run separately: seedlab worker). Binding another
    address than localhost turns access control on."""
    _, db = ready()
    _auth_notice(db, address)
    os.chdir(PROJECT_ROOT)  # .streamlit/config.toml is read from the working directory
    os.execve(sys.executable, _dashboard_cmd(port, address), _dashboard_env(dict(os.environ)))


def _worker_cmd(max_concurrent: int | None, gpu_cap: int | None) -> list[str]:
    """The worker as its own process; options not given fall back to the settings there too."""
    command = [sys.executable, "-m", "engine.execution.worker"]
    if max_concurrent is not None:
        command += ["--max-concurrent", str(max_concurrent)]
    if gpu_cap is not None:
        command += ["--gpu-cap", str(gpu_cap)]
    return command


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Dashboard port")] = 8501,
    address: AddressOption = "localhost",
    max_concurrent: MaxConcurrentOption = None,
    gpu_cap: GpuCapOption = None,
) -> None:
    """Start the engine worker and the dashboard together; Ctrl-C stops both. Binding another
    address than localhost turns access control on."""
    from engine.services.datasets import add_demo_datasets

    settings, db = ready()
    _auth_notice(db, address)
    add_demo_datasets(settings, db, actor())
    env = settings.child_env()
    procs = [
        subprocess.Popen(_worker_cmd(max_concurrent, gpu_cap), env=env, cwd=PROJECT_ROOT),
        subprocess.Popen(_dashboard_cmd(port, address), env=_dashboard_env(env), cwd=PROJECT_ROOT),
    ]
    typer.echo(f"Seedlab is up: http://{address}:{port}  (Ctrl-C stops the engine and dashboard)")

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        failed = [p for p in procs if p.poll() not in (None, 0)]
        if failed:
            typer.echo("error: a Seedlab process exited; stopping the other.", err=True)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
