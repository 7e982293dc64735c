"""SEEDLAB_* settings: read in one place (engine/core/settings.py), one sentence for a bad value,
printed by the CLI as one line and shown by the dashboard as a page error."""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.core.settings import Settings, SettingsError, described_settings
from tests.support.commands import ROOT, child_env, seedlab_in_process


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No SEEDLAB_* variable set but a home in a temp dir."""
    for name, _, _ in described_settings():
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("SEEDLAB_HOME", str(home))
    return home


def test_defaults(clean_env, monkeypatch):
    s = Settings.from_env()
    assert s.home == clean_env.resolve()
    assert s.db_url == f"sqlite:///{clean_env.resolve() / 'seedlab.db'}"
    assert (s.max_upload_mb, s.max_zip_members, s.max_unzipped_mb) == (200, 100_000, 2048)
    assert (s.max_zip_ratio, s.max_image_pixels) == (100, 40_000_000)
    assert s.auth is None
    assert (s.login_max_failures, s.login_lockout_min, s.session_hours) == (5, 15, 12)
    assert (s.heartbeat_timeout_s, s.checkpoint_min_interval_s) == (60, 0)
    assert (s.cpu_cap, s.gpu_cap, s.executor, s.ray_address) == (1, 1, "local", "auto")
    monkeypatch.delenv("SEEDLAB_HOME")
    assert Settings.from_env().home == Path("var").resolve()


def test_empty_counts_as_unset_and_values_are_read(clean_env, monkeypatch):
    monkeypatch.setenv("SEEDLAB_MAX_UPLOAD_MB", "")
    monkeypatch.setenv("SEEDLAB_DB_URL", "")
    monkeypatch.setenv("SEEDLAB_GPU_CAP", "3")
    monkeypatch.setenv("SEEDLAB_AUTH", "Off")
    monkeypatch.setenv("SEEDLAB_HEARTBEAT_TIMEOUT_S", "2.5")
    s = Settings.from_env()
    assert s.max_upload_mb == 200 and s.db_url.startswith("sqlite:///")
    assert (s.gpu_cap, s.auth, s.heartbeat_timeout_s) == (3, False, 2.5)


def test_every_setting_is_declared_once_with_one_default():
    """The env model and the Settings value agree: same names, same defaults."""
    declared = {name: default for name, default, _ in described_settings()}
    fields = {
        f"SEEDLAB_{f.name.upper()}": f.default
        for f in dataclasses.fields(Settings)
        if f.name not in ("home", "db_url")
    }
    assert set(declared) == set(fields) | {"SEEDLAB_HOME", "SEEDLAB_DB_URL"}
    for name, default in fields.items():
        assert declared[name] == default, name


@pytest.mark.parametrize(
    ("name", "value", "sentence"),
    [
        (
            "SEEDLAB_MAX_UPLOAD_MB",
            "abc",
            "SEEDLAB_MAX_UPLOAD_MB must be a whole number of megabytes above 0, got 'abc'.",
        ),
        (
            "SEEDLAB_MAX_ZIP_MEMBERS",
            "0",
            "SEEDLAB_MAX_ZIP_MEMBERS must be a whole number of files above 0, got '0'.",
        ),
        (
            "SEEDLAB_LOGIN_MAX_FAILURES",
            "2.5",
            "SEEDLAB_LOGIN_MAX_FAILURES must be a whole number of failed logins above 0, "
            "got '2.5'.",
        ),
        (
            "SEEDLAB_LOGIN_LOCKOUT_MIN",
            "-1",
            "SEEDLAB_LOGIN_LOCKOUT_MIN must be a number of minutes, 0 or more, got '-1'.",
        ),
        (
            "SEEDLAB_HEARTBEAT_TIMEOUT_S",
            "soon",
            "SEEDLAB_HEARTBEAT_TIMEOUT_S must be a number of seconds above 0, got 'soon'.",
        ),
        (
            "SEEDLAB_SESSION_HOURS",
            "nan",
            "SEEDLAB_SESSION_HOURS must be a number of hours above 0, got 'nan'.",
        ),
        ("SEEDLAB_AUTH", "maybe", "SEEDLAB_AUTH must be on or off, got 'maybe'."),
        ("SEEDLAB_EXECUTOR", "dask", "SEEDLAB_EXECUTOR must be local or ray, got 'dask'."),
        (
            "SEEDLAB_CPU_CAP",
            "0",
            "SEEDLAB_CPU_CAP must be a whole number of runs above 0, got '0'.",
        ),
        (
            "SEEDLAB_DB_URL",
            "seedlab.db",
            "SEEDLAB_DB_URL must be a database URL such as sqlite:////path/seedlab.db or "
            "postgresql+psycopg://…, got 'seedlab.db'.",
        ),
    ],
)
def test_a_bad_value_is_one_sentence_naming_the_variable(
    clean_env, monkeypatch, name, value, sentence
):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    assert str(caught.value) == sentence


def test_the_services_read_their_settings(clean_env, monkeypatch):
    from engine.services import accounts, recovery
    from engine.services.permissions import auth_required

    monkeypatch.setenv("SEEDLAB_LOGIN_MAX_FAILURES", "3")
    monkeypatch.setenv("SEEDLAB_LOGIN_LOCKOUT_MIN", "2")
    monkeypatch.setenv("SEEDLAB_SESSION_HOURS", "0.5")
    monkeypatch.setenv("SEEDLAB_HEARTBEAT_TIMEOUT_S", "0.2")
    assert accounts.max_failures() == 3
    assert accounts.lockout().total_seconds() == 120
    assert accounts.session_lifetime().total_seconds() == 1800
    assert recovery.heartbeat_timeout_s() == 1.0  # at least a second, whatever is set
    monkeypatch.setenv("SEEDLAB_AUTH", "yes")
    assert auth_required("localhost")
    monkeypatch.setenv("SEEDLAB_AUTH", "0")
    assert not auth_required("0.0.0.0")


# Set by the engine for its own child processes and read back there: not user settings.
ENGINE_INTERNAL = {"SEEDLAB_DEVICE_LABEL", "SEEDLAB_WORKER_PID", "SEEDLAB_RAY_NODE"}


def test_no_other_module_reads_a_seedlab_variable():
    """os.environ.get("SEEDLAB_…") / os.environ["SEEDLAB_…"] / getenv outside settings.py."""
    readers = []
    for folder in ("engine", "dashboard", "db"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "engine" / "core" / "settings.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                name = _env_read(node)
                if name and name.startswith("SEEDLAB_") and name not in ENGINE_INTERNAL:
                    readers.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert readers == []


def _env_read(node: ast.AST) -> str | None:
    """The variable a node reads from the environment, if it is one of those reads."""
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        func = ast.unparse(node.func)
        if func in ("os.environ.get", "os.getenv", "environ.get", "getenv"):
            return str(node.args[0].value)
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
        if ast.unparse(node.value) in ("os.environ", "environ"):
            key = node.slice
            return str(key.value) if isinstance(key, ast.Constant) else None
    return None


def test_cli_prints_a_bad_value_as_one_line(settings, monkeypatch):
    monkeypatch.setenv("SEEDLAB_MAX_UPLOAD_MB", "abc")
    result = seedlab_in_process("runs", "list")
    assert result.returncode == 1
    assert result.stderr == (
        "error: SEEDLAB_MAX_UPLOAD_MB must be a whole number of megabytes above 0, got 'abc'.\n"
    )
    assert result.stdout == ""


def test_worker_process_prints_a_bad_value_as_one_line(settings):
    env = child_env() | {"SEEDLAB_GPU_CAP": "many"}
    done = subprocess.run(
        [sys.executable, "-m", "engine.execution.worker"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: SEEDLAB_GPU_CAP must be a whole number of runs above 0, got 'many'."
    )


def test_dashboard_shows_a_bad_value_as_a_page_error(settings, monkeypatch):
    monkeypatch.setenv("SEEDLAB_LOGIN_LOCKOUT_MIN", "a while")
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [
        "SEEDLAB_LOGIN_LOCKOUT_MIN must be a number of minutes, 0 or more, got 'a while'."
    ]


def test_readme_lists_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| Variable |") :]
    rows = {m.group(1) for m in re.finditer(r"^\| `(SEEDLAB_[A-Z_]+)` \|", table, re.MULTILINE)}
    assert rows == {name for name, _, _ in described_settings()}
