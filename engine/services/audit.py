"""The audit trail as the services write it: one entry per action that succeeded.

Every service function that changes something ends with `record(db, actor, ...)`, so the
entry names the acting user as the permission check saw them. Reading the log is
db.audit.list_entries (the Admin page, `seedlab audit list`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy import Engine

from db import datasets as dataset_store
from db.writes import audit as audit_writes
from engine.services.permissions import Actor


def record(db: Engine, actor: Actor | str, action: str, target: str, detail: str = "") -> None:
    """Append one entry, e.g. record(db, actor, "launch", "run 12", "dataset iris"). `actor` is a
    name only where no Actor exists yet (a login, a logout)."""
    name = actor if isinstance(actor, str) else actor.name
    audit_writes.record(db, name, action, target, detail)


def dataset_label(db: Engine, ref: str | int) -> str:
    """How an entry names a dataset given by id or name: "dataset iris (id 3)", never a bare
    number that means nothing in the log once the reader has no id at hand."""
    text = str(ref).strip()
    record = (
        dataset_store.get_dataset(db, int(text))
        if text.isdigit()
        else dataset_store.get_dataset_by_name(db, text)
    )
    return f"dataset {text}" if record is None else f"dataset {record.name} (id {record.id})"


# "dataset 3" standing alone (older launch entries), not "dataset 3 iris" (uploads, deletes).
_BARE_DATASET_ID = re.compile(r"\bdataset (\d+)(?=$|[,;)])")


def name_datasets(text: str, names: Mapping[int, str]) -> str:
    """An entry written before datasets were named in it, read with their names: "dataset 3"
    becomes "dataset iris (id 3)" while dataset 3 exists."""

    def named(match: re.Match[str]) -> str:
        dataset_id = int(match.group(1))
        name = names.get(dataset_id)
        return match.group(0) if name is None else f"dataset {name} (id {dataset_id})"

    return _BARE_DATASET_ID.sub(named, text) if text else text
