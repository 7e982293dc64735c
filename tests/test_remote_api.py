"""Remote logging: the SDK with SEEDLAB_URL + SEEDLAB_TOKEN logs through the HTTP API that
`seedlab dashboard` serves (dashboard/remote_api.py), with a real server, a real database and
the SDK in a plain subprocess. Tokens are per user; the API allows what the pages allow."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from db import api_tokens as token_store
from db import artifacts as artifact_store
from db import runs as run_store
from db.metrics import metric_series
from db.models import api_tokens
from db.session import get_db, reading
from engine.core.settings import Settings
from engine.services import accounts, remote_runs
from engine.services import api_tokens as tokens
from engine.services import runs as run_service
from engine.services.permissions import Actor, PermissionDenied, cli_actor
from tests.support.commands import ROOT, child_env, free_port, seedlab_cmd
from tests.support.pages import open_page

# The tests with a server are `slow`: a server start imports Streamlit and the pages (~5-10 s).


def _stop(proc: subprocess.Popen) -> None:
    """Ctrl-C to the server's process group, as a terminal would; a kill if it hangs."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _serve(home: Path, port: int) -> subprocess.Popen:
    """`seedlab dashboard` for `home` on `port`, once it answers."""
    env = child_env()
    env["SEEDLAB_HOME"] = str(home)
    env["SEEDLAB_MAX_ARTIFACT_MB"] = "1"  # the artifacts below are a few KB; one test sends more
    env.pop("SEEDLAB_DB_URL", None)
    proc = subprocess.Popen(
        seedlab_cmd("dashboard", "--port", str(port)),
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/api/v1/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    _stop(proc)
    raise AssertionError(
        f"the server did not come up:\n{proc.stdout.read() if proc.stdout else ''}"
    )


def _settings(home: Path) -> Settings:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEEDLAB_HOME", str(home))
        patch.delenv("SEEDLAB_DB_URL", raising=False)
        return Settings.from_env()


class Site:
    def __init__(self, home: Path, port: int, proc: subprocess.Popen) -> None:
        self.home, self.port, self.proc = home, port, proc
        self.url = f"http://localhost:{port}"
        self.settings = _settings(home)
        self.db: Engine = get_db(self.settings)
        for name, role in (("ana", "member"), ("bob", "member"), ("vic", "viewer")):
            accounts.add_user(self.db, cli_actor(), name, "password-123", role)
        self.token = {
            n: tokens.create_token(self.db, cli_actor(), n) for n in ("ana", "bob", "vic")
        }


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("remote") / "home"
    port = free_port()
    proc = _serve(home, port)
    try:
        yield Site(home, port, proc)
    finally:
        _stop(proc)


def _call(
    url: str, method: str = "GET", body: dict | None = None, token: str | None = None
) -> tuple[int, dict, dict]:
    """Status, JSON answer and headers, for error statuses too."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), dict(exc.headers)


def _sdk(
    site_url: str, token: str, spool_dir: Path, script: str, upload_timeout_s: float = 60
) -> subprocess.Popen:
    """A plain Python process that imports the SDK (no server settings in its environment)."""
    env = child_env()
    for name in ("SEEDLAB_HOME", "SEEDLAB_DB_URL", "SEEDLAB_SPOOL", "SEEDLAB_RUN_ID"):
        env.pop(name, None)
    env.update(
        SEEDLAB_URL=site_url,
        SEEDLAB_TOKEN=token,
        SEEDLAB_SPOOL_DIR=str(spool_dir),
        SEEDLAB_CONNECT_TIMEOUT_S="5",
        SEEDLAB_UPLOAD_TIMEOUT_S=str(upload_timeout_s),
    )
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        env=env,
        cwd=spool_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the SDK process ended early:\n{proc.communicate()}")
        assert time.monotonic() < deadline, f"no {path.name} after {timeout_s} s"
        time.sleep(0.05)


@pytest.mark.slow
def test_tokens_are_per_user_stored_as_hashes_and_revocable(site: Site):
    out = subprocess.run(
        seedlab_cmd("users", "token", "bob", "--label", "laptop"),
        env={**child_env(), "SEEDLAB_HOME": str(site.home)},
        capture_output=True,
        text=True,
        check=True,
    )
    token = out.stdout.strip()
    assert token.startswith("sl_") and len(token) > 40
    assert "shown only now" in out.stderr
    with reading(site.db) as conn:
        stored = [
            tuple(r) for r in conn.execute(select(api_tokens.c.token_hash, api_tokens.c.prefix))
        ]
    assert all(token not in h and h != token for h, _ in stored)  # only a hash is kept
    assert (tokens.hash_token(token), token[:10]) in stored

    assert _call(f"{site.url}/api/v1/me", token=token)[:2] == (
        200,
        {"name": "bob", "role": "member"},
    )
    mine = tokens.list_tokens(site.db, tokens.token_actor(site.db, token), None)
    assert {t.user for t in mine} == {"bob"} and "laptop" in {t.label for t in mine}
    laptop = next(t for t in mine if t.label == "laptop")
    # Another member may not revoke it; its user may.
    with pytest.raises(Exception, match="cannot manage users"):
        tokens.revoke_token(site.db, tokens.token_actor(site.db, site.token["ana"]), laptop.id)
    tokens.revoke_token(site.db, tokens.token_actor(site.db, token), laptop.id)
    status, answer, _ = _call(f"{site.url}/api/v1/me", token=token)
    assert status == 401 and "not valid" in answer["error"]
    assert token_store.get_token(site.db, laptop.id) is None


@pytest.mark.slow
def test_refused_without_a_token_and_for_a_viewer(site: Site):
    init = {"type": "init", "project": None, "name": "x", "config": {}, "dataset": None}
    body = {"key": "k" * 32, "init": init}

    status, answer, headers = _call(f"{site.url}/api/v1/runs", "POST", body)
    assert status == 401 and "SEEDLAB_TOKEN" in answer["error"]
    assert headers.get("www-authenticate", headers.get("WWW-Authenticate", "")).startswith("Bearer")
    assert _call(f"{site.url}/api/v1/runs", "POST", body, token="sl_forged")[0] == 401

    status, answer, _ = _call(f"{site.url}/api/v1/runs", "POST", body, token=site.token["vic"])
    assert status == 403
    assert answer["error"].startswith("Your role (viewer) cannot launch runs")
    assert "x" not in {r.name for r in run_store.list_runs(site.db, limit=None)}

    # A member's run takes lines from its owner only (an admin may too; another member not).
    status, made, _ = _call(f"{site.url}/api/v1/runs", "POST", body, token=site.token["ana"])
    assert status == 201 and made["received"] == 1
    again = _call(f"{site.url}/api/v1/runs", "POST", body, token=site.token["ana"])
    assert again[:2] == (201, made)  # the same key: the same run, not a second one
    lines = {"start": 1, "lines": [{"type": "metrics", "step": 0, "values": {"x": 1.0}}]}
    lines_url = f"{site.url}/api/v1/runs/{made['id']}/lines"
    status, answer, _ = _call(lines_url, "POST", lines, token=site.token["bob"])
    assert status == 403 and "belongs to ana" in answer["error"]
    assert _call(lines_url, "POST", lines, token=site.token["vic"])[0] == 403
    assert _call(lines_url, "POST", lines)[0] == 401
    # Its owner: applied once, however often sent; a batch past the count is told where to start.
    for _ in range(2):
        assert _call(lines_url, "POST", lines, token=site.token["ana"])[:2] == (
            200,
            {"received": 2, "stop": False},
        )
    status, answer, _ = _call(lines_url, "POST", {**lines, "start": 5}, token=site.token["ana"])
    assert status == 409 and answer["received"] == 2
    assert len(metric_series(site.db, made["id"], "x")) == 1

    # An artifact over SEEDLAB_MAX_ARTIFACT_MB is refused, declared or streamed without a length,
    # and nothing of it stays.
    upload_url = f"{site.url}/api/v1/runs/{made['id']}/artifacts/big.bin"
    auth = {"Authorization": f"Bearer {site.token['ana']}"}
    big = b"x" * (1024 * 1024 + 1)
    for body in (big, iter([big[:600_000], big[600_000:]])):  # an iterator: chunked, no length
        request = urllib.request.Request(upload_url, data=body, method="PUT", headers=auth)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=20)
        assert refused.value.code == 413
        assert "SEEDLAB_MAX_ARTIFACT_MB" in json.loads(refused.value.read())["error"]
    assert not list(site.settings.run_dir(made["id"]).rglob("*big.bin*"))

    # The SDK says what is wrong before training starts.
    sdk = _sdk(site.url, site.token["vic"], site.home.parent, "import seedlab; seedlab.init()")
    _, err = sdk.communicate(timeout=120)
    assert sdk.returncode != 0 and "refused to create the run" in err and "viewer" in err


SCRIPT = """
    import time
    from pathlib import Path
    import seedlab

    Path("model.pt").write_bytes(b"weights" * 1000)
    Path("plots").mkdir()
    Path("plots/loss.svg").write_text("<svg/>")
    Path("plots/acc.svg").write_text("<svg></svg>")
    with seedlab.init(project="Vision", name="remote-try", config={"lr": 0.001}) as run:
        for step in range(50):
            run.log({"train_loss": 1.0 / (step + 1), "val_accuracy": step / 50}, step=step)
        run.log({"lr": 0.5})
        run.log({"lr": 0.25})
        run.log_artifact("model.pt")
        run.log_artifact("plots")
        run.summary({"test_accuracy": 0.93})
        Path("logged").write_text(str(run.id))
        deadline = time.monotonic() + 90
        while not run.should_stop() and time.monotonic() < deadline:
            time.sleep(0.05)
    print(run.id, run.status)
"""


@pytest.mark.slow
def test_a_share_links_token_is_not_an_api_token(site: Site):
    """A read-only share link opens its one view in the pages; the API refuses its token like
    any unknown one (401), for reads and writes alike."""
    from engine.services import share_links as sharing

    init = {"type": "init", "project": None, "name": "shared", "config": {}, "dataset": None}
    status, made, _ = _call(
        f"{site.url}/api/v1/runs", "POST", {"key": "s" * 32, "init": init}, site.token["ana"]
    )
    assert status == 201
    link = sharing.create(site.db, Actor("ana", "member"), "run", made["id"], "1d")
    lines = {"start": 1, "lines": [{"type": "metrics", "step": 0, "values": {"x": 1.0}}]}
    for method, path, body in (
        ("GET", "/api/v1/me", None),
        ("GET", f"/api/v1/runs/{made['id']}/stop", None),
        ("POST", f"/api/v1/runs/{made['id']}/lines", lines),
        ("POST", "/api/v1/runs", {"key": "t" * 32, "init": init}),
    ):
        status, answer, _ = _call(f"{site.url}{path}", method, body, token=link.token)
        assert status == 401 and "not valid" in answer["error"], (path, answer)
    assert metric_series(site.db, made["id"], "x").steps.size == 0


@pytest.mark.slow
def test_remote_logging_shows_the_run_its_metrics_and_a_cancel_stops_it(site: Site, tmp_path: Path):
    sdk = _sdk(site.url, site.token["ana"], tmp_path, SCRIPT)
    _wait_for(tmp_path / "logged", sdk, 120)
    run_id = int((tmp_path / "logged").read_text())
    deadline = time.monotonic() + 30
    while len(metric_series(site.db, run_id, "train_loss")) < 50:
        assert time.monotonic() < deadline, "the metrics did not arrive"
        time.sleep(0.1)
    run = run_store.get_run(site.db, run_id)
    assert (run.status, run.source, run.owner, run.name) == ("running", "sdk", "ana", "remote-try")
    assert run.config == {"lr": 0.001} and run.dataset_id is None

    # The Cancel button's service, as the page calls it: the SDK sees it and ends `cancelled`.
    run_service.cancel_run(site.db, cli_actor(), run_id)
    out, err = sdk.communicate(timeout=60)
    assert sdk.returncode == 0, err
    assert out.split() == [str(run_id), "cancelled"]

    run = run_store.get_run(site.db, run_id)
    assert run.status == "cancelled"
    assert list(metric_series(site.db, run_id, "train_loss").steps) == list(range(50))
    assert run.summary["test_accuracy"]["last"] == pytest.approx(0.93)
    # No step given: the next step of that key, as in every mode.
    assert list(metric_series(site.db, run_id, "lr").values) == [0.5, 0.25]
    files = artifact_store.list_artifacts(site.db, run_id)
    assert [a.path for a in files if a.kind == "code"] == ["code.json"]  # what ran, from init
    assert sorted((a.kind, a.path, a.bytes) for a in files if a.kind != "code") == [
        ("sdk", "artifacts/model.pt", 7000),
        ("sdk", "artifacts/plots/acc.svg", 11),
        ("sdk", "artifacts/plots/loss.svg", 6),
    ]
    assert (
        site.settings.run_dir(run_id) / "artifacts" / "model.pt"
    ).read_bytes() == b"weights" * 1000
    assert not any(tmp_path.glob("*/spool.jsonl"))  # everything sent: the local folder is gone

    shown = subprocess.run(
        seedlab_cmd("runs", "list"),
        env={**child_env(), "SEEDLAB_HOME": str(site.home)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "remote-try" in shown


REPLAY_SCRIPT = """
    import time
    from pathlib import Path
    import seedlab

    def wait_for(name):
        while not Path(name).exists():
            time.sleep(0.05)

    with seedlab.init(name="through-a-restart") as run:
        Path("started").write_text(str(run.id))
        for step in range(0, 10):
            run.log({"loss": float(step)}, step=step)
        wait_for("server-down")
        for step in range(10, 30):
            run.log({"loss": float(step)}, step=step)
            time.sleep(0.02)
        time.sleep(1.0)  # a few failed tries while the server is away
        Path("logged-while-down").write_text("")
        wait_for("server-up")
        for step in range(30, 40):
            run.log({"loss": float(step)}, step=step)
        run.summary({"test_loss": 0.5})
    print(run.id, run.status)
"""


@pytest.mark.slow
def test_the_sdk_keeps_logging_while_the_server_is_down_and_catches_up(tmp_path: Path):
    home, port = tmp_path / "home", free_port()
    proc = _serve(home, port)
    try:
        site = Site(home, port, proc)
        sdk = _sdk(site.url, site.token["ana"], tmp_path, REPLAY_SCRIPT)
        _wait_for(tmp_path / "started", sdk, 120)
        run_id = int((tmp_path / "started").read_text())
        deadline = time.monotonic() + 30
        while len(metric_series(site.db, run_id, "loss")) < 10:
            assert time.monotonic() < deadline, "the first steps did not arrive"
            time.sleep(0.1)

        _stop(proc)  # the dashboard restarts
        (tmp_path / "server-down").write_text("")
        _wait_for(tmp_path / "logged-while-down", sdk, 60)
        assert sdk.poll() is None  # training goes on
        assert len(metric_series(site.db, run_id, "loss")) == 10
        spools = list(tmp_path.glob("*/spool.jsonl"))
        assert len(spools) == 1 and b'"step": 29' in spools[0].read_bytes()  # kept on disk

        proc = _serve(home, port)
        (tmp_path / "server-up").write_text("")
        out, err = sdk.communicate(timeout=120)
        assert sdk.returncode == 0, err
        assert out.split() == [str(run_id), "completed"]
        assert "does not answer" in err and "caught up" in err
    finally:
        _stop(proc)

    run = run_store.get_run(site.db, run_id)
    assert run.status == "completed"
    series = metric_series(site.db, run_id, "loss")
    assert list(series.steps) == list(range(40))  # every step once, in order
    assert list(series.values) == [float(s) for s in range(40)]
    assert run.summary["test_loss"]["last"] == 0.5
    assert not spools[0].exists()


def test_tokens_are_made_seen_and_revoked_on_the_page(settings, db, monkeypatch):
    # Localhost (access control off): the local admin, who manages anyone's tokens.
    monkeypatch.delenv("SEEDLAB_AUTH", raising=False)
    for name in ("ana", "bob"):
        accounts.add_user(db, cli_actor(), name, "correct horse battery", "member")
    tokens.create_token(db, cli_actor(), "bob", "bob's box")

    at = open_page("views/tokens.py")
    assert at.title[0].value == "API tokens"
    assert at.selectbox[0].options == ["ana", "bob"] and not at.selectbox[0].disabled
    at.selectbox[0].select("ana")
    at.text_input[0].input("gpu-box")
    next(b for b in at.button if b.label == "Make token").click()
    at.run()
    assert not at.exception and not at.error
    token = at.code[0].value
    assert tokens.token_actor(db, token) == Actor("ana", "member")
    shown = at.dataframe[0].value
    assert sorted(shown["user"]) == ["ana", "bob"]
    assert token not in shown.to_string()  # only its first characters

    ana_token = next(t.id for t in token_store.list_tokens(db, "ana"))
    at.selectbox[1].select(ana_token)
    next(b for b in at.button if b.label == "Revoke").click()
    at.run()
    assert not at.exception and not at.error
    assert tokens.token_actor(db, token) is None
    assert [t.user for t in token_store.list_tokens(db)] == ["bob"]

    # A member sees and manages only their own.
    ana = Actor("ana", "member")
    tokens.create_token(db, ana, "ana")
    assert [t.user for t in tokens.list_tokens(db, ana, None)] == ["ana"]
    with pytest.raises(PermissionDenied, match="cannot manage users"):
        tokens.create_token(db, ana, "bob")
    # Removing a user ends their tokens.
    bobs = tokens.create_token(db, cli_actor(), "bob")
    accounts.remove_user(db, cli_actor(), "bob")
    assert tokens.token_actor(db, bobs) is None
    assert {t.user for t in token_store.list_tokens(db)} == {"ana"}


def test_the_api_services_apply_each_line_once_whatever_is_sent_again(settings, db):
    """What the routes call, without a server: a create and a batch sent twice count once."""
    accounts.add_user(db, cli_actor(), "ana", "password-123", "member")
    accounts.add_user(db, cli_actor(), "vic", "password-123", "viewer")
    ana, vic = Actor("ana", "member"), Actor("vic", "viewer")
    init = {"type": "init", "project": "Vision", "name": "n", "config": {"lr": 1}, "dataset": None}
    run_id, received = remote_runs.create_run(settings, db, ana, "key-0001", init)
    assert (run_id, received) == (remote_runs.create_run(settings, db, ana, "key-0001", init))
    with pytest.raises(PermissionDenied, match="viewer"):
        remote_runs.create_run(settings, db, vic, "key-0002", init)
    with pytest.raises(remote_runs.BadRequest, match="No dataset named 'pets'"):
        remote_runs.create_run(settings, db, ana, "key-0003", {**init, "dataset": "pets"})

    batch = [
        {"type": "metrics", "step": None, "values": {"loss": 3.0}, "time": 1.0},
        {"type": "metrics", "step": None, "values": {"loss": 2.0}, "time": 2.0},
        {"type": "heartbeat", "time": 2.0},
        "not a line",
    ]
    assert remote_runs.append_lines(settings, db, ana, run_id, 1, batch) == (5, False)
    assert remote_runs.append_lines(settings, db, ana, run_id, 1, batch) == (5, False)
    # Overlapping the applied lines: only the new ones count.
    more = [
        *batch[2:],
        {"type": "metrics", "step": None, "values": {"loss": 1.0}, "time": 3.0},
        {"type": "summary", "values": {"test_loss": 0.5}},
    ]
    assert remote_runs.append_lines(settings, db, ana, run_id, 3, more) == (7, False)
    with pytest.raises(remote_runs.StreamGap) as gap:
        remote_runs.append_lines(settings, db, ana, run_id, 9, batch)
    assert gap.value.received == 7
    series = metric_series(db, run_id, "loss")
    assert list(series.steps) == [0, 1, 2] and list(series.values) == [3.0, 2.0, 1.0]

    run_service.cancel_run(db, cli_actor(), run_id)
    finish = [{"type": "finish", "status": "cancelled", "error": None, "traceback": None}]
    assert remote_runs.append_lines(settings, db, ana, run_id, 7, finish) == (8, True)
    run = run_store.get_run(db, run_id)
    assert (run.status, run.source, run.owner) == ("cancelled", "sdk", "ana")
    assert run.summary["test_loss"]["last"] == 0.5
    with pytest.raises(remote_runs.BadRequest, match="not a file name"):
        remote_runs.artifact_target(settings, db, ana, run_id, "../escape")
