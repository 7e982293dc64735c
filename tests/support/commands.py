"""The `seedlab` CLI from tests, and what a child process of the tests needs."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def child_env() -> dict[str, str]:
    """The tests' environment, with this checkout first on PYTHONPATH (so a subprocess imports
    the tree under test, not an installed copy)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def seedlab_cmd(*args: str) -> list[str]:
    """The `seedlab` CLI as a subprocess command (same interpreter as the tests)."""
    return [sys.executable, "-m", "engine.cli.main", *args]


def seedlab_in_process(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """`seedlab ARGS` through the real entry point (engine.cli.main.main), in this process.

    For tests of what a command does rather than of the interpreter around it: a subprocess
    pays ~4 s of imports (torch, scikit-learn) per call on 2 cores. Exit status, stdout and
    stderr are what the command gives; an exception that main() would not turn into a one-line
    error comes back as the traceback a user would see, so "no Traceback" checks still hold.
    """
    from engine.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with (
        contextlib.chdir(cwd),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr(sys, "argv", ["seedlab", *args])
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except Exception:  # noqa: BLE001 - what the interpreter would print, then exit 1
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(["seedlab", *args], code, out.getvalue(), err.getvalue())


def cli(*args: str) -> subprocess.CompletedProcess:
    """`seedlab ARGS` in this process (seedlab_in_process from the repository root)."""
    return seedlab_in_process(*args)


def cli_process(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m engine.cli.main ARGS`: the command as its own program, interpreter and all."""
    return subprocess.run(
        seedlab_cmd(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(),
        cwd=ROOT,
    )


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
