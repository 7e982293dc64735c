"""The scale benchmark still runs end to end at a tiny size. It asserts that it reports, never a
speed (figures from a shared CI machine would be flaky; bench/RESULTS.md holds them)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# The benchmark script runs as its own program (tiny sizes).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(120)
def test_bench_scale_quick_runs_and_reports() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "bench/bench_scale.py", "--quick", "--sizes", "60", "--no-mlflow"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = re.search(r"^\| 60 \| list page of 50: filter .*\| ([\d,.]+) \|", proc.stdout, re.M)
    assert row is not None, proc.stdout
    assert float(row.group(1).replace(",", "")) > 0
    assert "Runs page rendered by AppTest" in proc.stdout
