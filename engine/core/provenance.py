"""What ran, for every run: the collector (standard library only, shared with the SDK, which
sends the same fields in its "init" spool line) and how the recorded file is read back.

Stored as `code.json` in the run's folder (engine/core/run_files.code_path) with an artifact row
of kind "code" (engine/services/provenance.record_code), not as a column: a dirty tree's diff
can be large, and a file keeps the runs table lean for the list pages.
"""

from __future__ import annotations

import json
from typing import Any

from engine.core.run_files import code_path
from engine.core.settings import Settings
from seedlab._provenance import MAX_DIFF_CHARS, collect, git_info, installed_packages

__all__ = ["MAX_DIFF_CHARS", "collect", "git_info", "installed_packages", "read_code"]


def read_code(settings: Settings, run_id: int) -> dict[str, Any] | None:
    """What run `run_id` ran, or None when nothing was recorded (a run from before this
    existed, or one still queued)."""
    try:
        data = json.loads(code_path(settings, run_id).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None
