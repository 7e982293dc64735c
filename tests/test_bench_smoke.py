"""The metric benchmark still runs end to end (tiny sizes). It never asserts a speed: timings on a
shared CI machine would make the test flaky, and bench/RESULTS.md is where figures live."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(60)
def test_bench_metrics_quick_runs_and_reports_seedlab_rate() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "bench/bench_metrics.py", "--quick", "--keys", "2", "--steps", "200"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # A table row such as "| Seedlab append_metrics, batch 1000 | 400 | 78,477 | …".
    row = re.search(
        r"^\| Seedlab append_metrics, batch \d+ \| 400 \| ([\d,]+) \|", proc.stdout, re.MULTILINE
    )
    assert row is not None, proc.stdout
    assert int(row.group(1).replace(",", "")) > 0


@pytest.mark.timeout(180)
def test_bench_concurrency_quick_runs_and_reports_no_errors() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "bench/bench_concurrency.py", "--quick", "--no-mlflow"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = re.search(
        r"^\| Seedlab \| ([\d,]+) \| .* \| (\d+) \| [\d.]+ / [\d.]+ \| ([\d,]+) \| (\d+) \|$",
        proc.stdout,
        re.MULTILINE,
    )
    assert row is not None, proc.stdout
    written, write_errors, lists, read_errors = row.groups()
    assert written == "800" and write_errors == "0" and read_errors == "0"
    assert int(lists.replace(",", "")) >= 1


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("script", "expect"),
    [
        ("bench/bench_images.py", r"cached load is \d+× faster than decoding"),
        ("bench/bench_engine.py", r"Seedlab engine train\(\)"),
    ],
)
def test_other_benchmarks_quick_run_and_report(script: str, expect: str) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, script, "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(expect, proc.stdout), proc.stdout
