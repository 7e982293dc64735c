"""Serving a model over HTTP: a real small model, registered and in production, answered by a
real `seedlab models serve` process on a free port (its rate limit set to 3 a minute), the
token, the refusals, the request log, a promotion switching the answers, and the Models page's
switch."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from db import serving as serving_store
from db.migrate import upgrade_to_head
from db.session import get_db
from db.writes import registry as registry_writes
from db.writes import runs as run_writes
from db.writes import serving as serving_writes
from engine.core.errors import SeedlabError
from engine.core.settings import Settings
from engine.services import accounts, serving
from engine.services import api_tokens as tokens
from engine.services.launch import submit_run
from engine.services.model_registry import promote, register_model, set_stage
from engine.services.permissions import Actor, PermissionDenied, cli_actor
from tests.support.commands import ROOT, child_env, cli, free_port, seedlab_cmd
from tests.support.data import completed_run
from tests.support.images import image_bytes
from tests.support.pages import APP, TIMEOUT, button, go, open_page, texts
from tests.support.waiting import wait_until
from tests.support.web import start_server, stop_server

NAME = "iris-clf"
RATE = 3  # per minute: the rate-limit test spends it; the others start fresh with a new token
ADMIN = cli_actor()
ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


@dataclass
class Site:
    home: Path
    settings: Settings
    db: Engine
    url: str
    proc: subprocess.Popen
    token: str  # the token the CLI printed
    output: list[str] = field(default_factory=list)
    viewer_token: str = ""

    def predict_url(self, name: str = NAME) -> str:
        return serving.endpoint(self.url, name)

    def fresh_token(self) -> str:
        """A new token: a fresh rate-limit count for the test that takes it."""
        return serving.rotate_token(self.db, ADMIN, NAME)


def call(
    url: str, body: object = None, token: str | None = None, raw: bytes | None = None
) -> tuple[int, dict, Message]:
    """Status, JSON answer and headers, error statuses included."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


