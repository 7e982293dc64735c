"""How `seedlab.init()` reaches a Seedlab server, chosen from the environment:

1. engine-attached — SEEDLAB_RUN_ID and SEEDLAB_SPOOL set (the engine launched this process,
   or a caller that drains the spool itself): attach to that run, write its spool;
2. remote — SEEDLAB_URL (+ SEEDLAB_TOKEN): log over HTTP to a running Seedlab;
3. local — otherwise: the server's own `seedlab sdk drain` (SEEDLAB_SERVER names the `seedlab`
   command, else `seedlab` on PATH) creates the run in the database of SEEDLAB_HOME /
   SEEDLAB_DB_URL and drains a spool in a temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seedlab._run import SeedlabSDKError
from seedlab._sinks import Sink, SpoolSink

# How long init() waits for the local drain to create the run (it imports the server first).
DRAIN_START_TIMEOUT_S = 120.0
# How long finish() waits for the local drain to write the last lines into the database.
DRAIN_FINISH_TIMEOUT_S = 300.0


@dataclass
class Connection:
    """What a Run needs to know about where it logs."""

    run_id: int | None
    sink: Sink
    run_dir: str | None = None
    stop_file: str | None = None
    checkpoint_dir: str | None = None
    resumed: bool = False
    on_close: Any = field(default=None)  # called after the sink is closed


def init_line(
    project: str | None, name: str | None, config: dict[str, Any], dataset: str | None
) -> dict[str, Any]:
    return {
        "type": "init",
        "project": project,
        "name": name,
        "config": config,
        "dataset": dataset,
        "time": time.time(),
    }


def connect(init: dict[str, Any]) -> Connection:
    env = os.environ
    if env.get("SEEDLAB_SPOOL"):
        return _attached(init)
    if env.get("SEEDLAB_URL"):
        return _remote(init)
    return _local(init)


def _attached(init: dict[str, Any]) -> Connection:
    env = os.environ
    run_id = env.get("SEEDLAB_RUN_ID", "")
    if not run_id.isdigit():
        raise SeedlabSDKError(
            f"seedlab: SEEDLAB_SPOOL is set but SEEDLAB_RUN_ID is {run_id!r}, not a run id; "
            f"set both (the engine does), or neither to create a run."
        )
    sink = SpoolSink(env["SEEDLAB_SPOOL"])
    sink.write([json.dumps(init)])
    run_dir = env.get("SEEDLAB_RUN_DIR") or None
    checkpoint_dir = env.get("SEEDLAB_CHECKPOINT_DIR") or (
        None if run_dir is None else str(Path(run_dir) / "checkpoints")
    )
    return Connection(
        run_id=int(run_id),
        sink=sink,
        run_dir=run_dir,
        stop_file=env.get("SEEDLAB_STOP_FILE") or None,
        checkpoint_dir=checkpoint_dir,
        resumed=env.get("SEEDLAB_RESUMED") == "1",
    )


def _remote(init: dict[str, Any]) -> Connection:
    raise SeedlabSDKError(
        "seedlab: logging to a server over HTTP (SEEDLAB_URL) is not in this version of the "
        "SDK; unset SEEDLAB_URL to log into the local database (SEEDLAB_HOME)."
    )


def server_command() -> list[str]:
    """The server's `seedlab` command: SEEDLAB_SERVER (a path, or a command line such as
    "/srv/venv/bin/python -m engine.cli.main"), else `seedlab` on PATH."""
    named = os.environ.get("SEEDLAB_SERVER", "").strip()
    if named:
        return shlex.split(named)
    found = shutil.which("seedlab")
    if found is None:
        raise SeedlabSDKError(
            "seedlab: no Seedlab server found to log into. Set SEEDLAB_URL and SEEDLAB_TOKEN to "
            "log to a running Seedlab, or SEEDLAB_SERVER to the server's `seedlab` command "
            "(e.g. /srv/seedlab/.venv/bin/seedlab) to log into its database directly."
        )
    return [found]


def _tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip()
    except OSError:
        return ""


def _read_reply(proc: subprocess.Popen, log_path: Path) -> dict[str, Any]:
    assert proc.stdout is not None
    deadline = time.monotonic() + DRAIN_START_TIMEOUT_S
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                proc.kill()
                raise SeedlabSDKError(
                    f"seedlab: the Seedlab server did not create the run within "
                    f"{DRAIN_START_TIMEOUT_S:.0f} s. Its output: {_tail(log_path) or '(none)'}"
                )
            if selector.select(timeout=min(left, 1.0)):
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffer += chunk
    proc.stdout.close()
    line = buffer.split(b"\n", 1)[0]
    try:
        reply = json.loads(line) if line else None
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        proc.wait(timeout=30)
        raise SeedlabSDKError(
            f"seedlab: the Seedlab server could not start logging this run. "
            f"Its output: {_tail(log_path) or '(none)'}"
        )
    if "error" in reply:
        raise SeedlabSDKError(f"seedlab: {reply['error']}")
    return reply


def _local(init: dict[str, Any]) -> Connection:
    command = server_command()
    folder = Path(tempfile.mkdtemp(prefix="seedlab-sdk-"))
    spool = folder / "spool.jsonl"
    sink = SpoolSink(spool)
    sink.write([json.dumps(init)])  # the drain reads it to create the run
    log_path = folder / "drain.log"
    args = [
        *command,
        "sdk",
        "drain",
        "--spool",
        str(spool),
        "--pid",
        str(os.getpid()),
        "--remove-when-done",
    ]
    with log_path.open("wb") as log_file:
        try:
            # Its own session: a Ctrl-C in this terminal or notebook stops the script, and the
            # drain still writes the run's end.
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log_file,
                start_new_session=True,
            )
        except OSError as exc:
            sink.close()
            raise SeedlabSDKError(
                f"seedlab: could not start the Seedlab server command {shlex.join(command)!r} "
                f"({exc.strerror}). Set SEEDLAB_SERVER to the server's `seedlab` command."
            ) from None
    try:
        reply = _read_reply(proc, log_path)
    except BaseException:
        sink.close()
        shutil.rmtree(folder, ignore_errors=True)
        raise

    done_file = Path(f"{spool}.done")

    def wait_for_drain() -> None:
        # The drain leaves `<spool>.done` once the run's end is in the database, then exits;
        # its exit (an interpreter's teardown) need not be waited for.
        deadline = time.monotonic() + DRAIN_FINISH_TIMEOUT_S
        while not done_file.exists() and proc.poll() is None:
            if time.monotonic() > deadline:
                # It goes on writing in the background; the run shows `running` until done.
                return
            time.sleep(0.005)
        done_file.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the drain may not have emptied it yet
            folder.rmdir()

    return Connection(
        run_id=int(reply["run_id"]),
        sink=sink,
        run_dir=reply.get("run_dir"),
        stop_file=reply.get("stop_file"),
        checkpoint_dir=reply.get("checkpoint_dir"),
        resumed=False,
        on_close=wait_for_drain,
    )
