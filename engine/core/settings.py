"""Seedlab's settings: every `SEEDLAB_*` variable a user sets is read here, and only here.

`Settings.from_env()` reads and checks them all at once (pydantic-settings, prefix `SEEDLAB_`; an
empty variable counts as unset). A bad value is one rule everywhere: a `SettingsError` whose
message is one sentence naming the variable and what it accepts, which the CLI prints as
`error: …` and the dashboard shows as a page error.

Not settings, so not here: variables the engine sets for its own child processes and reads back
in them (SEEDLAB_DEVICE_LABEL, SEEDLAB_WORKER_PID, SEEDLAB_RAY_NODE; engine/execution), and the
test suite's SEEDLAB_TEST_POSTGRES.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.core.errors import SeedlabError

# The environment variables Seedlab reads all start with this.
PREFIX = "SEEDLAB_"
# user:password@ in a database URL; the password is masked wherever the URL is shown.
_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@]*@")
DEFAULT_HOME = "var"
DEFAULT_MAX_UPLOAD_MB = 200
# Image ZIP caps: room for tens of thousands of images and a few hundred MB, not for a zip bomb.
DEFAULT_MAX_ZIP_MEMBERS = 100_000
DEFAULT_MAX_UNZIPPED_MB = 2048
DEFAULT_MAX_ZIP_RATIO = 100
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
# One file a script or the SDK uploads to a run over the HTTP API (a checkpoint, a plot).
DEFAULT_MAX_ARTIFACT_MB = 2048
DEFAULT_LOGIN_MAX_FAILURES = 5
DEFAULT_LOGIN_USER_MAX_FAILURES = 20
DEFAULT_LOGIN_LOCKOUT_MIN = 15.0
DEFAULT_SESSION_HOURS = 12.0
DEFAULT_HEARTBEAT_TIMEOUT_S = 60.0
DEFAULT_CHECKPOINT_MIN_INTERVAL_S = 0.0
DEFAULT_CPU_CAP = 1
DEFAULT_GPU_CAP = 1
DEFAULT_EXECUTOR = "local"
DEFAULT_RAY_ADDRESS = "auto"
DEFAULT_SMTP_PORT = 587
# Predictions a served model (or a shared Playground) answers per minute, per token or link.
DEFAULT_SERVE_RATE_PER_MIN = 120
DEFAULT_SHARE_PREDICT_PER_MIN = 30


class SettingsError(SeedlabError):
    """A SEEDLAB_* variable with a value Seedlab cannot use; the message names it."""


def _accepts(text: str) -> Any:  # noqa: ANN401 - pydantic's json_schema_extra
    return {"accepts": text}


class _Environment(BaseSettings):
    """The SEEDLAB_* variables as pydantic reads and checks them. Each field's `accepts` is the
    end of the sentence a bad value gets ("SEEDLAB_X must be <accepts>, got '…'."), and the README's
    table of settings says the same."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_ignore_empty=True, extra="ignore", frozen=True
    )

    home: str = Field(DEFAULT_HOME, json_schema_extra=_accepts("a folder path"))
    db_url: str | None = Field(
        None,
        pattern=r"^[A-Za-z][A-Za-z0-9+]*://",
        json_schema_extra=_accepts(
            "a database URL such as sqlite:////path/seedlab.db or postgresql+psycopg://…"
        ),
    )
    max_upload_mb: int = Field(
        DEFAULT_MAX_UPLOAD_MB,
        gt=0,
        json_schema_extra=_accepts("a whole number of megabytes above 0"),
    )
    max_zip_members: int = Field(
        DEFAULT_MAX_ZIP_MEMBERS, gt=0, json_schema_extra=_accepts("a whole number of files above 0")
    )
    max_unzipped_mb: int = Field(
        DEFAULT_MAX_UNZIPPED_MB,
        gt=0,
        json_schema_extra=_accepts("a whole number of megabytes above 0"),
    )
    max_zip_ratio: int = Field(
        DEFAULT_MAX_ZIP_RATIO,
        gt=0,
        json_schema_extra=_accepts("a whole number above 0 (unpacked size over packed size)"),
    )
    max_image_pixels: int = Field(
        DEFAULT_MAX_IMAGE_PIXELS,
        gt=0,
        json_schema_extra=_accepts("a whole number of pixels above 0"),
    )
    max_artifact_mb: int = Field(
        DEFAULT_MAX_ARTIFACT_MB,
        gt=0,
        json_schema_extra=_accepts("a whole number of megabytes above 0 (one uploaded artifact)"),
    )
    auth: bool | None = Field(None, json_schema_extra=_accepts("on or off"))
    login_max_failures: int = Field(
        DEFAULT_LOGIN_MAX_FAILURES,
        gt=0,
        json_schema_extra=_accepts("a whole number of failed logins above 0"),
    )
    login_user_max_failures: int = Field(
        DEFAULT_LOGIN_USER_MAX_FAILURES,
        gt=0,
        json_schema_extra=_accepts("a whole number of failed logins above 0"),
    )
    login_lockout_min: float = Field(
        DEFAULT_LOGIN_LOCKOUT_MIN,
        ge=0,
        allow_inf_nan=False,
        json_schema_extra=_accepts("a number of minutes, 0 or more"),
    )
    session_hours: float = Field(
        DEFAULT_SESSION_HOURS,
        gt=0,
        allow_inf_nan=False,
        json_schema_extra=_accepts("a number of hours above 0"),
    )
    trusted_proxies: str = Field(
        "",
        json_schema_extra=_accepts(
            "addresses or networks of your reverse proxies, comma-separated "
            "(such as 127.0.0.1,10.0.0.0/8)"
        ),
    )
    https: bool | None = Field(None, json_schema_extra=_accepts("on or off"))

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        proxy_networks(value)  # a ValueError names nothing; _read_environment says what is wrong
        return value

    heartbeat_timeout_s: float = Field(
        DEFAULT_HEARTBEAT_TIMEOUT_S,
        gt=0,
        allow_inf_nan=False,
        json_schema_extra=_accepts("a number of seconds above 0"),
    )
    checkpoint_min_interval_s: float = Field(
        DEFAULT_CHECKPOINT_MIN_INTERVAL_S,
        ge=0,
        allow_inf_nan=False,
        json_schema_extra=_accepts("a number of seconds, 0 or more"),
    )
    cpu_cap: int = Field(
        DEFAULT_CPU_CAP, gt=0, json_schema_extra=_accepts("a whole number of runs above 0")
    )
    gpu_cap: int = Field(
        DEFAULT_GPU_CAP, gt=0, json_schema_extra=_accepts("a whole number of runs above 0")
    )
    executor: str = Field(
        DEFAULT_EXECUTOR, pattern=r"^(local|ray)$", json_schema_extra=_accepts("local or ray")
    )
    ray_address: str = Field(
        DEFAULT_RAY_ADDRESS, json_schema_extra=_accepts("HOST:PORT, ray://HOST:PORT or auto")
    )
    public_url: str = Field(
        "",
        pattern=r"^(https?://[^\s/?#]+(/[^\s?#]*)?)?$",
        json_schema_extra=_accepts(
            "the address people outside use to reach the dashboard, such as "
            "https://seedlab.example.com (share links and the served-model URL start with it)"
        ),
    )
    smtp_host: str = Field("", json_schema_extra=_accepts("the host name of your mail server"))
    smtp_port: int = Field(
        DEFAULT_SMTP_PORT, gt=0, lt=65536, json_schema_extra=_accepts("a port number")
    )
    smtp_user: str = Field("", json_schema_extra=_accepts("the mail server's login name"))
    smtp_password: str = Field("", json_schema_extra=_accepts("the mail server's password"))
    smtp_from: str = Field("", json_schema_extra=_accepts("the sender address of alert e-mails"))
    smtp_starttls: bool = Field(True, json_schema_extra=_accepts("on or off"))
    serve_rate_per_min: int = Field(
        DEFAULT_SERVE_RATE_PER_MIN,
        gt=0,
        json_schema_extra=_accepts("a whole number of requests per minute above 0"),
    )
    share_predict_per_min: int = Field(
        DEFAULT_SHARE_PREDICT_PER_MIN,
        gt=0,
        json_schema_extra=_accepts("a whole number of predictions per minute above 0"),
    )