def _read_output(proc: subprocess.Popen, lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    home = tmp_path_factory.mktemp("serving") / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEEDLAB_HOME", str(home))
        patch.delenv("SEEDLAB_DB_URL", raising=False)
        settings = Settings.from_env()
        settings.ensure_dirs()
        db = get_db(settings)
        upgrade_to_head(db)
        from engine.data.demo import register_demo_datasets

        register_demo_datasets(settings, db, images=False)
        # Two real tiny models on iris: v1 goes to production, v2 waits.
        first = completed_run(settings, db, "iris")
        second = completed_run(settings, db, "iris", seed=1)
        register_model(settings, db, first, NAME, stage="production")
        register_model(settings, db, second, NAME)
        accounts.add_user(db, ADMIN, "vic", "password-123", "viewer")
        viewer_token = tokens.create_token(db, ADMIN, "vic")

        port = free_port()
        env = child_env() | {"SEEDLAB_HOME": str(home), "SEEDLAB_SERVE_RATE_PER_MIN": str(RATE)}
        env.pop("SEEDLAB_DB_URL", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli.main", "models", "serve", NAME, "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        output: list[str] = []
        threading.Thread(target=_read_output, args=(proc, output), daemon=True).start()
        url = f"http://localhost:{port}"
        try:

            def up() -> bool:
                assert proc.poll() is None, "".join(output)
                try:
                    with urllib.request.urlopen(f"{url}/api/v1/health", timeout=2):
                        return True
                except OSError:
                    return False

            wait_until(up, 120, what="`seedlab models serve` to answer")
            printed = "".join(output)
            token = next(
                w for line in output for w in line.split() if w.startswith(serving.TOKEN_PREFIX)
            )
            yield Site(home, settings, db, url, proc, token, output, viewer_token)
        finally:
            if proc.poll() is None:
                proc.terminate()  # what Ctrl-C does to uvicorn: a clean stop
                proc.wait(timeout=30)
        assert "Traceback" not in printed


def logged(site: Site, status: int) -> list[serving_store.ServeRequest]:
    return [r for r in serving_store.recent_requests(site.db, NAME, 200) if r.status == status]


def test_serve_prints_the_token_url_and_curl_and_answers_rows(site):
    printed = "".join(site.output)
    assert f"Serving {NAME} v1 at {site.predict_url()}" in printed
    assert "shown only now" in printed and "curl -X POST" in printed
    assert '"sepal length (cm)"' in printed  # the curl example is a row the model takes

    status, about, _ = call(f"{site.url}/api/v1/models/{NAME}", token=site.token)
    assert status == 200, about
    assert about["version"] == 1 and about["kind"] == "tabular" and about["send"] == "rows"
    assert [c["name"] for c in about["inputs"]["columns"]] == list(ROW)
    assert sorted(about["labels"]) == ["setosa", "versicolor", "virginica"]

    before = len(logged(site, 200))
    big = {**ROW, "petal length (cm)": 6.0, "petal width (cm)": 2.3, "extra": "ignored"}
    status, answer, _ = call(site.predict_url(), {"rows": [ROW, big]}, site.token)
    assert status == 200, answer
    assert answer["model"] == NAME and answer["version"] == 1
    assert len(answer["predictions"]) == 2 and len(answer["probabilities"]) == 2
    for label, probs in zip(answer["predictions"], answer["probabilities"], strict=True):
        assert set(probs) == {"setosa", "versicolor", "virginica"}
        assert sum(probs.values()) == pytest.approx(1, abs=1e-4)
        assert label == max(probs, key=probs.get)
    assert answer["latency_ms"] > 0

    # The log entry is written after the answer is sent.
    wait_until(lambda: len(logged(site, 200)) > before, 10, what="the request in the log")
    entry = logged(site, 200)[0]
    assert (entry.version, entry.items, entry.client) == (1, 2, "127.0.0.1")
    assert entry.latency_ms > 0 and entry.error is None
    shown = cli("models", "requests", NAME)
    assert shown.returncode == 0, shown.stderr
    assert "p50" in shown.stdout and "p95" in shown.stdout and " 200 " in shown.stdout


def test_refusals_say_why_with_their_status(site):
    old = site.token
    token = site.fresh_token()
    url = site.predict_url()

    status, answer, headers = call(url, {"rows": [ROW]})
    assert status == 401 and "needs its token" in answer["error"]
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, answer, _ = call(url, {"rows": [ROW]}, token + "x")
    assert status == 401 and "not the model's token" in answer["error"]
    status, answer, _ = call(url, {"rows": [ROW]}, old)  # rotated away
    assert status == 401
    # A user's API token (here a viewer's) is not a model token.
    status, answer, _ = call(url, {"rows": [ROW]}, site.viewer_token)
    assert status == 401 and "user's API token" in answer["error"]
    status, answer, _ = call(site.predict_url("no-such-model"), {"rows": [ROW]}, token)
    assert status == 404 and "No model 'no-such-model' is served here" in answer["error"]

    # Bad input: 422 naming the missing column; not JSON; a list instead of rows.
    partial = {k: v for k, v in ROW.items() if k != "petal width (cm)"}
    status, answer, _ = call(url, {"rows": [ROW, partial]}, token)
    assert status == 422 and "rows[1] has no column 'petal width (cm)'" in answer["error"]
    status, answer, _ = call(url, raw=b"rows=1", token=token)
    assert status == 422 and "not JSON" in answer["error"]
    # Over the item cap: 413 before any prediction.
    status, answer, _ = call(url, {"rows": [ROW] * (serving.MAX_ITEMS + 1)}, token)
    assert status == 413 and "at most 1,000" in answer["error"]
    wait_until(lambda: logged(site, 413), 10, what="the 413 in the log")
    assert logged(site, 422)[0].error.startswith("The body is not JSON")


def test_the_rate_limit_answers_429_with_retry_after(site):
    token = site.fresh_token()
    for _ in range(RATE):
        status, answer, _ = call(site.predict_url(), {"rows": [ROW]}, token)
        assert status == 200, answer
    status, answer, headers = call(site.predict_url(), {"rows": [ROW]}, token)
    assert status == 429 and f"{RATE} per minute" in answer["error"]
    assert 1 <= int(headers["Retry-After"]) <= 60
    wait_until(lambda: logged(site, 429), 10, what="the 429 in the log")
    # Describing the model does not count toward the limit.
    assert call(f"{site.url}/api/v1/models/{NAME}", token=token)[0] == 200


def test_promoting_another_version_switches_the_answers(site):
    token = site.fresh_token()
    assert call(site.predict_url(), {"rows": [ROW]}, token)[1]["version"] == 1
    promote(site.db, ADMIN, NAME, 2, "production")
    status, answer, _ = call(site.predict_url(), {"rows": [ROW]}, token)
    assert status == 200 and answer["version"] == 2
    # Nothing in production: 404 with a sentence that says to promote one.
    set_stage(site.db, NAME, 2, "archived")
    status, answer, _ = call(site.predict_url(), {"rows": [ROW]}, token)
    assert status == 404 and "no version in production" in answer["error"]
    assert "promote" in answer["error"]
    set_stage(site.db, NAME, 1, "production")
    assert call(site.predict_url(), {"rows": [ROW]}, token)[1]["version"] == 1


def test_unserve_turns_it_off_and_serving_again_keeps_the_token(site):
    token = site.fresh_token()
    shown = cli("models", "unserve", NAME)
    assert shown.returncode == 0 and "no longer served" in shown.stdout
    status, answer, _ = call(site.predict_url(), {"rows": [ROW]}, token)
    assert status == 404 and "is served here" in answer["error"]
    assert serving.enable(site.db, ADMIN, NAME) is None  # the token it had
    assert call(site.predict_url(), {"rows": [ROW]}, token)[0] == 200


# ---------------------------------------------------------------- without a server


def test_serving_needs_a_production_version_and_the_serve_permission(db, demo_datasets):
    # A run finished as a worker does, no training: enabling reads the registry, not the file.
    run_id = submit_run(db, "iris", {"epochs": 1})
    assert run_writes.claim_next_run(db, "tests") == run_id
    run_writes.finish_run(db, run_id, "completed")
    registry_writes.register_version(db, run_id, "staged", stage="staging")
    with pytest.raises(SeedlabError, match="no version in production.*Promote a version first"):
        serving.enable(db, ADMIN, "staged")
    refused = cli("models", "serve", "staged")  # refused before any server starts
    assert refused.returncode == 1 and refused.stderr.startswith("error: 'staged' has no version")
    assert "Traceback" not in refused.stderr
    registry_writes.set_stage(db, "staged", 1, "production")
    with pytest.raises(PermissionDenied, match="cannot serve models over HTTP"):
        serving.enable(db, Actor("vic", "viewer"), "staged")
    token = serving.enable(db, Actor("ana", "member"), "staged")
    assert token and token.startswith(serving.TOKEN_PREFIX)
    assert serving.check_token(db, "staged", token) and not serving.check_token(db, "staged", "x")
    # Only the hash is stored.
    assert token not in str(serving_store.target(db, "staged"))
    with pytest.raises(SeedlabError, match="not served yet"):
        serving.rotate_token(db, ADMIN, "other")


def test_text_and_image_models_take_texts_and_base64_images(settings, db):
    """Through the server object the routes call (the HTTP layer is the same as for rows)."""
    from engine.data.demo import register_demo_datasets

    register_demo_datasets(settings, db, images=True)
    text_run = completed_run(settings, db, "support_tickets", epochs=1, max_length=8)
    image_run = completed_run(settings, db, "digits", epochs=1, image_size=8)
    register_model(settings, db, text_run, "tickets", stage="production")
    register_model(settings, db, image_run, "digits", stage="production")
    server = serving.ModelServer(settings, db)

    token = serving.enable(db, ADMIN, "tickets")
    answer = server.predict("tickets", token, {"texts": ["my invoice is wrong", "reset password"]})
    assert len(answer["predictions"]) == 2 and len(answer["probabilities"]) == 2
    assert server.describe("tickets", token)["send"] == "texts"
    with pytest.raises(serving.ServeError, match="This model reads texts") as refused:
        server.predict("tickets", token, {"rows": [ROW]})
    assert refused.value.status == 422
    with pytest.raises(serving.ServeError, match=r"texts\[1\] is not a string"):
        server.predict("tickets", token, {"texts": ["fine", 3]})

    token = serving.enable(db, ADMIN, "digits")
    png = base64.b64encode(image_bytes("circle", 1)).decode()
    answer = server.predict("digits", token, {"images": [png, f"data:image/png;base64,{png}"]})
    assert answer["predictions"][0] == answer["predictions"][1]
    with pytest.raises(serving.ServeError, match=r"images\[1\] is not valid base64"):
        server.predict("digits", token, {"images": [png, "not base64!"]})
    not_an_image = base64.b64encode(b"hello, not a picture").decode()
    with pytest.raises(serving.ServeError, match=r"images\[0\] is not an image") as refused:
        server.predict("digits", token, {"images": [not_an_image]})
    assert refused.value.status == 422
    assert [r.status for r in serving.recent_requests(db, "digits")] == [422, 422, 200]


def test_the_migration_keeps_the_registry_and_downgrades(empty_database_url):
    from alembic import command
    from sqlalchemy import inspect, text

    from db.migrate import alembic_config
    from db.session import make_engine

    old = make_engine(empty_database_url)
    cfg = alembic_config(old)
    with old.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0020_alerts")
        conn.execute(
            text(
                "INSERT INTO audit_log (at, user_name, action, target, detail) "
                "VALUES ('2026-01-01', 'ana', 'promote', 'model m v1', 'production')"
            )
        )
    upgrade_to_head(old)
    assert {"served_models", "serve_requests"} <= set(inspect(old).get_table_names())
    serving_writes.log_request(old, "m", version=1, status=200, latency_ms=1, items=1, client="x")
    assert serving_store.request_count(old, "m") == 1
    with old.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 1
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0020_alerts")
    assert "served_models" not in inspect(old).get_table_names()
    old.dispose()


def test_the_request_log_keeps_the_newest_rows_per_model(db):
    for i in range(12):
        serving_writes.log_request(
            db, "a", version=1, status=200, latency_ms=float(i), items=1, client="x"
        )
    serving_writes.log_request(db, "b", version=1, status=200, latency_ms=1, items=1, client="x")
    serving_writes.prune_requests(db, "a", keep=5)
    kept = serving_store.recent_requests(db, "a", 100)
    assert [r.latency_ms for r in kept] == [11.0, 10.0, 9.0, 8.0, 7.0]
    assert serving_store.request_count(db, "b") == 1
    figures = serving.latency(db, "a")
    assert figures.requests == 5 and figures.p50_ms == 9.0


def test_the_dashboard_answers_at_the_same_routes(site):
    """`seedlab dashboard` (dashboard/web.py) answers served models too, beside the pages, with
    its own rate-limit count and the same log."""
    env = child_env() | {"SEEDLAB_HOME": str(site.home)}
    env.pop("SEEDLAB_DB_URL", None)
    dashboard = start_server(seedlab_cmd("dashboard"), env, site.home)
    try:
        token = site.fresh_token()
        url = serving.endpoint(dashboard.url, NAME)
        status, answer, _ = call(url, {"rows": [ROW]}, token)
        assert status == 200 and answer["version"] == 1, answer
        assert call(url, {"rows": [ROW]}, site.viewer_token)[0] == 401
        status, answer, _ = call(f"{dashboard.url}/api/v1/models/{NAME}", token=token)
        assert status == 200 and answer["send"] == "rows"
    finally:
        stop_server(dashboard.proc)


# ---------------------------------------------------------------- the Models page


def test_models_page_switch_shows_the_token_once_and_the_requests(settings, db, demo_datasets):
    run_id = completed_run(settings, db, "iris")
    register_model(settings, db, run_id, "flowers", stage="production")
    at = open_page("views/models.py")
    at.toggle(key="serve_toggle_flowers").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    served = serving.served(db, "flowers")
    assert served is not None and served.enabled
    token = next(c.value for c in at.code if c.value.startswith(serving.TOKEN_PREFIX))
    assert serving.check_token(db, "flowers", token)
    curl = next(c.value for c in at.code if c.value.startswith("curl"))
    assert "/api/v1/models/flowers/predict" in curl and token in curl
    assert "shown only this once" in texts(at.warning)

    # A request in this process shows in the table and the figures.
    server = serving.ModelServer(settings, db)
    assert server.predict("flowers", token, {"rows": [ROW]})["version"] == 1
    at.run()
    assert not any(c.value.startswith(serving.TOKEN_PREFIX) for c in at.code)  # once only
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests logged"] == "1" and metrics["Latency p50"].endswith(" ms")
    assert at.dataframe[-1].value["status"].tolist() == [200]

    button(at, "Rotate token").click().run()
    rotated = next(c.value for c in at.code if c.value.startswith(serving.TOKEN_PREFIX))
    assert rotated != token and serving.check_token(db, "flowers", rotated)
    assert not serving.check_token(db, "flowers", token)

    at.toggle(key="serve_toggle_flowers").set_value(False).run()
    assert not serving.served(db, "flowers").enabled
    assert "no longer served" in texts(at.success)


def test_a_viewer_sees_the_switch_disabled(settings, db, demo_datasets, monkeypatch):
    monkeypatch.setenv("SEEDLAB_AUTH", "on")
    run_id = completed_run(settings, db, "iris")
    register_model(settings, db, run_id, "flowers", stage="production")
    serving.enable(db, ADMIN, "flowers")
    accounts.add_user(db, ADMIN, "vic", "password-123", "viewer")
    at = login_as("vic", "password-123")
    at = go(at, "views/models.py")
    switch = at.toggle(key="serve_toggle_flowers")
    assert switch.value is True and switch.disabled
    assert button(at, "Rotate token").disabled
    assert not any(c.value.startswith(serving.TOKEN_PREFIX) for c in at.code)


def login_as(name: str, password: str) -> AppTest:
    """A logged-in browser session (tests/test_auth.py's way: the session a login makes)."""
    from dashboard import auth

    db = get_db(Settings.from_env())
    session = accounts.start_session(db, accounts.authenticate(db, name, password))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[auth.SESSION_TOKEN] = session.token
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
