"""What a user edits on a run after the fact: name, tags, note, project, archive flag, deletion."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from db.models import ACTIVE_STATUSES, model_versions, projects, run_tags, runs
from db.session import writing

MAX_TAG = 100
MAX_NAME = 200


class RunNotFound(LookupError):
    pass


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Stripped, de-duplicated tags in the order given; a clear error for an over-long one."""
    out = list(dict.fromkeys(t.strip() for t in tags if t and t.strip()))
    long = [t for t in out if len(t) > MAX_TAG]
    if long:
        raise ValueError(f"tag: at most {MAX_TAG} characters; {long[0][:30]!r}… is longer")
    return out


def _existing(conn, run_ids: list[int]) -> list[int]:  # noqa: ANN001
    found = {r[0] for r in conn.execute(select(runs.c.id).where(runs.c.id.in_(run_ids))).all()}
    missing = [i for i in run_ids if i not in found]
    if missing:
        raise RunNotFound(f"No run {', '.join(map(str, missing))}.")
    return run_ids


def set_tags(db: Engine, run_id: int, tags: Iterable[str]) -> list[str]:
    """Replace a run's tags; returns them as stored."""
    wanted = clean_tags(tags)
    with writing(db) as conn:
        _existing(conn, [run_id])
        conn.execute(delete(run_tags).where(run_tags.c.run_id == run_id))
        if wanted:
            conn.execute(insert(run_tags), [{"run_id": run_id, "tag": t} for t in wanted])
    return sorted(wanted)


def add_tags(db: Engine, run_ids: Iterable[int], tags: Iterable[str]) -> None:
    """Add tags to several runs (a tag a run already has stays once)."""
    ids, wanted = list(run_ids), clean_tags(tags)
    if not ids or not wanted:
        return
    with writing(db) as conn:
        _existing(conn, ids)
        # ON CONFLICT DO NOTHING, not "read what is there, insert the rest": two sessions adding
        # the same tag at once both saw it missing, and PostgreSQL refused the second insert.
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        conn.execute(
            dialect_insert(run_tags).on_conflict_do_nothing(index_elements=["run_id", "tag"]),
            [{"run_id": i, "tag": t} for i in ids for t in wanted],
        )


def remove_tags(db: Engine, run_ids: Iterable[int], tags: Iterable[str]) -> None:
    ids, unwanted = list(run_ids), clean_tags(tags)
    if ids and unwanted:
        with writing(db) as conn:
            conn.execute(
                delete(run_tags).where(run_tags.c.run_id.in_(ids), run_tags.c.tag.in_(unwanted))
            )


def set_notes(db: Engine, run_ids: Iterable[int], notes: str) -> None:
    ids = list(run_ids)
    with writing(db) as conn:
        _existing(conn, ids)
        conn.execute(update(runs).where(runs.c.id.in_(ids)).values(notes=notes))


def rename_run(db: Engine, run_id: int, name: str) -> str:
    clean = name.strip()
    if not clean:
        raise ValueError("name: must not be empty")
    if len(clean) > MAX_NAME:
        raise ValueError(f"name: at most {MAX_NAME} characters")
    with writing(db) as conn:
        _existing(conn, [run_id])
        conn.execute(update(runs).where(runs.c.id == run_id).values(name=clean))
    return clean


def set_archived(db: Engine, run_ids: Iterable[int], archived: bool = True) -> None:
    """Archived runs leave the default run list (a filter shows them) but keep everything."""
    ids = list(run_ids)
    with writing(db) as conn:
        _existing(conn, ids)
        conn.execute(update(runs).where(runs.c.id.in_(ids)).values(archived=archived))


def delete_run_row(db: Engine, run_id: int) -> None:
    """Delete a finished run with its metrics, summaries, tags and artifact rows (cascade).

    An active run is refused: its process would keep writing to a run that no longer exists.
    Files on disk are the caller's job (db/ knows no paths).
    """
    with writing(db) as conn:
        # Row lock on PostgreSQL (no-op on SQLite): the run cannot be requeued meanwhile.
        status = conn.execute(
            select(runs.c.status).where(runs.c.id == run_id).with_for_update()
        ).scalar()
        if status is None:
            raise RunNotFound(f"No run {run_id}.")
        if status in ACTIVE_STATUSES:
            raise ValueError(f"Run {run_id} is {status}; cancel it first, then delete it.")
        # A registered model points at this run's files: refuse rather than break the registry.
        registered = conn.execute(
            select(model_versions.c.name, model_versions.c.version, model_versions.c.stage)
            .where(model_versions.c.run_id == run_id)
            .order_by(model_versions.c.name)
        ).all()
        if registered:
            listed = ", ".join(f"{n!r} v{v} ({s})" for n, v, s in registered)
            first = registered[0]
            raise ValueError(
                f"Run {run_id} is the source of registered model version(s) {listed}; "
                f"delete those versions first (`seedlab models delete {first.name!r} "
                f"{first.version}`, or on the Models page), then delete the run."
            )
        # Children that were cloned from it keep existing; their link is cleared (SET NULL).
        conn.execute(delete(runs).where(runs.c.id == run_id))
        # A project that pinned it as its baseline has none now (no foreign key to do it).
        pinned = projects.c.baseline_run_id == run_id
        conn.execute(update(projects).where(pinned).values(baseline_run_id=None))
