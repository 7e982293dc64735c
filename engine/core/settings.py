"""Where Seedlab keeps its state: SEEDLAB_HOME (default ./var) and SEEDLAB_DB_URL."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

# user:password@ in a database URL; the password is masked wherever the URL is shown.
_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)[^@]*@")
DEFAULT_MAX_UPLOAD_MB = 200
# Image ZIP caps: room for tens of thousands of images and a few hundred MB, not for a zip bomb.
DEFAULT_MAX_ZIP_MEMBERS = 100_000
DEFAULT_MAX_UNZIPPED_MB = 2048
DEFAULT_MAX_ZIP_RATIO = 100
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB
    max_zip_members: int = DEFAULT_MAX_ZIP_MEMBERS
    max_unzipped_mb: int = DEFAULT_MAX_UNZIPPED_MB
    max_zip_ratio: int = DEFAULT_MAX_ZIP_RATIO
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("SEEDLAB_HOME") or "var").expanduser().resolve()
        url = os.environ.get("SEEDLAB_DB_URL") or f"sqlite:///{home / 'seedlab.db'}"
        max_mb = int(os.environ.get("SEEDLAB_MAX_UPLOAD_MB") or DEFAULT_MAX_UPLOAD_MB)

        def env_int(name: str, default: int) -> int:
            return int(os.environ.get(name) or default)

        return cls(
            home=home,
            db_url=url,
            max_upload_mb=max_mb,
            max_zip_members=env_int("SEEDLAB_MAX_ZIP_MEMBERS", DEFAULT_MAX_ZIP_MEMBERS),
            max_unzipped_mb=env_int("SEEDLAB_MAX_UNZIPPED_MB", DEFAULT_MAX_UNZIPPED_MB),
            max_zip_ratio=env_int("SEEDLAB_MAX_ZIP_RATIO", DEFAULT_MAX_ZIP_RATIO),
            max_image_pixels=env_int("SEEDLAB_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS),
        )

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
