"""Where the SDK's lines go: a sink takes encoded JSON lines from the writer thread.

The writer thread (seedlab/_run.py) batches what the training thread logs, encodes it as the
SDK protocol's JSON lines and hands each batch to one sink:
- `SpoolSink`: appends them to a spool file that a drain moves into the database (the engine's
  runner for an engine-attached run; `seedlab sdk drain` for a local run);
- other sinks (the HTTP uploader of remote logging) implement the same three methods.
"""

from __future__ import annotations

import os
from pathlib import Path


class Sink:
    """What the writer thread needs of a destination. `write` is only ever called from the
    writer thread; `close` once, after the last `write`."""

    def write(self, lines: list[str]) -> None:
        """Take a batch of encoded lines (each without its newline), in order."""
        raise NotImplementedError

    def close(self) -> None:
        """Everything written is handed over (for a file: on disk, where a drain reads it)."""


class SpoolSink(Sink):
    """Appends lines to a spool file, one `write` system call per batch, so a drain reading it
    meanwhile sees whole lines and at worst one unfinished last line (which it leaves for later).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered, O_APPEND: each batch goes to the end in one write, visible to the drain.
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:  # a write to a regular file may be short (a full disk): finish it or raise
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
