"""Run log files: where they live and how to read their tail."""

from __future__ import annotations

from pathlib import Path

from engine.settings import Settings


def log_path(settings: Settings, run_id: int) -> Path:
    return settings.run_dir(run_id) / "run.log"


def tail(path: Path, lines: int = 200, max_bytes: int = 256 * 1024) -> str:
    """The last `lines` lines of a text file (reads at most `max_bytes` from its end)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])
