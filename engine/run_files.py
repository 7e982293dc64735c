"""The files of a run under SEEDLAB_HOME/runs/<id>/: one definition of where each one lives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.settings import Settings


def log_path(settings: Settings, run_id: int) -> Path:
    return settings.run_dir(run_id) / "run.log"


def report_path(settings: Settings, run_id: int) -> Path:
    return settings.run_dir(run_id) / "report.json"


def checkpoint_path(settings: Settings, run_id: int) -> Path:
    return settings.run_dir(run_id) / "model.pt"


def read_report(settings: Settings, run_id: int) -> dict[str, Any] | None:
    """The evaluation report of a completed run, or None when there is none (yet)."""
    try:
        return json.loads(report_path(settings, run_id).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


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
