"""Storage you can see and reclaim: disk use per project, run and dataset; a clean-up by
retention rules; a backup and restore of the database and SEEDLAB_HOME together.

Disk use is measured from the files themselves (one walk of SEEDLAB_HOME/runs/<id> and the
dataset folders, apparent sizes), next to what the artifacts table records, and cached for a
few seconds so a page that refreshes does not walk thousands of folders each time.

The clean-up deletes only what a finished run no longer needs to be shown, compared or used:
its resume checkpoint (resume.pt), its exports/ and variants/ folders — never model.pt, the
report, the log or the metrics. It never touches a run that is kept: tagged `keep`, or the
source of a registered model version (db/registry.py). Dataset versions that no run uses come
in through `unused_version_paths` once versions exist (the dataset_versions service).

Backup: the resume checkpoints of runs in progress are read first, then the database (SQLite's
online backup API, or pg_dump for PostgreSQL: consistent while the engine writes), then the
other files. A resume checkpoint is so never newer than the database's metrics: a run caught
mid-training restores as interrupted, the engine resumes it from that checkpoint and drops the
points after it, nothing twice.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, make_url

from db import dataset_versions as version_store
from db import storage as storage_store
from db.migrate import upgrade_to_head
from db.models import FINISHED_STATUSES
from db.session import get_db, utcnow
from db.writes import artifacts as artifact_writes
from db.writes import dataset_versions as version_writes
from engine.core.errors import SeedlabError
from engine.core.run_files import append_log_line
from engine.core.settings import Settings
from engine.services import audit
from engine.services.permissions import Actor, Permission, check

# What a clean-up may delete from an old finished run's folder (relative to it).
RECLAIMABLE = {
    "resume.pt": "checkpoint",
    "resume.json": "checkpoint",  # its epoch, for pages (engine/ml/checkpoints.py)
    "exports": "exports",
    "variants": "variants",
}
CACHE_S = 30.0
BACKUP_FORMAT = 1
MANIFEST = "seedlab-backup.json"
_HOME_PREFIX = "home/"


class StorageError(SeedlabError):
    """A storage request that cannot be done; the message says what to do instead."""


def format_bytes(n: int) -> str:
    """1536 -> "1.5 KB": what a person reads in a table (powers of 1024, one decimal)."""
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # unreachable


# ------------------------------------------------------------------------------ disk use


def tree_size(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (apparent sizes, links not followed);
    0 for a path that is not there."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size
    return _folder_size(str(path))


def _folder_size(folder: str) -> int:
    total = 0
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for e in entries:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        else:
                            total += e.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:  # removed while we walked (a temp file)
                        continue
        except FileNotFoundError:
            continue
    return total


@dataclass(frozen=True)
class RunUsage:
    id: int
    name: str
    project: str
    status: str
    finished_at: datetime | None
    bytes: int
    # bytes per part: checkpoint (resume.pt), model (model.pt), exports, variants, other
    parts: dict[str, int]
    artifact_bytes: int  # what the artifacts table records for the run
    kept_because: str


@dataclass(frozen=True)
class DatasetUsage:
    id: int
    name: str
    path: str
    bytes: int


@dataclass(frozen=True)
class VersionUsage:
    dataset_id: int
    dataset: str
    number: int
    base_path: str
    # the bytes of its base: versions made by edits share their parent's base, so these bytes
    # are counted once in the dataset's total, not once per version
    bytes: int
    runs: int  # runs that trained on it
    own_base: bool  # a base of its own (an upload as a new version), not a shared one


@dataclass(frozen=True)
class StorageReport:
    home: str
    total_bytes: int
    database_bytes: int
    runs: list[RunUsage]
    datasets: list[DatasetUsage]
    projects: dict[str, int]
    # run folders with no run row (a deletion that could not remove its folder)
    orphan_run_bytes: int
    other_bytes: int
    versions: list[VersionUsage] = field(default_factory=list)
    measured_at: float = field(default_factory=time.time)

    @property
    def runs_bytes(self) -> int:
        return sum(r.bytes for r in self.runs)

    @property
    def datasets_bytes(self) -> int:
        return sum(d.bytes for d in self.datasets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "home": self.home,
            "total_bytes": self.total_bytes,
            "database_bytes": self.database_bytes,
            "runs_bytes": self.runs_bytes,
            "datasets_bytes": self.datasets_bytes,
            "orphan_run_bytes": self.orphan_run_bytes,
            "other_bytes": self.other_bytes,
            "projects": dict(self.projects),
            "runs": [asdict(r) for r in self.runs],
            "datasets": [asdict(d) for d in self.datasets],
            "versions": [asdict(v) for v in self.versions],
        }


def _run_parts(folder: Path) -> dict[str, int]:
    parts = {"checkpoint": 0, "model": 0, "exports": 0, "variants": 0, "other": 0}
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return parts
    for e in entries:
        try:
            # The folder listing says file or folder (no extra call): one stat per file.
            is_dir = e.is_dir(follow_symlinks=False)
            size = _folder_size(e.path) if is_dir else e.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
        if e.name == "model.pt":
            parts["model"] += size
        else:
            parts[RECLAIMABLE.get(e.name, "other")] += size
    return parts


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite database file, or None on a database server."""
    url = make_url(settings.db_url)
    if not url.get_backend_name().startswith("sqlite") or not url.database:
        return None
    if url.database == ":memory:":
        return None
    return Path(url.database).resolve()


