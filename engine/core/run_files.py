"""The files of a run under SEEDLAB_HOME/runs/<id>/: one definition of where each one lives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.core.settings import Settings


def log_path(settings: Settings, run_id: int) -> Path:
    return settings.run_dir(run_id) / "run.log"


def report_path(settings: Settings, run_id: int) -> Path:
    return settings.run_dir(run_id) / "report.json"


def checkpoint_path(settings: Settings, run_id: int) -> Path:
    return settings.run_dir(run_id) / "model.pt"


def resume_path(settings: Settings, run_id: int) -> Path:
    """The per-epoch resume checkpoint (engine/ml/checkpoints.py), apart from the final model.pt."""
    return settings.run_dir(run_id) / "resume.pt"


def predictions_path(settings: Settings, run_id: int) -> Path:
    """Every test-split prediction by row id (engine/ml/evaluate.py's prediction_table): what the
    Datasets page's browser filters by a run's predicted label, correctness and confidence."""
    return settings.run_dir(run_id) / "predictions.parquet"


def code_path(settings: Settings, run_id: int) -> Path:
    """What ran (commit, diff, Python, packages, command, host): engine/core/provenance.py."""
    return settings.run_dir(run_id) / "code.json"


def auto_choice_path(settings: Settings, run_id: int) -> Path:
    """What `model=auto` tried and why it chose (engine/ml/auto_select.py)."""
    return settings.run_dir(run_id) / "auto_choice.json"


def read_auto_choice(settings: Settings, run_id: int) -> dict[str, Any] | None:
    """The run's auto_choice.json, or None when it did not choose (a family was named)."""
    try:
        return json.loads(auto_choice_path(settings, run_id).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def append_log_line(settings: Settings, run_id: int, line: str) -> None:
    """Add one line to a run's log (what the engine did to it, for the Logs tab)."""
    path = log_path(settings, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(line.rstrip("\n") + "\n")


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
