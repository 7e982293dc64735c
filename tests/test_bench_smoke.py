"""The metric benchmark still runs end to end (tiny sizes). It never asserts a speed: timings on a
shared CI machine would make the test flaky, and bench/RESULTS.md is where figures live."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Each benchmark script runs as its own program (tiny sizes).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """Run a bench script from the repository root; it must exit 0."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.timeout(60)
def test_bench_metrics_quick_runs_and_reports_seedlab_rate() -> None:
    proc = run_bench(
        "bench/bench_metrics.py", "--quick", "--keys", "2", "--steps", "200", timeout=50
    )
    # A table row such as "| Seedlab append_metrics, batch 1000 | 400 | 78,477 | …".
    row = re.search(
        r"^\| Seedlab append_metrics, batch \d+ \| 400 \| ([\d,]+) \|", proc.stdout, re.MULTILINE
    )
    assert row is not None, proc.stdout
    assert int(row.group(1).replace(",", "")) > 0


@pytest.mark.timeout(180)
def test_bench_concurrency_quick_runs_and_reports_no_errors() -> None:
    proc = run_bench("bench/bench_concurrency.py", "--quick", "--no-mlflow", timeout=170)
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
        ("bench/bench_remote.py", r"\| SDK over HTTP, until all are in the database \| 400 \|"),
        ("bench/bench_images.py", r"cached load is \d+× faster than decoding"),
        ("bench/bench_engine.py", r"Seedlab engine train\(\)(.|\n)*cancel → cancelled .*: median"),
        ("bench/bench_login.py", r"Answers of the three refusals: one and the same sentence"),
        ("bench/bench_serving.py", r"\| iris \(rows\) \| 100 \| [\d.]+ \|"),
        (
            "bench/bench_sdk.py",
            r"\| Seedlab SDK run\.log, 10 key\(s\) a call, step=s \| 2,000 \| [\d,]+ \|",
        ),
    ],
)
def test_other_benchmarks_quick_run_and_report(script: str, expect: str) -> None:
    proc = run_bench(script, "--quick", timeout=230)
    assert re.search(expect, proc.stdout), proc.stdout


@pytest.mark.timeout(120)
def test_bench_images_store_section_compares_pack_and_files() -> None:
    proc = run_bench("bench/bench_images.py", "--store-only", "--store-images", "300", timeout=110)
    assert re.search(r"pack \(now\): [\d.]+ MB on disk in 3 files", proc.stdout), proc.stdout
    assert re.search(r"random-access reads .* \([\d.]+× files\)", proc.stdout), proc.stdout


@pytest.mark.timeout(120)
def test_bench_versions_measures_a_table_and_an_image_set() -> None:
    proc = run_bench(
        "bench/bench_versions.py", "--rows", "2000", "--edits", "2", "--images", "300", timeout=110
    )
    assert re.search(r"worst cost of one edit: [\d,]+ bytes .*limit 64 KB: met", proc.stdout)
    assert re.search(r"image set: 300 images .* cost [\d,]+–[\d,]+ bytes", proc.stdout)


@pytest.mark.timeout(420)
def test_bench_quality_quick_compares_the_default_run_with_baselines() -> None:
    proc = run_bench("bench/bench_quality.py", "--quick", timeout=400)
    # A row such as "| iris | scikit-learn load_iris | accuracy | 106/22/22 | 0.955 ± 0.000 |
    # 0.955 ± 0.000 (logistic regression) | +0.000 | yes | – | auto → mlp | 5.1 |".
    for name in ("iris", "wine", "tips_day"):
        row = re.search(
            rf"^\| {name} \| [^|]+ \| accuracy \| \d+/\d+/\d+ \| ([01]\.\d{{3}}) ± 0\.000 "
            r"\| ([01]\.\d{3}) ± 0\.000 \([a-z ]+\) \| [+-]\d\.\d{3} \| (yes|\*\*no\*\*)",
            proc.stdout,
            re.MULTILINE,
        )
        assert row is not None, proc.stdout
        assert 0 < float(row.group(1)) <= 1 and 0 < float(row.group(2)) <= 1
    # The imbalanced set also reports macro-F1 for Seedlab and the best baseline.
    assert re.search(
        r"^\| tips_day \|.*\| [01]\.\d{3} ± 0\.000 / [01]\.\d{3} \(", proc.stdout, re.M
    )


@pytest.mark.timeout(120)
def test_bench_quality_skips_a_model_family_it_does_not_know() -> None:
    proc = run_bench(
        "bench/bench_quality.py", "--datasets", "iris", "--model", "no_such_family", timeout=110
    )
    assert "iris: skipped, not run: model must be auto or one of" in proc.stdout, proc.stdout
