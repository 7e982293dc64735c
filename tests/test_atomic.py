"""engine/core/atomic.py: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from engine.core.atomic import atomic_path, write_bytes_atomic, write_json_atomic, write_text_atomic


def test_writes_replace_the_target_and_leave_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "report.json"  # the folder is created
    write_json_atomic(target, {"metrics": {"accuracy": 0.5}})
    assert json.loads(target.read_text()) == {"metrics": {"accuracy": 0.5}}
    write_text_atomic(target, "é")
    assert target.read_text(encoding="utf-8") == "é"
    write_bytes_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert os.listdir(target.parent) == ["report.json"]


def test_the_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    # What open() would give (0o666 less the umask), not mkstemp's owner-only 0o600.
    umask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.json", "{}")
    finally:
        os.umask(umask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644


def test_an_error_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "variants.json"
    write_json_atomic(target, {"variants": [1]})
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_text('{"variants": [1, 2')  # half written, then the writer fails
        raise RuntimeError("disk full")
    assert json.loads(target.read_text()) == {"variants": [1]}
    assert os.listdir(tmp_path) == ["variants.json"]
    # A value JSON cannot hold fails before any file is touched.
    with pytest.raises(TypeError):
        write_json_atomic(target, {"x": object()})
    assert json.loads(target.read_text()) == {"variants": [1]}
    assert os.listdir(tmp_path) == ["variants.json"]


def test_a_reader_never_sees_a_partial_file(tmp_path: Path) -> None:
    """A reader polling while a writer rewrites a large file sees only whole versions."""
    target = tmp_path / "report.json"
    versions = [{"n": i, "pad": "x" * 200_000} for i in range(30)]
    write_json_atomic(target, versions[0])
    seen: list[int] = []
    errors: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                seen.append(json.loads(target.read_text())["n"])
            except json.JSONDecodeError as exc:  # half a file
                errors.append(str(exc))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for version in versions[1:]:
            write_json_atomic(target, version)
    finally:
        done.set()
        reader.join()
    assert errors == [] and seen
    assert seen == sorted(seen)  # versions in order, each one whole
    assert json.loads(target.read_text())["n"] == 29