def proxy_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """SEEDLAB_TRUSTED_PROXIES as networks (a bare address is a network of one); ValueError on
    anything else."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    )


def env_name(field: str) -> str:
    """The environment variable of a setting: `max_upload_mb` → `SEEDLAB_MAX_UPLOAD_MB`."""
    return f"{PREFIX}{field.upper()}"


def described_settings() -> list[tuple[str, Any, str]]:
    """(variable, default, what it accepts) of every setting, in declaration order."""
    return [
        (env_name(name), info.default, info.json_schema_extra["accepts"])  # type: ignore[index]
        for name, info in _Environment.model_fields.items()
    ]


def _read_environment() -> _Environment:
    # pydantic-settings takes ~1 ms a read and a page run reads several times: the values are
    # kept per snapshot of the SEEDLAB_* variables, so a changed variable is read afresh.
    snapshot = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(PREFIX)))
    return _read_snapshot(snapshot)


@functools.lru_cache(maxsize=8)
def _read_snapshot(_snapshot: tuple[tuple[str, str], ...]) -> _Environment:
    try:
        return _Environment()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0])
        accepts = _Environment.model_fields[name].json_schema_extra["accepts"]  # type: ignore[index]
        raise SettingsError(
            f"{env_name(name)} must be {accepts}, got {first['input']!r}."
        ) from None


@dataclass(frozen=True)
class Settings:
    """The settings as the code uses them: a plain frozen value (tests build one directly, or
    `dataclasses.replace` one), filled from the environment by `from_env()` only."""

    home: Path
    db_url: str
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB
    max_zip_members: int = DEFAULT_MAX_ZIP_MEMBERS
    max_unzipped_mb: int = DEFAULT_MAX_UNZIPPED_MB
    max_zip_ratio: int = DEFAULT_MAX_ZIP_RATIO
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_artifact_mb: int = DEFAULT_MAX_ARTIFACT_MB
    # None: access control follows the dashboard's bind address (engine.services.permissions).
    auth: bool | None = None
    # Failed logins from one client address, then from all addresses for one user name, before
    # each waits (engine.services.accounts); the per-address limit is the lower, so one address
    # slows itself long before it could lock a user out.
    login_max_failures: int = DEFAULT_LOGIN_MAX_FAILURES
    login_user_max_failures: int = DEFAULT_LOGIN_USER_MAX_FAILURES
    login_lockout_min: float = DEFAULT_LOGIN_LOCKOUT_MIN
    session_hours: float = DEFAULT_SESSION_HOURS
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (dashboard/web.py).
    trusted_proxies: str = ""
    # None: the session cookie is Secure when a trusted proxy says the browser used HTTPS.
    https: bool | None = None
    heartbeat_timeout_s: float = DEFAULT_HEARTBEAT_TIMEOUT_S
    checkpoint_min_interval_s: float = DEFAULT_CHECKPOINT_MIN_INTERVAL_S
    # The worker's defaults when its options are not given (engine.execution.worker_options).
    cpu_cap: int = DEFAULT_CPU_CAP
    gpu_cap: int = DEFAULT_GPU_CAP
    executor: str = DEFAULT_EXECUTOR
    ray_address: str = DEFAULT_RAY_ADDRESS
    # "" : links are built from the address the browser used (fine on a LAN, not for outsiders).
    public_url: str = ""
    # Alert e-mail (engine/services/alerts); no host: e-mail alerts cannot be added.
    smtp_host: str = ""
    smtp_port: int = DEFAULT_SMTP_PORT
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_starttls: bool = True
    serve_rate_per_min: int = DEFAULT_SERVE_RATE_PER_MIN
    share_predict_per_min: int = DEFAULT_SHARE_PREDICT_PER_MIN

    @classmethod
    def from_env(cls) -> Settings:
        """The settings from the SEEDLAB_* variables; SettingsError (one sentence) on a bad one.
        Read per call: tests and `SEEDLAB_HOME=… cmd` change the environment, and a cached copy
        would keep the first one this process saw (the parsing is cached per environment)."""
        env = _read_environment()
        home = Path(env.home).expanduser().resolve()
        values = env.model_dump(exclude={"home", "db_url"})
        return cls(home=home, db_url=env.db_url or f"sqlite:///{home / 'seedlab.db'}", **values)

    @property
    def db_url_shown(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        return _PASSWORD_IN_URL.sub(r"\1***@", self.db_url)

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    def resolve(self, stored_path: str) -> Path:
        """A path as stored in the DB (relative to home, so a moved or restored home keeps
        working) as a real path. Absolute paths pass through unchanged."""
        return self.home / stored_path

    def run_dir(self, run_id: int) -> Path:
        return self.runs_dir / str(run_id)

    def ensure_dirs(self) -> None:
        for path in (self.home, self.datasets_dir, self.runs_dir):
            path.mkdir(parents=True, exist_ok=True)

    def child_env(self) -> dict[str, str]:
        """Environment for subprocesses, so they find the same state."""
        env = dict(os.environ)
        env["SEEDLAB_HOME"] = str(self.home)
        env["SEEDLAB_DB_URL"] = self.db_url
        return env
