"""The browser benchmark of Compare and the Run page still runs end to end at a tiny size
(3 runs × 30 steps), baseline included. It asserts that it reports, never a speed: figures
from a shared machine would be flaky; bench/RESULTS.md holds them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("playwright.sync_api")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Chromium"),
]

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_bench_compare_browser_tiny_runs_and_reports() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [
            sys.executable,
            "bench/bench_compare_browser.py",
            "--runs",
            "3",
            "--steps",
            "30",
            "--repeats",
            "1",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=290,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for page in ("Compare of 3 runs, reopened → curves drawn", "Run page, reopened → "):
        row = re.search(rf"^\| {re.escape(page)}.*? \| now \| ([\d.]+) \|", proc.stdout, re.M)
        assert row is not None, proc.stdout
        assert float(row.group(1)) > 0
    assert "uptime before" in proc.stdout