def _database_bytes(settings: Settings) -> int:
    path = sqlite_path(settings)
    if path is None:
        return 0
    return sum(tree_size(path.with_name(path.name + s)) for s in ("", "-wal", "-shm"))


_CACHE: dict[tuple[str, str], StorageReport] = {}


def usage(settings: Settings, db: Engine, max_age_s: float = CACHE_S) -> StorageReport:
    """Disk use of SEEDLAB_HOME by run, project and dataset; a report at most `max_age_s` old
    (0: measure now)."""
    key = (str(settings.home), settings.db_url)
    cached = _CACHE.get(key)
    if cached is not None and time.time() - cached.measured_at <= max_age_s:
        return cached
    report = _measure(settings, db)
    _CACHE[key] = report
    return report


def _measure(settings: Settings, db: Engine) -> StorageReport:
    runs = []
    projects: dict[str, int] = {}
    for r in storage_store.stored_runs(db):
        parts = _run_parts(settings.run_dir(r.id))
        total = sum(parts.values())
        runs.append(
            RunUsage(
                id=r.id,
                name=r.name,
                project=r.project,
                status=r.status,
                finished_at=r.finished_at,
                bytes=total,
                parts=parts,
                artifact_bytes=r.artifact_bytes,
                kept_because=r.kept_because,
            )
        )
        projects[r.project] = projects.get(r.project, 0) + total
    known = {str(r.id) for r in runs}
    orphan = 0
    if settings.runs_dir.is_dir():
        for e in os.scandir(settings.runs_dir):
            if e.name not in known:
                orphan += tree_size(Path(e.path))
    sets = [
        DatasetUsage(d.id, d.name, d.path, tree_size(settings.resolve(d.path)))
        for d in storage_store.stored_datasets(db)
    ]
    # The total from the parts already walked plus the rest of the home: one walk, not two.
    total = sum(r.bytes for r in runs) + orphan + tree_size(settings.datasets_dir)
    if settings.home.is_dir():
        skip = {settings.runs_dir.name, settings.datasets_dir.name}
        total += sum(
            tree_size(Path(e.path)) for e in os.scandir(settings.home) if e.name not in skip
        )
    database = _database_bytes(settings)
    db_file = sqlite_path(settings)
    in_home = db_file is not None and db_file.is_relative_to(settings.home.resolve())
    counted = sum(r.bytes for r in runs) + orphan + sum(d.bytes for d in sets)
    counted += database if in_home else 0
    return StorageReport(
        versions=_version_usage(settings, db, sets),
        home=str(settings.home),
        total_bytes=total + (0 if in_home else database),
        database_bytes=database,
        runs=runs,
        datasets=sets,
        projects=projects,
        orphan_run_bytes=orphan,
        other_bytes=max(0, total - counted),
    )


def _version_usage(settings: Settings, db: Engine, sets: list[DatasetUsage]) -> list[VersionUsage]:
    versions = version_store.all_versions(db)
    used = version_store.versions_used_by_runs(db)
    names = {d.id: d.name for d in sets}
    sizes = version_usage(settings, {(v.dataset_id, v.number): v.base_path for v in versions})
    first_base = {}
    for v in versions:
        first_base.setdefault(v.dataset_id, v.base_path)
    return [
        VersionUsage(
            dataset_id=v.dataset_id,
            dataset=names.get(v.dataset_id, str(v.dataset_id)),
            number=v.number,
            base_path=v.base_path,
            bytes=sizes[(v.dataset_id, v.number)],
            runs=used.get((v.dataset_id, v.number), 0),
            own_base=v.number == 1 or v.base_path != first_base[v.dataset_id],
        )
        for v in versions
    ]


def unused_version_bases(db: Engine) -> dict[str, list[tuple[int, int]]]:
    """Dataset version bases a clean-up may delete, with the versions that read them: no run
    trained on any of those versions and none is its dataset's latest (the one people edit and
    train on next). Versions made by edits share their parent's base, so a base goes only when
    every version on it may go."""
    versions = version_store.all_versions(db)
    used = version_store.versions_used_by_runs(db)
    latest: dict[int, int] = {}
    for v in versions:
        latest[v.dataset_id] = max(latest.get(v.dataset_id, 0), v.number)
    by_base: dict[str, list[Any]] = {}
    for v in versions:
        by_base.setdefault(v.base_path, []).append(v)
    return {
        base: [(v.dataset_id, v.number) for v in group]
        for base, group in by_base.items()
        if not any(
            (v.dataset_id, v.number) in used or v.number == latest[v.dataset_id] for v in group
        )
    }


def version_usage(settings: Settings, base_paths: Mapping[Any, str]) -> dict[Any, int]:
    """Bytes of each dataset version's stored base ({key: path relative to home} → {key:
    bytes}). The hook for dataset versions: versions sharing one base share its bytes, so the
    same path is measured once and reported under each key that names it."""
    sizes: dict[str, int] = {}
    out = {}
    for key, path in base_paths.items():
        if path not in sizes:
            sizes[path] = tree_size(settings.resolve(path))
        out[key] = sizes[path]
    return out


# ------------------------------------------------------------------------------ clean-up


@dataclass(frozen=True)
class CleanItem:
    path: str  # relative to SEEDLAB_HOME
    kind: str  # checkpoint, exports, variants, dataset version
    bytes: int
    run_id: int | None
    reason: str


@dataclass(frozen=True)
class CleanPlan:
    older_than_days: float
    items: list[CleanItem]
    # runs old enough that stay whole, and why: {run_id: "tag keep" | "model x v1"}
    kept: dict[int, str]
    deleted: bool = False

    @property
    def bytes(self) -> int:
        return sum(i.bytes for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "older_than_days": self.older_than_days,
            "deleted": self.deleted,
            "bytes": self.bytes,
            "items": [asdict(i) for i in self.items],
            "kept": {str(k): v for k, v in self.kept.items()},
        }


def parse_age(text: str) -> float:
    """ "30d", "12h", "2w" or a plain number of days → days; a sentence when it is none."""
    value = text.strip().lower()
    factor = {"d": 1.0, "h": 1 / 24, "w": 7.0}.get(value[-1:], None)
    number = value[:-1] if factor is not None else value
    try:
        days = float(number) * (factor if factor is not None else 1.0)
    except ValueError:
        days = -1.0
    if not days >= 0 or days == float("inf"):
        raise StorageError(
            "--older-than must be an age such as 30d, 12h or 2w (days, hours, weeks), "
            f"got {text!r}."
        )
    return days


def plan_clean(
    settings: Settings,
    db: Engine,
    older_than_days: float = 30,
    unused_version_paths: Iterable[str] | None = None,
    now: datetime | None = None,
) -> CleanPlan:
    """What a clean-up would delete: the reclaimable files of runs finished more than
    `older_than_days` ago that nothing keeps, and the given dataset version bases (the caller
    says no run uses them) unless a dataset row still points at one."""
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    items: list[CleanItem] = []
    kept: dict[int, str] = {}
    for r in storage_store.stored_runs(db):
        if r.status not in FINISHED_STATUSES or r.finished_at is None or r.finished_at > cutoff:
            continue
        if r.kept_because:
            kept[r.id] = r.kept_because
            continue
        folder = settings.run_dir(r.id)
        age = (now or utcnow()) - r.finished_at
        for name, kind in RECLAIMABLE.items():
            path = folder / name
            if path.exists():
                items.append(
                    CleanItem(
                        path=str(path.relative_to(settings.home)),
                        kind=kind,
                        bytes=tree_size(path),
                        run_id=r.id,
                        reason=f"run {r.id} {r.status} {age.days} days ago"
                        + (
                            "; it can no longer be resumed, only cloned"
                            if kind == "checkpoint" and r.status != "completed"
                            else ""
                        ),
                    )
                )
    in_use = {d.path for d in storage_store.stored_datasets(db)}
    unused = unused_version_bases(db)
    for base in unused if unused_version_paths is None else unused_version_paths:
        if base in in_use or not settings.resolve(base).exists():
            continue
        items.append(
            CleanItem(
                path=base,
                kind="dataset version",
                bytes=tree_size(settings.resolve(base)),
                run_id=None,
                reason=_version_reason(unused.get(base, [])),
            )
        )
    return CleanPlan(older_than_days=older_than_days, items=items, kept=kept)


def _version_reason(versions: list[tuple[int, int]]) -> str:
    numbers = ", ".join(str(n) for _d, n in versions)
    return (
        f"no run trained on dataset version(s) {numbers} and a newer version exists"
        if versions
        else "no run uses this dataset version"
    )


# The run log line a clean-up leaves in each run it touched (recovery.resume_run reads it).
CLEANED_BY_STORAGE = "storage clean-up removed"


def clean(
    settings: Settings,
    db: Engine,
    actor: Actor,
    older_than_days: float = 30,
    dry_run: bool = False,
    unused_version_paths: Iterable[str] | None = None,
) -> CleanPlan:
    """Delete what `plan_clean` lists (admins only; audited), or with `dry_run` only list it."""
    check(actor, Permission.MANAGE_STORAGE)
    unused = unused_version_bases(db)
    plan = plan_clean(settings, db, older_than_days, unused_version_paths)
    if dry_run:
        return plan
    home = settings.home.resolve()
    by_run: dict[int, list[str]] = {}
    for item in plan.items:
        path = (home / item.path).resolve()
        if not path.is_relative_to(home) or path == home:
            continue  # never outside SEEDLAB_HOME, whatever a row says
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        if item.run_id is not None:
            inside = path.relative_to(settings.run_dir(item.run_id).resolve())
            by_run.setdefault(item.run_id, []).append(str(inside))
        elif item.kind == "dataset version":
            # The versions that read this base go with it: a version is never left pointing
            # at deleted data (Datasets and `datasets versions` no longer list them).
            for dataset_id, number in unused.get(item.path, []):
                version_writes.delete_versions(db, dataset_id, [number])
    for run_id, names in by_run.items():
        # Rows of files now gone: exports/model.onnx under a deleted exports/ too.
        rows = [r.path for r in _artifact_paths(db, run_id)]
        gone = [p for p in rows if any(p == n or p.startswith(n + "/") for n in names)]
        artifact_writes.forget_artifacts(db, run_id, gone)
        # Said in the run's own log, so its page (and a refused resume) can tell why it is gone.
        append_log_line(
            settings,
            run_id,
            f"{utcnow():%Y-%m-%d %H:%M:%S} {CLEANED_BY_STORAGE}: {', '.join(sorted(names))} "
            f"(older than {plan.older_than_days:g} days, by {actor.name})",
        )
    _CACHE.clear()
    audit.record(
        db,
        actor,
        "storage_clean",
        f"{len(plan.items)} items",
        f"{format_bytes(plan.bytes)} freed; older than {plan.older_than_days:g} days",
    )
    return CleanPlan(plan.older_than_days, plan.items, plan.kept, deleted=True)


def _artifact_paths(db: Engine, run_id: int) -> list[Any]:
    from db.artifacts import list_artifacts

    return list_artifacts(db, run_id)


# ------------------------------------------------------------------------------ backup

_SQLITE_MEMBER = "database/seedlab.db"
_PG_MEMBER = "database/seedlab.pgdump"


def _backend(settings: Settings) -> str:
    """ "sqlite" or "postgresql"; a sentence for any other database."""
    if sqlite_path(settings) is not None:
        return "sqlite"
    if make_url(settings.db_url).get_backend_name() == "postgresql":
        return "postgresql"
    raise StorageError(
        f"seedlab backup and restore handle SQLite and PostgreSQL; this database is "
        f"{settings.db_url_shown}. Back it up with its own tools and copy SEEDLAB_HOME alongside."
    )


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise StorageError(
            f"Backing up or restoring a PostgreSQL database needs {name}, which is not on PATH; "
            "install the PostgreSQL client programs (Debian: apt install postgresql-client) "
            "in the same major version as the server, then run this again."
        )
    return found


def _pg_connection(settings: Settings) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and an environment carrying it (PGPASSWORD): the
    password never appears in a process listing."""
    url = make_url(settings.db_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run_tool(cmd: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise StorageError(f"{what} failed: {last}")


def _snapshot_database(settings: Settings, folder: Path) -> tuple[Path, str]:
    """The database, consistent at one moment while others write: SQLite's online backup API,
    or pg_dump (one transaction snapshot). Returns the file and its name in the archive."""
    db_file = sqlite_path(settings)
    if db_file is not None:
        snapshot = folder / "seedlab.db"
        source = sqlite3.connect(str(db_file), timeout=30)
        dest = sqlite3.connect(str(snapshot))
        try:
            source.backup(dest)
        finally:
            dest.close()
            source.close()
        return snapshot, _SQLITE_MEMBER
    pg_dump = _pg_tool("pg_dump")
    uri, env = _pg_connection(settings)
    snapshot = folder / "seedlab.pgdump"
    _run_tool(
        [pg_dump, "--format=custom", "--no-owner", "--no-privileges", "-f", str(snapshot), uri],
        env,
        "pg_dump",
    )
    return snapshot, _PG_MEMBER


def backup(settings: Settings, db: Engine, actor: Actor, target: Path) -> dict[str, Any]:
    """Write the database and SEEDLAB_HOME into one archive at `target` (.tar, .tar.gz or
    .tgz); safe while the engine runs. Returns the manifest."""
    check(actor, Permission.MANAGE_STORAGE)
    backend = _backend(settings)
    if backend == "postgresql":
        _pg_tool("pg_dump")  # say so before anything is written
    target = Path(target).expanduser().resolve()
    home = settings.home.resolve()
    if target.is_relative_to(home):
        raise StorageError(
            f"The backup {target} would be inside SEEDLAB_HOME ({home}) and so back itself up; "
            "choose a path outside it."
        )
    if target.exists():
        raise StorageError(f"{target} already exists; choose a new file name.")
    target.parent.mkdir(parents=True, exist_ok=True)
    gz = target.name.endswith((".gz", ".tgz"))
    db_file = sqlite_path(settings)
    live_db = (
        {db_file.with_name(db_file.name + s) for s in ("", "-wal", "-shm", "-journal")}
        if db_file is not None
        else set()
    )
    added: set[Path] = set()
    tmp_target = target.with_name(f".{target.name}.partial")
    try:
        with (
            tempfile.TemporaryDirectory(prefix="seedlab-backup-") as tmp,
            tarfile.open(tmp_target, "w:gz" if gz else "w") as tar,
        ):

            def add(path: Path) -> None:
                if path in added or path in live_db:
                    return
                name = _HOME_PREFIX + str(path.relative_to(home))
                try:
                    if path.is_dir() or path.is_symlink():
                        tar.add(path, arcname=name, recursive=False)
                    else:
                        # Size and bytes from the one open file: a file replaced meanwhile
                        # (atomic writes rename a new one in) is read whole, as it was.
                        with path.open("rb") as fh:
                            tar.addfile(tar.gettarinfo(arcname=name, fileobj=fh), fh)
                except FileNotFoundError:  # removed while we copied (a temp file)
                    return
                added.add(path)

            # 1. Resume checkpoints of runs in progress, before the database (see the module
            # docstring: the checkpoint must not be newer than the stored metrics).
            running = [r.id for r in storage_store.stored_runs(db) if r.status == "running"]
            for run_id in running:
                for name in ("resume.pt", "resume.json"):
                    path = settings.run_dir(run_id).resolve() / name
                    if path.exists():
                        for parent in reversed(path.relative_to(home).parents):
                            if str(parent) != ".":
                                add(home / parent)
                        add(path)
            # 2. The database, at one moment.
            snapshot, member = _snapshot_database(settings, Path(tmp))
            counts = storage_store.row_counts(db)
            # 3. Everything else under SEEDLAB_HOME.
            for folder, dirs, files in os.walk(home):
                here = Path(folder)
                dirs[:] = sorted(d for d in dirs if not d.startswith(".tmp-"))
                if here != home:
                    add(here)
                for name in sorted(files):
                    add(here / name)
            manifest = {
                "format": BACKUP_FORMAT,
                "database": backend,
                "created_at": utcnow().isoformat(timespec="seconds") + "Z",
                "home": str(home),
                "files": len(added),
                **counts,
            }
            tar.add(snapshot, arcname=member)
            info = tarfile.TarInfo(MANIFEST)
            payload = json.dumps(manifest, indent=2).encode()
            info.size = len(payload)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(payload))
        tmp_target.rename(target)
    finally:
        tmp_target.unlink(missing_ok=True)
    manifest["path"] = str(target)
    manifest["bytes"] = target.stat().st_size
    audit.record(
        db,
        actor,
        "backup",
        str(target)[:200],
        f"{manifest['runs']} runs, {format_bytes(manifest['bytes'])}",
    )
    return manifest


def _is_fresh(home: Path, db_file: Path | None) -> bool:
    """Nothing in `home` but empty folders and the database file (what `seedlab init` or a
    first command leaves)."""
    if not home.exists():
        return True
    for item in home.iterdir():
        if db_file is not None and item.name.startswith(db_file.name):
            continue
        if not item.is_dir() or any(item.iterdir()):
            return False
    return True


def restore(settings: Settings, actor: Actor, source: Path) -> dict[str, Any]:
    """Unpack a backup into this SEEDLAB_HOME and database, which must be new (empty folders,
    a database without runs): a restore never mixes two homes. Audited in the restored
    database. Returns the backup's manifest."""
    check(actor, Permission.MANAGE_STORAGE)
    backend = _backend(settings)
    db_file = sqlite_path(settings)
    source = Path(source).expanduser().resolve()
    if not source.is_file():
        raise StorageError(f"No backup file at {source}; give the path `seedlab backup` wrote.")
    home = settings.home.resolve()
    if not _is_fresh(home, db_file):
        raise StorageError(
            f"SEEDLAB_HOME ({home}) is not empty; restore into a new folder (set SEEDLAB_HOME "
            "to one) so nothing here is overwritten."
        )
    home.mkdir(parents=True, exist_ok=True)
    db = get_db(settings)
    if storage_store.row_counts(db)["runs"] > 0:
        raise StorageError(
            f"The database {settings.db_url_shown} already holds runs; restore into a new "
            "database (SEEDLAB_DB_URL) so nothing there is overwritten."
        )
    try:
        tar = tarfile.open(source)
    except (tarfile.TarError, OSError) as exc:
        raise StorageError(f"{source} is not a Seedlab backup ({exc}).") from exc
    with tar:
        try:
            manifest = json.load(tar.extractfile(MANIFEST))  # type: ignore[arg-type]
        except (KeyError, TypeError, json.JSONDecodeError) as exc:
            raise StorageError(f"{source} is not a Seedlab backup (no {MANIFEST} in it).") from exc
        if manifest.get("format") != BACKUP_FORMAT:
            raise StorageError(
                f"{source} is a backup of format {manifest.get('format')}; this Seedlab reads "
                f"format {BACKUP_FORMAT}. Restore it with the Seedlab version that wrote it."
            )
        kind = manifest.get("database", "sqlite")
        if kind != backend:
            raise StorageError(
                f"{source} holds a {kind} database and SEEDLAB_DB_URL points at {backend}; "
                f"restore it into a {kind} database."
            )
        if pg_restore_needed := (backend == "postgresql"):
            _pg_tool("pg_restore")
        with tempfile.TemporaryDirectory(prefix=".tmp-restore-", dir=home) as tmp:
            # filter="data": no absolute paths, no links out, no device files from an archive.
            tar.extractall(tmp, filter="data")
            unpacked = Path(tmp) / "home"
            for item in sorted(unpacked.iterdir()) if unpacked.exists() else []:
                dest = home / item.name
                if dest.is_dir() and not any(dest.iterdir()):
                    dest.rmdir()  # an empty runs/ or datasets/ a first command made
                shutil.move(str(item), dest)
            if pg_restore_needed:
                db.dispose()  # no pooled connection holds a table pg_restore replaces
                uri, env = _pg_connection(settings)
                _run_tool(
                    [
                        _pg_tool("pg_restore"),
                        "--clean",
                        "--if-exists",
                        "--no-owner",
                        "--no-privileges",
                        "-d",
                        uri,
                        str(Path(tmp) / _PG_MEMBER),
                    ],
                    env,
                    "pg_restore",
                )
            else:
                assert db_file is not None
                db.dispose()  # the file is replaced under it
                for suffix in ("-wal", "-shm"):
                    db_file.with_name(db_file.name + suffix).unlink(missing_ok=True)
                db_file.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(Path(tmp) / _SQLITE_MEMBER), db_file)
    _CACHE.clear()
    upgrade_to_head(db)  # a backup from an older Seedlab
    audit.record(db, actor, "restore", str(source)[:200], f"{manifest.get('runs')} runs")
    return manifest
