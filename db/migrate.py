"""Schema migrations with Alembic: upgrade to head, refuse a database from a newer Seedlab."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class UnknownSchemaVersion(RuntimeError):
    pass


def alembic_config(db: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if db is not None:
        cfg.set_main_option("sqlalchemy.url", db.url.render_as_string(hide_password=False))
    return cfg


def current_revision(db: Engine) -> str | None:
    with db.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def upgrade_to_head(db: Engine) -> None:
    """Bring the schema to head. A revision this code does not know means a newer Seedlab
    wrote the database; migrating it would be guesswork, so refuse with a clear message."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # keep worker and CLI output quiet
    current = current_revision(db)
    script = ScriptDirectory.from_config(alembic_config())
    if current is not None and not _known(script, current):
        raise UnknownSchemaVersion(
            f"The database is at schema revision {current!r}, which this version of Seedlab "
            "does not know (it was written by a newer version). Upgrade Seedlab, or point "
            "SEEDLAB_DB_URL / SEEDLAB_HOME at another database."
        )
    cfg = alembic_config(db)
    with db.connect() as conn:
        sqlite = db.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table with DROP TABLE, which with foreign keys on cascades
            # into every child table (metrics, artifacts, tags) and deletes them. The pragma
            # cannot change inside a transaction, so switch it off before BEGIN.
            # The raw DBAPI call keeps SQLAlchemy from auto-beginning a transaction first.
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"Migration left broken references: {broken[:5]}")
        finally:
            if sqlite:
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
