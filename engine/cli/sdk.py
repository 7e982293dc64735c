"""`seedlab sdk drain`: the local drain the SDK starts for a run logged without an engine.

The SDK (`seedlab.init()` with SEEDLAB_HOME / SEEDLAB_DB_URL and no engine) writes its spool's
`init` line, then starts this command with the server's Python. It creates the run, prints one
JSON line on stdout for the SDK — {"run_id", "run_dir", "checkpoint_dir", "stop_file"}, or
{"error"} — and drains the spool until the SDK writes `finish` or its process is gone
(engine/execution/sdk_drain.py); then it leaves `<spool>.done`, which the SDK's finish() waits
for.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from engine.cli.common import ready
from engine.core.errors import SeedlabError
from engine.execution import sdk_drain

app = typer.Typer(help="What the client SDK (import seedlab) starts on this server.")


def _reply(data: dict) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


@app.command("drain")
def drain(
    spool: Annotated[Path, typer.Option(help="The spool file the SDK writes")],
    pid: Annotated[
        int | None, typer.Option(help="The SDK's process: once it is gone, the run ends")
    ] = None,
    remove_when_done: Annotated[
        bool, typer.Option(help="Delete the spool (and its folder, if empty) once drained")
    ] = False,
) -> None:
    """Create the run a spool's init line asks for and drain the spool into the database."""
    try:
        settings, db = ready()
        init = sdk_drain.read_init(spool)
        run = sdk_drain.start_local_run(settings, db, init, pid=pid)
    except (SeedlabError, OSError, ValueError) as exc:
        _reply({"error": str(exc)})
        raise typer.Exit(1) from None
    _reply(run.reply())
    # The SDK reads one line; from here nothing goes to its pipe, which closes when it exits.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    status = sdk_drain.drain_until_done(
        settings,
        db,
        run.run_id,
        spool,
        alive=None if pid is None else sdk_drain.process_alive(pid),
        stop_file=run.stop_file,
    )
    done = Path(f"{spool}.done")  # the SDK's finish() waits for it, then removes it
    done.touch()
    if remove_when_done and status is not None:
        # Only what the SDK put in its own temporary folder, then the folder if that emptied it
        # (a live SDK removes the done file and the folder itself, once it has seen it).
        names = [spool.name, sdk_drain.DRAIN_LOG_NAME]
        if pid is not None and not sdk_drain.process_alive(pid)():
            names.append(done.name)
        for name in names:
            (spool.parent / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            spool.parent.rmdir()
