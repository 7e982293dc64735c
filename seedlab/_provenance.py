"""What ran: the code, interpreter, packages, command line, host and device of a run.

Standard library only, so the SDK (its own small distribution) can send it in its "init" spool
line, and the server's runner records the same fields for built-in and recipe runs
(engine/core/provenance.py re-exports `collect`). Every field is best effort: a missing git, a
folder that is no checkout, or a package without metadata leaves that field empty, never an
error: recording what ran must not stop the run.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

# The diff of a dirty tree is kept up to this many characters: enough to read what changed,
# not a copy of a vendored folder someone forgot to commit.
MAX_DIFF_CHARS = 100_000
GIT_TIMEOUT_S = 5.0


def _git(folder: Path, *args: str) -> str | None:
    """`git args` in `folder`: its stdout, or None when git is missing or says no."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def git_info(folder: str | Path | None = None, max_diff_chars: int = MAX_DIFF_CHARS) -> dict:
    """The checkout around `folder` (default: the working directory): commit, branch, whether
    tracked files changed since the commit, and that diff (cut at `max_diff_chars`).
    {} when the folder is in no git checkout."""
    where = Path(folder or os.getcwd())
    if where.is_file():
        where = where.parent
    commit = _git(where, "rev-parse", "HEAD")
    if not commit:
        return {}
    info: dict[str, Any] = {
        "commit": commit.strip(),
        "root": (_git(where, "rev-parse", "--show-toplevel") or "").strip() or None,
        "branch": (_git(where, "rev-parse", "--abbrev-ref", "HEAD") or "").strip() or None,
    }
    status = _git(where, "status", "--porcelain", "--untracked-files=no") or ""
    info["dirty"] = bool(status.strip())
    diff = _git(where, "diff", "HEAD") if info["dirty"] else ""
    diff = diff or ""
    info["diff_truncated"] = len(diff) > max_diff_chars
    info["diff"] = diff[:max_diff_chars]
    return info


def installed_packages() -> dict[str, str]:
    """Every distribution the interpreter sees, name → version, sorted by name."""
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name and name not in found:
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def collect(
    device: str | None = None,
    *,
    folder: str | Path | None = None,
    argv: list[str] | None = None,
    max_diff_chars: int = MAX_DIFF_CHARS,
) -> dict[str, Any]:
    """What ran, as one JSON-ready dict. `folder` is where the code lives (its git checkout is
    recorded; default: the directory of the script being run, else the working directory)."""
    args = list(sys.argv if argv is None else argv)
    if folder is None:
        script = Path(args[0]) if args and args[0] not in ("", "-c", "-m") else None
        folder = script.parent if script is not None and script.exists() else os.getcwd()
    return {
        "git": git_info(folder, max_diff_chars),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "packages": installed_packages(),
        "command": args,
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "device": device,
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }
