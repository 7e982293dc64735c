"""A throwaway PostgreSQL server in a temp directory, for the tests and the benchmarks.

Debian's `postgresql` package ships `initdb` and `pg_ctl`; they refuse to run as root, so as
root the data directory is handed to the unprivileged `postgres` (or `nobody`) user and both run
through `runuser`. The server listens on 127.0.0.1 only, on a free port, with trust auth: it
lives for one test session and holds nothing but test data.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

SUPERUSER = "seedlab"
# Tests trade durability for speed (a crash loses the test database anyway); benchmarks keep
# PostgreSQL's defaults so their figures mean what a user would see.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


class ServerUnavailable(RuntimeError):
    """The binaries are missing or the server did not start; the message says which."""


def find_bin_dir() -> Path | None:
    """Where initdb and pg_ctl live: on PATH, else Debian's versioned directory."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(versions[0]).parent if versions else None


def _unprivileged_user() -> str | None:
    """The user to run the server as when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise ServerUnavailable("running as root and neither a 'postgres' nor a 'nobody' user exists")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One server: `start()`, then `create_database()` per test, `stop()` at the end."""

    def __init__(self, *, fast: bool = True) -> None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise ServerUnavailable(
                "PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's "
                "'postgresql' package (make install does so when run as root)"
            )
        self.bin_dir = bin_dir
        self.fast = fast
        self.user = _unprivileged_user()
        # Not under pytest's tmp_path: that is root-only (0700) and the server user must enter.
        self.root = Path(tempfile.mkdtemp(prefix="seedlab-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        self.template: str | None = None  # URL of a database for create_database to copy

    def _run(self, *args: str) -> None:
        cmd = [str(self.bin_dir / args[0]), *args[1:]]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            why = done.stderr.strip() or done.stdout
            raise ServerUnavailable(f"{args[0]} failed ({done.returncode}): {why}\n{tail}")

    def start(self) -> PostgresServer:
        if self.user is not None:
            shutil.chown(self.root, self.user)
        self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = [f"-p {{port}} -c listen_addresses=127.0.0.1 -k {self.root}"]
        if self.fast:
            options += [f"-c {s}" for s in FAST_SETTINGS]
        for _ in range(3):  # a free port can be taken between probing and binding
            self.port = _free_port()
            try:
                self._run(
                    "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                    "-o", " ".join(options).format(port=self.port), "start",
                )  # fmt: skip
                return self
            except ServerUnavailable:
                if "already in use" not in (self.log.read_text() if self.log.exists() else ""):
                    raise
        raise ServerUnavailable(f"no free port for PostgreSQL; see {self.log}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        dsn = f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, template: str | None = None) -> str:
        """A new empty (or copied from `template`) database; returns its SQLAlchemy URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)

    @staticmethod
    def database_name(url: str) -> str:
        return url.rsplit("/", 1)[1]

    def drop_database(self, url: str) -> None:
        name = self.database_name(url)
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.port and (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except ServerUnavailable:
                pass
        # Hundreds of MB of test databases take seconds to delete on a busy disk; nothing
        # waits for them, so let `rm` finish after the test session has ended.
        subprocess.Popen(["rm", "-rf", str(self.root)], start_new_session=True)
