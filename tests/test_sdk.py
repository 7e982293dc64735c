"""The client SDK (seedlab/) and its drains (engine/execution/sdk_drain.py, `seedlab sdk drain`).

Scripts run as plain subprocesses of the tests, as a user's would: local mode (the SDK starts
the server's drain itself) or engine-attached (SEEDLAB_SPOOL + SEEDLAB_RUN_ID, drained here).
In-process tests use attached mode with a drain in this process, the cheap way to check what
each line becomes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

import seedlab
from db import runs as run_store
from db.metrics import metric_series
from db.models import artifacts
from db.projects import get_project_by_name
from db.session import reading
from db.writes import metrics as metric_writes
from db.writes import runs as run_writes
from engine.core.errors import SeedlabError
from engine.core.run_files import log_path
from engine.core.settings import Settings
from engine.execution import sdk_drain
from tests.support.commands import ROOT, child_env, cli, seedlab_cmd
from tests.support.pages import open_page, plotly_figures, texts
from tests.support.waiting import wait_until

HEARTBEAT_TIMEOUT_S = 2.0


def _env(**extra: str) -> dict[str, str]:
    env = child_env()
    # The server command of this checkout (the `seedlab` on PATH may be another tree's).
    env["SEEDLAB_SERVER"] = " ".join(seedlab_cmd())
    env.update(extra)
    return env


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(body))
    return path


def _start(script: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(script)],
        env=env,
        cwd=script.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _first_line_id(proc: subprocess.Popen) -> int:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip().isdigit(), f"no run id printed: {line!r}; stderr: {proc.stderr.read()}"
    return int(line)


def _points(db: Engine, run_id: int, key: str) -> dict[int, float]:
    series = metric_series(db, run_id, key)
    return dict(zip(series.steps.tolist(), series.values.tolist(), strict=True))


@pytest.fixture
def attached(
    settings: Settings, db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[int, Path]]:
    """An SDK run the test drains itself: the environment the engine gives a recipe process."""
    run_id = run_writes.create_sdk_run(db, name="attached", config={})
    spool = tmp_path / "spool.jsonl"
    monkeypatch.setenv("SEEDLAB_RUN_ID", str(run_id))
    monkeypatch.setenv("SEEDLAB_SPOOL", str(spool))
    monkeypatch.setenv("SEEDLAB_RUN_DIR", str(settings.run_dir(run_id)))
    monkeypatch.setenv("SEEDLAB_STOP_FILE", str(settings.run_dir(run_id) / ".stop"))
    yield run_id, spool
    seedlab.finish("cancelled")  # a test that failed midway leaves no open run behind


# -- in this process: what each line becomes ---------------------------------------------------


def test_repeated_steps_keep_the_last_value_and_a_missing_step_is_the_next(
    settings: Settings, db: Engine, attached: tuple[int, Path]
):
    run_id, spool = attached
    with seedlab.init(name="steps") as run:
        assert run.id == run_id
        run.log({"loss": 1.0}, step=0)
        run.log({"loss": 0.9}, step=0)  # the same step again: the last value wins
        run.log({"loss": 0.5})  # no step: the key's next one (1)
        run.log({"loss": 0.4, "acc": float("nan")}, step=5)
        run.log({"loss": 0.3})  # next after 5
        run.summary({"loss": 0.1, "test_accuracy": 0.93})
    assert run.status == "completed"
    assert sdk_drain.drain_until_done(settings, db, run_id, spool) == "completed"

    assert _points(db, run_id, "loss") == {0: 0.9, 1: 0.5, 5: 0.4, 6: 0.3, 7: 0.1}
    assert _points(db, run_id, "test_accuracy") == {0: 0.93}
    record = run_store.get_run(db, run_id)
    assert record is not None and record.status == "completed"
    # The summary is each key's latest value: what the run table and Compare show.
    assert record.last("loss") == 0.1 and record.last("test_accuracy") == 0.93
    assert record.summary["loss"]["min"] == 0.1
    assert "acc" not in record.summary  # only NaN was logged: stored, left out of the summary


def test_artifacts_are_copied_and_recorded_with_their_checksum(
    settings: Settings, db: Engine, attached: tuple[int, Path], tmp_path: Path
):
    run_id, spool = attached
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights" * 1000)
    with seedlab.init() as run:
        assert run.log_artifact(model) == "model.pt"
        model.write_bytes(b"changed")  # the copy was made at log_artifact
        with pytest.raises(FileNotFoundError, match="no file"):
            run.log_artifact(tmp_path / "missing.pt")
    sdk_drain.drain_until_done(settings, db, run_id, spool)

    copied = settings.run_dir(run_id) / "artifacts" / "model.pt"
    assert copied.read_bytes() == b"weights" * 1000
    with reading(db) as conn:
        rows = conn.execute(select(artifacts).where(artifacts.c.run_id == run_id)).all()
    # The SDK also sends what ran (code.json, kind "code"): engine/services/provenance.py.
    assert sorted(r.kind for r in rows) == ["code", "sdk"]
    rows = [r for r in rows if r.kind == "sdk"]
    assert [(r.kind, r.path, r.bytes) for r in rows] == [("sdk", "artifacts/model.pt", 7000)]
    assert rows[0].sha256 == hashlib.sha256(b"weights" * 1000).hexdigest()


def test_a_cancel_reaches_should_stop_and_ends_the_run_cancelled(
    settings: Settings, db: Engine, attached: tuple[int, Path]
):
    run_id, spool = attached
    drain = sdk_drain.SpoolDrain(
        settings, db, run_id, spool, stop_file=settings.run_dir(run_id) / ".stop"
    )
    with seedlab.init() as run:
        run.log({"loss": 1.0})
        assert not run.should_stop()
        assert run_writes.request_cancel(db, run_id) == "running"

        def stopped() -> bool:
            drain.pump()  # the drain reads the cancel flag and leaves the stop file
            return run.should_stop()

        wait_until(stopped, timeout=10, what="should_stop() to see the cancel")
    assert drain_rest(drain) == "cancelled"
    record = run_store.get_run(db, run_id)
    assert record is not None and record.status == "cancelled"


def drain_rest(drain: sdk_drain.SpoolDrain) -> str | None:
    wait_until(drain.pump, timeout=10, what="the finish line to be drained")
    return drain.status


def test_values_that_are_not_numbers_are_refused_in_plain_words(attached: tuple[int, Path]):
    with seedlab.init() as run:
        with pytest.raises(TypeError, match="'note' is text"):
            run.log({"note": "hello"})
        with pytest.raises(TypeError, match="not a number"):
            run.log({"loss": [1.0]})
        run.log({"loss": 1})  # an int is a number
        with pytest.raises(ValueError, match="status must be one of"):
            run.finish("done")
    with pytest.raises(seedlab.SeedlabSDKError, match="already completed"):
        run.log({"loss": 1.0})
    with pytest.raises(seedlab.SeedlabSDKError, match="no run is open"):
        seedlab.log({"loss": 1.0})


def test_a_local_run_asks_for_a_dataset_seedlab_has(settings: Settings, db: Engine):
    init = {"type": "init", "project": "Vision", "name": "x", "config": {}, "dataset": "pets"}
    with pytest.raises(SeedlabError, match="No dataset named 'pets'.*Upload it first"):
        sdk_drain.start_local_run(settings, db, init)
    local = sdk_drain.start_local_run(settings, db, {**init, "dataset": None})
    record = run_store.get_run(db, local.run_id)
    assert record is not None
    assert (record.source, record.status, record.dataset_id) == ("sdk", "running", None)
    project = get_project_by_name(db, "Vision")  # created on first use
    assert project is not None and record.project_id == project.id
    assert local.checkpoint_dir.is_dir()


# -- scripts in their own process -----------------------------------------------------------------


def test_an_sdk_script_shows_up_live_on_the_run_page_and_in_runs_list_then_cancels(
    settings: Settings, db: Engine, tmp_path: Path
):
    script = _script(
        tmp_path,
        """
        import time
        import seedlab

        with seedlab.init(project="Vision", name="livesdk", config={"lr": 0.01}) as run:
            print(run.id, flush=True)
            step = 0
            while not run.should_stop():
                run.log({"train_loss": 1 / (step + 1), "val_accuracy": step / (step + 10)})
                step += 1
                time.sleep(0.01)
        print("ended", run.status, flush=True)
        """,
    )
    proc = _start(script, _env())
    try:
        run_id = _first_line_id(proc)
        wait_until(lambda: len(_points(db, run_id, "train_loss")) > 5, what="points to land")

        listed = cli("runs", "list")
        row = next(line for line in listed.stdout.splitlines() if line.split()[0] == str(run_id))
        assert row.split()[1:4] == ["running", "—", "livesdk"], row

        at = open_page("views/run_detail.py", run=str(run_id))
        assert "livesdk" in at.title[0].value
        assert "logged by the SDK" in texts(at.caption)
        assert "no dataset" in texts(at.caption)
        drawn = {trace.get("name") for fig in plotly_figures(at) for trace in fig["data"]}
        assert any("loss" in str(name).lower() for name in drawn), drawn
        assert not [b.label for b in at.button if b.label == "Clone"]

        assert cli("runs", "cancel", str(run_id)).returncode == 0
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "ended cancelled" in out
    record = run_store.get_run(db, run_id)
    assert record is not None and record.status == "cancelled"
    assert record.config == {"lr": 0.01}


def test_an_exception_fails_the_run_with_its_message_and_the_traceback_in_its_log(
    settings: Settings, db: Engine, tmp_path: Path
):
    script = _script(
        tmp_path,
        """
        import seedlab

        with seedlab.init(name="doomed") as run:
            print(run.id, flush=True)
            run.log({"train_loss": 2.0})
            raise ValueError("the learning rate is too high")
        """,
    )
    proc = _start(script, _env())
    run_id = _first_line_id(proc)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "ValueError: the learning rate is too high" in err  # the script fails as usual
    record = run_store.get_run(db, run_id)
    assert record is not None and record.status == "failed"
    assert record.error == "ValueError: the learning rate is too high"
    assert _points(db, run_id, "train_loss") == {0: 2.0}
    logged = log_path(settings, run_id).read_text()
    assert "Traceback (most recent call last)" in logged and 'raise ValueError("the' in logged


def test_a_killed_sdk_process_is_failed_by_its_drain_within_two_heartbeat_timeouts(
    settings: Settings, db: Engine, tmp_path: Path
):
    script = _script(
        tmp_path,
        """
        import time
        import seedlab

        run = seedlab.init(name="killed")
        print(run.id, flush=True)
        for step in range(10**9):
            run.log({"train_loss": 1 / (step + 1)})
            time.sleep(0.01)
        """,
    )
    proc = _start(script, _env(SEEDLAB_HEARTBEAT_TIMEOUT_S=str(HEARTBEAT_TIMEOUT_S)))
    run_id = _first_line_id(proc)
    wait_until(lambda: _points(db, run_id, "train_loss"), what="the first points")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    killed_at = time.monotonic()

    def failed() -> bool:
        record = run_store.get_run(db, run_id)
        return record is not None and record.status == "failed"

    wait_until(failed, timeout=2 * HEARTBEAT_TIMEOUT_S, what="the killed run to be failed")
    assert time.monotonic() - killed_at <= 2 * HEARTBEAT_TIMEOUT_S
    record = run_store.get_run(db, run_id)
    assert record is not None and "ended without finishing it" in (record.error or "")
    assert _points(db, run_id, "train_loss")  # what it logged before is kept


def test_a_silent_sdk_run_is_failed_by_recovery_and_never_requeued(
    settings: Settings, db: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Script and drain both gone (a machine lost): no one but recovery can settle the run.
    monkeypatch.setenv("SEEDLAB_HEARTBEAT_TIMEOUT_S", str(HEARTBEAT_TIMEOUT_S))
    run_id = run_writes.create_sdk_run(db, name="orphan", config={})
    spool = tmp_path / "spool.jsonl"
    # Even a resume checkpoint in its folder does not requeue an SDK run.
    settings.run_dir(run_id).mkdir(parents=True, exist_ok=True)
    (settings.run_dir(run_id) / "resume.pt").write_bytes(b"not a real checkpoint")
    script = _script(
        tmp_path,
        """
        import time
        import seedlab

        run = seedlab.init()
        print(run.id, flush=True)
        time.sleep(600)
        """,
    )
    env = _env(SEEDLAB_RUN_ID=str(run_id), SEEDLAB_SPOOL=str(spool))
    proc = _start(script, env)
    assert _first_line_id(proc) == run_id
    drain = sdk_drain.SpoolDrain(settings, db, run_id, spool)
    wait_until(lambda: drain.pump() or drain.lines_read >= 3, what="a few heartbeats")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    drain.pump()
    killed_at = time.monotonic()

    def failed() -> bool:
        cli("runs", "list")  # what readers do: settle runs silent for two heartbeat timeouts
        record = run_store.get_run(db, run_id)
        return record is not None and record.status != "running"

    wait_until(failed, timeout=4 * HEARTBEAT_TIMEOUT_S, what="recovery to settle the run")
    assert time.monotonic() - killed_at <= 2 * HEARTBEAT_TIMEOUT_S + 2  # + one CLI call
    record = run_store.get_run(db, run_id)
    assert record is not None
    assert (record.status, record.attempts) == ("failed", 0)
    assert "stopped sending heartbeats" in (record.error or "")


def test_code_without_a_with_block_still_ends_its_run_right(
    settings: Settings, db: Engine, tmp_path: Path
):
    # An uncaught exception fails the open run (sys.excepthook); a plain end completes it.
    outcomes = {}
    for name, tail in (("crashes", "raise KeyError('label')"), ("ends", "pass")):
        run_id = run_writes.create_sdk_run(db, name=name, config={})
        spool = tmp_path / f"{name}.jsonl"
        script = _script(
            tmp_path,
            f"""
            import seedlab

            seedlab.init()
            seedlab.log({{"loss": 1.0}})
            {tail}
            """,
        )
        env = _env(SEEDLAB_RUN_ID=str(run_id), SEEDLAB_SPOOL=str(spool))
        subprocess.run([sys.executable, str(script)], env=env, capture_output=True, timeout=60)
        outcomes[name] = sdk_drain.drain_until_done(settings, db, run_id, spool)
        assert _points(db, run_id, "loss") == {0: 1.0}
        if name == "crashes":
            record = run_store.get_run(db, run_id)
            assert record is not None and record.error == "KeyError: 'label'"
    assert outcomes == {"crashes": "failed", "ends": "completed"}


# -- pages with a run on no dataset --------------------------------------------------------------


def test_pages_show_sdk_runs_on_no_dataset(settings: Settings, db: Engine, demo_datasets):
    live = run_writes.create_sdk_run(db, name="sdk live", config={"lr": 0.1})
    now = time.time()
    run_writes.record_progress(db, live, [("reward", i, i / 10, now) for i in range(5)])
    done = run_writes.create_sdk_run(db, name="sdk done", config={})
    metric_writes.append_metrics(db, done, [("test_accuracy", 0, 0.9, now)])
    run_writes.finish_run(db, done, "completed")

    at = open_page("views/run_detail.py", run=str(live))
    (figure,) = plotly_figures(at)  # its one metric, and no empty loss chart
    assert "reward" in str(figure["data"])
    at = open_page("views/run_detail.py", run=str(done))
    assert "no dataset" in texts(at.caption)
    for page, query in (
        ("views/home.py", {}),
        ("views/runs.py", {}),
        ("views/compare.py", {"runs": f"{live},{done}"}),
    ):
        at = open_page(page, **query)
        assert not at.exception
    listed = cli("runs", "list")
    assert listed.returncode == 0 and "sdk done" in listed.stdout
    shown = cli("runs", "show", str(done))
    assert "dataset —" in shown.stdout and "source sdk" in shown.stdout


# -- the client alone, in a venv that holds nothing else -----------------------------------------


@pytest.mark.slow  # builds a wheel and a venv: ~10 s here
def test_the_client_alone_logs_a_run_from_a_fresh_venv(
    settings: Settings, db: Engine, tmp_path: Path
):
    shutil.copytree(ROOT / "sdk", tmp_path / "sdk", symlinks=True)
    shutil.copytree(
        ROOT / "seedlab", tmp_path / "seedlab", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    build = [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist)]
    subprocess.run([*build, str(tmp_path / "sdk")], check=True, capture_output=True)
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    install = [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-index"]
    subprocess.run([*install, "--no-deps", str(wheel)], check=True, capture_output=True)

    run_id = run_writes.create_sdk_run(db, name="from a venv", config={})
    spool = tmp_path / "spool.jsonl"
    script = _script(
        tmp_path,
        """
        import sys, time
        started = time.perf_counter()
        import seedlab
        import_s = time.perf_counter() - started
        heavy = {"torch", "streamlit", "ray", "sklearn", "sqlalchemy", "numpy", "pandas"}
        with seedlab.init(config={"lr": 0.1}) as run:
            for step in range(100):
                run.log({"train_loss": 1 / (step + 1)}, step=step)
            run.summary({"test_accuracy": 0.5})
        print(run.id, f"{import_s:.3f}", sorted(heavy & {m.split(".")[0] for m in sys.modules}))
        """,
    )
    # Outside the repository, without its PYTHONPATH (-I): only what the venv holds.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(SEEDLAB_RUN_ID=str(run_id), SEEDLAB_SPOOL=str(spool))
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-I", str(script)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    printed_id, import_s, heavy = result.stdout.split(maxsplit=2)
    assert int(printed_id) == run_id
    assert heavy.strip() == "[]"
    assert float(import_s) < 1.0, f"import seedlab took {import_s} s"

    assert sdk_drain.drain_until_done(settings, db, run_id, spool) == "completed"
    assert len(_points(db, run_id, "train_loss")) == 100
    record = run_store.get_run(db, run_id)
    assert record is not None and record.last("test_accuracy") == 0.5
