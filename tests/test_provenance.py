"""What ran (commit, diff, Python, packages, command, host, device) and the sys/… metrics, for
a built-in run trained for real: recorded by the runner, shown in the Run page's Code tab and
System section, and in `seedlab runs show --json`."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from db import artifacts as artifact_store
from db import metrics as metric_store
from engine.core.provenance import collect, read_code
from engine.execution.system_metrics import (
    CPU_PERCENT,
    GPU_MEM_MB,
    RSS_MB,
    SystemSampler,
    visible_gpu_indices,
)
from tests.support.commands import ROOT, cli
from tests.support.data import completed_run
from tests.support.pages import open_page, plotly_figures, texts, trace_values

T0 = 1_700_000_000.0


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=folder,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    _git(folder, "init", "-q")
    (folder / "train.py").write_text("lr = 0.1\n")
    _git(folder, "add", "train.py")
    _git(folder, "commit", "-q", "-m", "first")
    return folder


def test_collector_records_commit_diff_python_packages_command_and_host(checkout) -> None:
    clean = collect("cpu", folder=checkout, argv=["train.py", "--lr", "0.1"])
    assert clean["git"]["commit"] == _git(checkout, "rev-parse", "HEAD")
    assert clean["git"]["dirty"] is False and clean["git"]["diff"] == ""
    assert clean["python"]["version"] == platform.python_version()
    assert clean["python"]["executable"] == sys.executable
    assert clean["packages"]["SQLAlchemy"] == __import__("sqlalchemy").__version__
    assert clean["command"] == ["train.py", "--lr", "0.1"]
    assert clean["host"] == platform.node() and clean["device"] == "cpu"
    json.dumps(clean)  # stored as JSON as it is

    (checkout / "train.py").write_text("lr = 0.3\n")
    dirty = collect(folder=checkout / "train.py")  # a file: its folder's checkout
    assert dirty["git"]["dirty"] is True
    assert "-lr = 0.1" in dirty["git"]["diff"] and "+lr = 0.3" in dirty["git"]["diff"]
    assert dirty["git"]["diff_truncated"] is False

    capped = collect(folder=checkout, max_diff_chars=20)
    assert len(capped["git"]["diff"]) == 20 and capped["git"]["diff_truncated"] is True


def test_collector_outside_a_checkout_says_so_without_failing(tmp_path: Path) -> None:
    info = collect(folder=tmp_path)
    assert info["git"] == {}
    assert info["python"]["version"] == platform.python_version()


def test_visible_gpu_indices_follow_cuda_visible_devices() -> None:
    assert visible_gpu_indices({}) is None
    assert visible_gpu_indices({"CUDA_VISIBLE_DEVICES": "2,3"}) == [2, 3]
    assert visible_gpu_indices({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpu_indices({"CUDA_VISIBLE_DEVICES": "GPU-1a2b"}) == []


def test_sampler_counts_the_child_process_tree() -> None:
    """A recipe's script is a child of its runner: its memory and CPU count with the run's."""
    points: list[tuple[str, int, float, float]] = []
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "x = bytearray(300 * 2**20)\n"
            "print('ready', flush=True)\n"
            "end = time.time() + 20\n"
            "while time.time() < end: pass\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        own_mb = psutil.Process().memory_info().rss / 2**20
        origin = time.time() - 42
        sampler = SystemSampler(points.extend, origin=origin, interval_s=0.5, gpu=False).start()
        time.sleep(1.5)
        sampler.stop()
    finally:
        child.kill()
        child.wait()
    rss = [v for k, _s, v, _t in points if k == RSS_MB]
    cpu = [v for k, _s, v, _t in points if k == CPU_PERCENT]
    assert len(rss) >= 2 and len(cpu) == len(rss)
    assert max(rss) >= own_mb + 250  # the child's 300 MB bytearray
    assert max(cpu) > 20  # the child spins one core
    assert min(s for _k, s, _v, _t in points) >= 42  # step: seconds since the origin
    assert not any(k == GPU_MEM_MB for k, *_ in points)  # gpu=False: no GPU keys at all


def test_builtin_run_records_what_ran_and_system_metrics(settings, db, demo_datasets) -> None:
    run_id = completed_run(settings, db, "iris")

    code = read_code(settings, run_id)
    assert code is not None
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if head.returncode == 0:  # the tests run from a checkout: its commit is what ran
        assert code["git"]["commit"] == head.stdout.strip()
        assert isinstance(code["git"]["dirty"], bool)
    assert code["python"]["version"] == platform.python_version()
    assert "torch" in code["packages"]
    assert code["device"].startswith(("CPU", "cpu", "CUDA", "cuda"))
    assert [a.kind for a in artifact_store.list_artifacts(db, run_id)].count("code") == 1

    history = metric_store.metric_history(db, [run_id])
    sys_rows = history[history["key"].str.startswith("sys/")]
    assert {CPU_PERCENT, RSS_MB} <= set(sys_rows["key"])
    assert (sys_rows[sys_rows["key"] == RSS_MB]["value"] > 50).all()  # torch alone is more

    # `runs show --json`: the same record under "code"; the text form names the commit.
    shown = cli("runs", "show", str(run_id), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["code"] == code
    assert "Python " + platform.python_version() in cli("runs", "show", str(run_id)).stdout

    # The Run page: a Code tab with the commit and Python, a System section with the figures.
    at = open_page("views/run_detail.py", run=str(run_id), tab="Code")
    assert [t.label for t in at.tabs][:4] == ["Curves", "Evaluation", "Config", "Code"]
    code_tab = at.tabs[3]
    table = code_tab.table[0].value
    assert table.loc["Python", "Value"].startswith(platform.python_version())
    assert table.loc["Host", "Value"] == code["host"]
    if code["git"]:
        assert table.loc["Commit", "Value"].startswith(code["git"]["commit"])
    at = open_page("views/run_detail.py", run=str(run_id))  # System: under the curves
    assert "**System**" in texts(at.markdown)
    names = {t.get("name") for f in plotly_figures(at) for t in f["data"]}
    assert {"CPU % (100 = one core)", "Resident memory (MB)"} <= names
    assert not at.exception and not at.error


def test_code_tab_of_a_run_that_recorded_nothing(settings, db, demo_datasets) -> None:
    from engine.services.launch import submit_run

    run_id = submit_run(db, "iris", {}, name="waiting")
    at = open_page("views/run_detail.py", run=str(run_id), tab="Code")
    assert "Nothing recorded about the code of this run" in texts(at.tabs[3].info)
    assert json.loads(cli("runs", "show", str(run_id), "--json").stdout)["code"] is None


def test_compare_keeps_sys_metrics_out_of_the_model_metrics(settings, db, demo_datasets) -> None:
    """sys/… points are curves one may pick in Compare, never a column of its metrics table
    nor its default curve."""
    from db.writes import metrics as metric_writes
    from engine.services.launch import submit_run

    ids = [submit_run(db, "iris", {}, name=f"r{i}") for i in range(2)]
    for i, run_id in enumerate(ids):
        metric_writes.append_metrics(
            db,
            run_id,
            [
                ("val_loss", 1, 0.5 + i, T0),
                ("val_loss", 2, 0.4 + i, T0 + 1),
                (CPU_PERCENT, 0, 90.0, T0),
                (RSS_MB, 0, 800.0, T0),
            ],
        )
    at = open_page("views/compare.py", runs=",".join(map(str, ids)))
    picker = at.selectbox(key="cmp_key")
    assert picker.value == "val_loss"
    assert list(picker.options)[-2:] == [CPU_PERCENT, RSS_MB]  # after the model's metrics
    picker.set_value(RSS_MB).run()
    assert [trace_values(t["y"]) for t in plotly_figures(at)[0]["data"]] == [[800.0], [800.0]]
    # Only the open tab is drawn (?tab=…): the metrics table is on its own tab.
    at = open_page("views/compare.py", runs=",".join(map(str, ids)), tab="Metrics")
    table = next(d.value for d in at.dataframe if "val_loss" in d.value.columns)
    assert not [c for c in table.columns if str(c).startswith("sys/")]


def test_no_gpu_figures_without_an_nvidia_driver() -> None:
    """nvidia-ml-py is installed everywhere; without a driver the GPU keys are skipped quietly."""
    from engine.execution.system_metrics import GPU_UTIL_PERCENT, _Gpus

    gpus = _Gpus(None)
    try:
        if gpus.handles:
            pytest.skip("this machine has an NVIDIA driver: the GPU figures are recorded")
        assert gpus.sample({1}) == {}
        points: list = []
        sampler = SystemSampler(points.extend, origin=time.time(), gpu=True, interval_s=60)
        sampler.stop()  # never started: one sample, the last
        assert {k for k, *_ in points} == {CPU_PERCENT, RSS_MB}
        assert GPU_UTIL_PERCENT not in {k for k, *_ in points}
    finally:
        gpus.close()
