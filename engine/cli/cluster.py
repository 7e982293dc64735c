"""`seedlab cluster up|down|status`: a single-machine Ray cluster for the Ray executor.

These wrap Ray's own `ray start --head` / `ray stop` / `ray status`; a cluster of several
machines is set up with Ray's commands directly
(README, "Ray cluster (runs on several machines)").
"""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer

from engine.cli.common import settings as current_settings
from engine.execution.ray_cluster import (
    DEFAULT_PORT,
    cluster_down,
    cluster_up,
    ray_command,
    ray_env,
    recorded,
)

app = typer.Typer(help="A Ray cluster on this machine for `seedlab worker --executor ray`")


@app.command("up")
def up(
    host: Annotated[
        str,
        typer.Option(
            help="Address the head listens on; 127.0.0.1 keeps it to this machine. For other "
            "machines to join, give this machine's network address."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The head's port")] = DEFAULT_PORT,
    cpus: Annotated[int | None, typer.Option(min=1, help="CPUs to offer (default: all)")] = None,
    gpus: Annotated[int | None, typer.Option(min=0, help="GPUs to offer (default: all)")] = None,
    temp_dir: Annotated[
        str | None, typer.Option(help="Ray's session folder (default: Ray's, /tmp/ray)")
    ] = None,
) -> None:
    """Start a Ray head node here and remember its address for `seedlab worker --executor ray`."""
    record = cluster_up(
        current_settings(), host=host, port=port, cpus=cpus, gpus=gpus, temp_dir=temp_dir
    )
    typer.echo(
        f"Ray cluster up at {record['address']}. Start the engine on it with:\n"
        "  seedlab worker --executor ray"
    )


@app.command("down")
def down() -> None:
    """Stop the Ray processes on this machine (`ray stop`); running runs fail or requeue."""
    cluster_down(current_settings())
    typer.echo("Ray stopped on this machine.")


@app.command("status")
def status() -> None:
    """Nodes and resources of the cluster (`ray status`)."""
    record = recorded(current_settings())
    if record is None:
        typer.echo("No cluster was started with `seedlab cluster up` here; asking Ray anyway.")
    address = record["address"] if record else "auto"
    command = [ray_command(), "status", f"--address={address}"]
    done = subprocess.run(command, env=ray_env(address), capture_output=True, text=True)
    typer.echo((done.stdout or done.stderr).strip())
    if done.returncode != 0:
        raise typer.Exit(done.returncode)
