"""Fixtures build a real Seedlab home (temp dir, real database, migrated) per test.

The database is a SQLite file, or for modules marked `backends("sqlite", "postgresql")` each
test runs twice: once on SQLite, once on a fresh database of a real PostgreSQL server that the
session starts in a temp dir (tests/pg_server.py; skipped, saying why, without the binaries).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from db.migrate import upgrade_to_head
from db.session import get_db, make_engine
from engine.core.settings import Settings

# Re-exported for test files written before tests/support existed; import them from there.
from tests.support.commands import ROOT, child_env, seedlab_cmd, seedlab_in_process  # noqa: F401
from tests.support.engine import start_worker, stop_worker

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "backends(*names): run the test's settings/db on each named backend "
        "(sqlite, postgresql); unmarked tests use SQLite only",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("backends")
    if marker is not None and "backend" in metafunc.fixturenames:
        unknown = set(marker.args) - set(BACKENDS)
        assert not unknown, f"backends must be among {BACKENDS}, got {sorted(unknown)}"
        metafunc.parametrize("backend", marker.args, indirect=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every PostgreSQL instance is in the `postgres` tier (make test-fast leaves it out), so a
    # new `backends(...)` test needs no marker of its own.
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "postgresql":
            item.add_marker(pytest.mark.postgres)
        # Under pytest-xdist (`make test TEST_WORKERS=2`), the tests that start a Ray cluster
        # or several training processes run one after another on one worker: two at once would
        # ask the 2-core machine for twice the CPUs their runs reserve.
        if item.get_closest_marker("ray") or item.get_closest_marker("ddp"):
            item.add_marker(pytest.mark.xdist_group("clusters"))
        elif _uses_a_module_fixture(item):  # one server per file, not one per xdist worker
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def _uses_a_module_fixture(item: pytest.Item) -> bool:
    defs = getattr(item, "_fixtureinfo", None)
    if defs is None:
        return False
    return any(
        d.scope == "module" for fixture_defs in defs.name2fixturedefs.values() for d in fixture_defs
    )


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Models trained in this process use one thread. Tiny models on shared CI cores train far
    faster on one thread than on two that contend (a text + image test: 47 s → 14 s on 2 cores).
    Runs started by a worker subprocess keep the engine's own thread share (execution/worker.py)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """One PostgreSQL server for the session, with a migrated template database to copy."""
    from tests.pg_server import PostgresServer, ServerUnavailable

    if os.environ.get("SEEDLAB_TEST_POSTGRES", "").lower() in ("0", "off", "no", "false"):
        pytest.skip("PostgreSQL tests skipped: SEEDLAB_TEST_POSTGRES is off")
    try:
        server = PostgresServer().start()
    except ServerUnavailable as e:
        pytest.skip(f"PostgreSQL tests skipped: {e}")
    try:
        template = server.create_database()
        engine = make_engine(template)
        upgrade_to_head(engine)
        engine.dispose()
        server.template = template
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test's home starts as a copy of: running every
    migration per test cost ~0.15 s each, a minute over the suite."""
    path = tmp_path_factory.mktemp("sqlite-template") / "seedlab.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_to_head(engine)
    engine.dispose()  # closing the last connection folds the WAL into the file we copy
    assert not path.with_name("seedlab.db-wal").exists()
    return path


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str) -> Iterator[str | None]:
    """None for SQLite (the home's file); for PostgreSQL a fresh migrated database's URL."""
    if backend == "sqlite":
        yield None
        return
    server = request.getfixturevalue("postgres_server")
    # Not dropped after the test: a CREATE DATABASE after a DROP took 0.6 s instead of 0.15 s
    # here; the server's directory, with every test database, goes at the end of the session.
    yield server.create_database(template=server.database_name(server.template))


@pytest.fixture
def empty_database_url(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> Iterator[str]:
    """A database with no schema at all (for migration tests), on the test's backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    server = request.getfixturevalue("postgres_server")
    yield server.create_database()


@pytest.fixture
def settings(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str | None,
    sqlite_template: Path,
) -> Iterator[Settings]:
    """A fresh SEEDLAB_HOME in a temp dir, exported so subprocesses and AppTest see it."""
    home = tmp_path / "home"
    monkeypatch.setenv("SEEDLAB_HOME", str(home))
    if database_url is None:
        monkeypatch.delenv("SEEDLAB_DB_URL", raising=False)
    else:
        monkeypatch.setenv("SEEDLAB_DB_URL", database_url)
    monkeypatch.setenv("SEEDLAB_MAX_UPLOAD_MB", "5")
    s = Settings.from_env()
    s.ensure_dirs()
    if database_url is None:
        shutil.copyfile(sqlite_template, s.home / "seedlab.db")  # migrated already
    else:
        upgrade_to_head(get_db(s))
    yield s
    if database_url is not None:
        get_db(s).dispose()  # close its server connections; the test database stays idle


@pytest.fixture
def db(settings: Settings) -> Engine:
    return get_db(settings)


@pytest.fixture
def demo_datasets(settings: Settings, db: Engine) -> list[str]:
    from engine.data.demo import register_demo_datasets

    # The tables only: the digits images take ~2 s to ingest and most tests never use them.
    return register_demo_datasets(settings, db, images=False)


@pytest.fixture
def worker(settings: Settings) -> Iterator[subprocess.Popen]:
    """A `seedlab worker` subprocess on the test's home, stopped (SIGTERM) after the test."""
    proc = start_worker()
    yield proc
    stop_worker(proc)
