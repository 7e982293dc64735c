"""Fixtures build a real Seedlab home (temp dir, real SQLite file, migrated) per test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from db.migrate import upgrade_to_head
from engine.settings import Settings, get_db

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh SEEDLAB_HOME in a temp dir, exported so subprocesses and AppTest see it."""
    home = tmp_path / "home"
    monkeypatch.setenv("SEEDLAB_HOME", str(home))
    monkeypatch.delenv("SEEDLAB_DB_URL", raising=False)
    monkeypatch.setenv("SEEDLAB_MAX_UPLOAD_MB", "5")
    s = Settings.from_env()
    s.ensure_dirs()
    upgrade_to_head(get_db(s))
    return s


@pytest.fixture
def db(settings: Settings) -> Engine:
    return get_db(settings)


@pytest.fixture
def demo_datasets(settings: Settings, db: Engine) -> list[str]:
    from engine.demo_data import register_demo_datasets

    # The tables only: the digits images take ~2 s to ingest and most tests never use them.
    return register_demo_datasets(settings, db, images=False)


def seedlab_cmd(*args: str) -> list[str]:
    """The `seedlab` CLI as a subprocess command (same interpreter as the tests)."""
    return [sys.executable, "-m", "engine.cli", *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env
