"""Files that another process reads, written so that it sees the old file or the new one, never
half of one: report.json, exports.json, variants.json, the model and resume checkpoints, the Ray
address file, a bundle or export handed out.

Each writer writes a temp file in the target's own folder (os.replace is one step only within a
file system), flushes it to disk (after a power cut the rename must not point at an empty file),
then renames it over the target. On any error the temp file is removed and the target is left
as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); Windows cannot open a folder, and needs not."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (e.g. certain network mounts) refuse a folder fsync
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temp path beside `path` for writers that need a file name (torch.save, an exporter,
    a zip); when the block ends without error the file is synced and replaces `path`."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    # Created as open() would (0o666 less the umask): mkstemp's 0o600 would hide the file from
    # a dashboard that runs as another user of the group.
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield tmp
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)  # gone after os.replace; left only by an error
    _fsync_dir(target.parent)


def write_bytes_atomic(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` in one step for every reader."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: Path | str, text: str, encoding: str = "utf-8") -> None:
    """Write `text` to `path` in one step for every reader."""
    write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: Path | str, value: Any, *, indent: int | None = 2) -> None:  # noqa: ANN401
    """Write `value` as JSON to `path` in one step for every reader (serialized first, so a value
    JSON cannot hold fails before any file is touched)."""
    write_text_atomic(path, json.dumps(value, indent=indent))
