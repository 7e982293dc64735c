"""Reads for imports from other trackers: which source runs are already here.

Writes: db/writes/imports.py.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, select

from db.models import run_tags
from db.session import reading


def runs_tagged(db: Engine, tags: Iterable[str]) -> set[str]:
    """Which of `tags` some run already carries (an import marks each run it brings in)."""
    wanted = list(dict.fromkeys(tags))
    found: set[str] = set()
    with reading(db) as conn:
        for start in range(0, len(wanted), 500):  # SQLite binds a bounded number of values
            chunk = wanted[start : start + 500]
            found.update(
                r[0] for r in conn.execute(select(run_tags.c.tag).where(run_tags.c.tag.in_(chunk)))
            )
    return found
