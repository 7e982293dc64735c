"""Moved to db/writes/run_edits.py (issue 17). Transitional forward for engine/cli/* and
engine/execution/*, restructured on other branches; delete once nothing imports db.run_edits."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:  # noqa: ANN401
    from db.writes import run_edits as writes

    return getattr(writes, name)
