"""Alerts (issue 23): rules, the outbox, delivery to a real HTTP receiver and a real SMTP server
(both started here, on 127.0.0.1), retries with back-off, once-only delivery, who may add what,
and a real run under a real worker whose webhook arrives while another receiver fails."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from db import alerts as alert_store
from db import runs as run_store
from db.session import utcnow
from db.writes import runs as run_writes
from engine.core.settings import Settings
from engine.services import alert_delivery, alerts
from engine.services.permissions import Actor, PermissionDenied
from tests.support.commands import cli, free_port
from tests.support.data import stub_dataset
from tests.support.pages import button, open_page
from tests.support.waiting import wait_until

ADMIN = Actor("boss", "admin")
MEMBER = Actor("ana", "member")
VIEWER = Actor("vic", "viewer")


class Receiver:
    """A webhook receiver on 127.0.0.1: records each POSTed JSON body, and answers the status
    codes in `answers` in turn (200 once they run out)."""

    def __init__(self, answers: list[int] | None = None) -> None:
        self.bodies: list[dict] = []
        self.answers = list(answers or [])
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                code = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: object) -> None:  # keep pytest output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Inbox:
    """aiosmtpd's handler: keeps every message the SMTP server accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []

    async def handle_DATA(self, _server, _session, envelope) -> str:  # noqa: ANN001, N802
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode())
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def _ended_run(
    db: Engine, status: str, *, verdict: dict | None = None, metrics: dict | None = None
) -> int:
    """A run row taken to `status` the way the engine takes it (claim, points, finish)."""
    dataset_id = stub_dataset(db, f"d{utcnow().timestamp()}")
    run_id = run_writes.create_run(db, name="churn mlp", dataset_id=dataset_id, config={})
    assert run_writes.claim_next_run(db, "tests") == run_id
    points = [(k, 1, v, 0.0) for k, v in (metrics or {"test_accuracy": 0.9}).items()]
    run_writes.record_progress(db, run_id, points)
    if status != "running":
        error = "CUDA out of memory\nmore lines" if status == "failed" else None
        assert run_writes.finish_run(db, run_id, status, error, verdict=verdict)
    return run_id


@pytest.mark.backends("sqlite", "postgresql")
def test_a_completed_run_reaches_a_webhook_and_an_inbox(
    settings: Settings, db: Engine, receiver: Receiver, smtp_server
):
    inbox, port = smtp_server
    settings = Settings(**{**settings.__dict__, "public_url": "https://lab.example.com"})
    alerts.save_smtp_config(db, ADMIN, host="127.0.0.1", port=port, sender="lab@example.com")
    hook = alerts.add_rule(
        db, settings, ADMIN, project="Default", events="completed,failed", webhook=receiver.url
    )
    mail = alerts.add_rule(db, settings, MEMBER, project=1, events="failed", email="ana@ex.com")

    done = _ended_run(db, "completed")
    failed = _ended_run(db, "failed")
    assert alerts.run_ended(db, settings, done) == 1  # the webhook rule only
    assert alerts.run_ended(db, settings, failed) == 2
    result = alert_delivery.drain_once(db, settings)
    assert (result.sent, result.retrying, result.failed) == (3, 0, 0)

    by_run = {b["run"]["id"]: b for b in receiver.bodies}
    assert set(by_run) == {done, failed}
    completed = by_run[done]
    assert completed["event"] == "completed" and completed["project"] == "Default"
    assert completed["text"].startswith(f"Run {done} “churn mlp” completed in project Default")
    assert "test accuracy 90.0 %" in completed["text"].lower()  # a percentage, not 0.9
    assert completed["url"] == f"https://lab.example.com/run?run={done}"
    assert by_run[failed]["text"].startswith(f"Run {failed} “churn mlp” failed")
    assert "CUDA out of memory" in by_run[failed]["text"]
    assert "more lines" not in by_run[failed]["text"]  # the first line of the error only

    assert len(inbox.messages) == 1
    sender, recipients, content = inbox.messages[0]
    assert sender == "lab@example.com" and recipients == ["ana@ex.com"]
    assert f"Run {failed}" in content and "failed" in content
    statuses = {d.rule_id: d.status for d in alerts.list_deliveries(db)}
    assert statuses == {hook: "sent", mail: "sent"}


def test_a_verdict_warning_and_a_cancel_are_their_own_events(
    settings: Settings, db: Engine, receiver: Receiver
):
    alerts.add_rule(
        db, settings, ADMIN, project="Default", events="warning,cancelled", webhook=receiver.url
    )
    clean = _ended_run(db, "completed", verdict={"warnings": [], "short": "fine"})
    warned = _ended_run(db, "completed", verdict={"warnings": [{"code": "overfitting"}]})
    cancelled = _ended_run(db, "cancelled")
    for run_id in (clean, warned, cancelled):
        alerts.run_ended(db, settings, run_id)
    alert_delivery.drain_once(db, settings)
    events = sorted((b["event"], b["run"]["id"]) for b in receiver.bodies)
    assert events == [("cancelled", cancelled), ("warning", warned)]
    warning = next(b for b in receiver.bodies if b["event"] == "warning")
    assert "with a warning: overfitting" in warning["text"]
    assert warning["verdict"]["warnings"] == ["overfitting"]


def test_a_cancelled_sweep_tells_of_its_end_and_its_cancelled_queued_trial(
    settings: Settings, db: Engine, receiver: Receiver
):
    from db.writes import sweeps as sweep_writes
    from engine.services.runs import cancel_run
    from engine.services.sweep_actions import cancel_sweep

    alerts.add_rule(
        db, settings, ADMIN, project="Default", events="sweep_ended,cancelled", webhook=receiver.url
    )
    dataset_id = stub_dataset(db)
    sweep_id = sweep_writes.create_sweep(
        db,
        name="lr search",
        dataset_id=dataset_id,
        base_config={},
        space={},
        sampler="random",
        pruner="none",
        objective="val_loss",
        direction="minimize",
        max_trials=2,
        time_limit_s=None,
        parallelism=1,
    )
    trial = run_writes.create_run(
        db, name="lr search #0", dataset_id=dataset_id, config={}, sweep_id=sweep_id
    )
    alone = run_writes.create_run(db, name="queued alone", dataset_id=dataset_id, config={})
    # Cancelling queued runs ends them at once, with no engine: the services enqueue then.
    assert cancel_run(db, ADMIN, alone) == "cancelled"
    assert cancel_sweep(db, ADMIN, sweep_id) == "cancelled"
    alert_delivery.drain_once(db, settings)
    by_event = sorted((b["event"], b.get("run", b.get("sweep"))["id"]) for b in receiver.bodies)
    assert by_event == [("cancelled", trial), ("cancelled", alone), ("sweep_ended", sweep_id)]
    ended = next(b for b in receiver.bodies if b["event"] == "sweep_ended")
    assert ended["text"] == f"Sweep {sweep_id} “lr search” cancelled."


@pytest.mark.backends("sqlite", "postgresql")
def test_an_event_noticed_twice_is_delivered_once(
    settings: Settings, db: Engine, receiver: Receiver
):
    alerts.add_rule(db, settings, ADMIN, project="Default", events="failed", webhook=receiver.url)
    run_id = _ended_run(db, "failed")
    # The runner's end, the worker's reap and a status check may all notice the same end.
    assert alerts.run_ended(db, settings, run_id) == 1
    assert alerts.run_ended(db, settings, run_id) == 0
    assert alerts.notify_run_ended(db, settings, run_id) == 0
    alert_delivery.drain_once(db, settings)
    alert_delivery.drain_once(db, settings)
    assert len(receiver.bodies) == 1
    assert len(alert_store.list_deliveries(db)) == 1


@pytest.mark.backends("sqlite", "postgresql")
def test_a_failing_receiver_is_retried_with_back_off_then_given_up(settings: Settings, db: Engine):
    flaky = Receiver(answers=[500])  # one error, then 200
    try:
        flaky_rule = alerts.add_rule(
            db, settings, ADMIN, project="Default", events="failed", webhook=flaky.url
        )
        alerts.run_ended(db, settings, _ended_run(db, "failed"))
        now = utcnow()
        first = alert_delivery.drain_once(db, settings, now=now)
        assert (first.sent, first.retrying) == (0, 1)
        [pending] = alerts.list_deliveries(db)
        assert pending.status == "pending" and pending.attempts == 1
        assert pending.last_error.startswith("The webhook answered HTTP 500")
        assert pending.next_attempt_at == now + timedelta(seconds=alert_delivery.BACKOFF_S[0])
        # Not due yet: no attempt before its back-off has passed.
        early = alert_delivery.drain_once(db, settings, now=now + timedelta(seconds=5))
        assert (early.sent, early.retrying) == (0, 0) and len(flaky.bodies) == 1
        later = now + timedelta(seconds=alert_delivery.BACKOFF_S[0] + 1)
        assert alert_delivery.drain_once(db, settings, now=later).sent == 1
        [sent] = alerts.list_deliveries(db)
        assert (sent.status, sent.attempts, len(flaky.bodies)) == ("sent", 2, 2)
    finally:
        flaky.close()
    alerts.remove_rule(db, ADMIN, flaky_rule)

    # A receiver that is down: every attempt fails, then the message is given up with a
    # sentence saying why (short back-offs here; the real ones are minutes to an hour).
    down = f"http://127.0.0.1:{free_port()}/hook"
    rule = alerts.add_rule(db, settings, ADMIN, project="Default", events="failed", webhook=down)
    alerts.run_ended(db, settings, _ended_run(db, "failed"))
    backoff = (1, 2)
    at = utcnow()
    outcomes = []
    for _ in range(len(backoff) + 1):
        result = alert_delivery.drain_once(db, settings, now=at, backoff_s=backoff)
        outcomes.append((result.retrying, result.failed))
        at += timedelta(seconds=10)
    assert outcomes == [(1, 0), (1, 0), (0, 1)]
    [given_up] = alerts.list_deliveries(db, rule_id=rule)
    assert given_up.status == "failed" and given_up.attempts == 3
    assert given_up.last_error.startswith("The webhook could not be reached")
    assert "check the address" in given_up.last_error


def test_who_may_add_what(settings: Settings, db: Engine, smtp_server):
    _, port = smtp_server
    hook = "http://10.0.0.5/internal"
    # A member may not point the server at a URL (it could be an internal address)...
    with pytest.raises(PermissionDenied, match="Only an admin can add a webhook alert"):
        alerts.add_rule(db, settings, MEMBER, project="Default", events="failed", webhook=hook)
    # ...nor set the mail server; and e-mail needs one first.
    with pytest.raises(PermissionDenied, match="Only an admin can set the mail server"):
        alerts.save_smtp_config(db, MEMBER, host="127.0.0.1", port=port)
    with pytest.raises(alerts.AlertError, match="No mail server is set"):
        alerts.add_rule(db, settings, MEMBER, project="Default", events="failed", email="a@b.io")
    alerts.save_smtp_config(db, ADMIN, host="127.0.0.1", port=port)
    mine = alerts.add_rule(db, settings, MEMBER, project="Default", events="failed", email="a@b.io")
    with pytest.raises(PermissionDenied, match="cannot add or remove alerts"):
        alerts.add_rule(db, settings, VIEWER, project="Default", events="failed", email="v@b.io")
    admins = alerts.add_rule(db, settings, ADMIN, project="Default", events="failed", webhook=hook)
    with pytest.raises(PermissionDenied, match="a member can remove only their own"):
        alerts.remove_rule(db, MEMBER, admins)
    alerts.remove_rule(db, MEMBER, mine)
    assert [r.id for r in alerts.list_rules(db)] == [admins]
    # Words for mistakes, naming what to do.
    with pytest.raises(alerts.AlertError, match="choose among completed, failed"):
        alerts.add_rule(db, settings, ADMIN, project="Default", events="finished", webhook=hook)
    with pytest.raises(alerts.AlertError, match="needs a metric and one threshold"):
        alerts.add_rule(db, settings, ADMIN, project="Default", events="metric", webhook=hook)
    with pytest.raises(alerts.AlertError, match="not a web address"):
        alerts.add_rule(db, settings, ADMIN, project="Default", events="failed", webhook="ftp://x")


@pytest.mark.backends("sqlite", "postgresql")
def test_a_metric_threshold_fires_once_per_run(settings: Settings, db: Engine, receiver: Receiver):
    rule = alerts.add_rule(
        db,
        settings,
        ADMIN,
        project="Default",
        events="metric",
        webhook=receiver.url,
        metric_key="val_loss",
        above=0.5,
    )
    low = _ended_run(db, "running", metrics={"val_loss": 0.3})
    high = _ended_run(db, "running", metrics={"val_loss": 0.8})
    assert alert_delivery.drain_once(db, settings).enqueued == 1
    assert alert_delivery.drain_once(db, settings).enqueued == 0  # once per rule and run
    [body] = receiver.bodies
    assert body["event"] == "metric" and body["run"]["id"] == high
    assert body["metric"] == {"key": "val_loss", "value": 0.8, "op": "above", "threshold": 0.5}
    assert "val loss is 0.8, above the alert's threshold 0.5" in body["text"].lower()
    # The other run crosses later: its own message.
    run_writes.record_progress(db, low, [("val_loss", 2, 0.9, 0.0)])
    assert alert_delivery.drain_once(db, settings).enqueued == 1
    assert {d.subject for d in alerts.list_deliveries(db, rule_id=rule)} == {
        f"run:{high}",
        f"run:{low}",
    }


def test_cli_add_list_deliveries_remove(settings: Settings, db: Engine, receiver: Receiver):
    added = cli(
        "alerts", "add", "--project", "Default", "--on", "failed", "--webhook", receiver.url
    )
    assert added.returncode == 0, added.stderr
    rule_id = int(added.stdout.split()[2].rstrip("."))
    listed = cli("alerts", "list")
    assert f"{rule_id}\tproject Default: failed\t→ webhook {receiver.url}" in listed.stdout
    alerts.run_ended(db, settings, _ended_run(db, "failed"))
    drained = cli("alerts", "drain")
    assert drained.stdout.startswith("1 sent, 0 to retry later, 0 given up"), drained.stdout
    deliveries = cli("alerts", "deliveries")
    assert "\tfailed run:" in deliveries.stdout and "sent after 1 attempt" in deliveries.stdout
    tested = cli("alerts", "test", str(rule_id))
    assert tested.returncode == 0 and receiver.bodies[-1]["event"] == "test"
    bad = cli("alerts", "add", "--project", "nope", "--on", "failed", "--webhook", receiver.url)
    assert bad.returncode == 1 and bad.stderr.startswith("error: No project 'nope'")
    assert cli("alerts", "remove", str(rule_id)).returncode == 0
    assert "No alerts yet" in cli("alerts", "list").stdout


@pytest.mark.slow
def test_a_real_run_under_a_real_worker_sends_its_webhook_while_another_receiver_fails(
    settings: Settings, db: Engine, demo_datasets, receiver: Receiver, worker
):
    from engine.services.launch import submit_run

    failing = Receiver(answers=[500] * 50)
    try:
        alerts.add_rule(
            db, settings, ADMIN, project="Default", events="completed", webhook=failing.url
        )
        alerts.add_rule(
            db, settings, ADMIN, project="Default", events="completed", webhook=receiver.url
        )
        first = submit_run(db, "iris", {"epochs": 2, "batch_size": 32, "seed": 0})
        second = submit_run(db, "iris", {"epochs": 2, "batch_size": 32, "seed": 1})
        wait_until(
            lambda: {b["run"]["id"] for b in receiver.bodies} == {first, second},
            timeout=180,
            what="both runs' webhooks",
        )
        # The failing receiver held back neither run nor the other receiver's messages.
        for run_id in (first, second):
            assert run_store.get_run(db, run_id).status == "completed"
        assert all(b["status"] == "completed" for b in receiver.bodies)
        assert len(failing.bodies) == 2  # each tried once; the next try is 30 s later
        retrying = alerts.list_deliveries(db, status="pending")
        assert len(retrying) == 2
        assert all(d.attempts == 1 and "HTTP 500" in (d.last_error or "") for d in retrying)
    finally:
        failing.close()


def test_the_admin_page_sets_the_mail_server_adds_an_alert_and_lists_outcomes(
    settings: Settings, db: Engine, smtp_server
):
    _, port = smtp_server
    at = open_page("views/admin.py")
    assert "Not set: e-mail alerts cannot be added." in "\n".join(c.value for c in at.caption)
    at.text_input(key="smtp_host").set_value("127.0.0.1")
    at.number_input(key="smtp_port").set_value(port)
    at.text_input(key="smtp_from").set_value("lab@example.com")
    button(at, "Save mail server").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert alerts.smtp_config(db, settings).port == port

    at.multiselect(key="alert_events").set_value(["failed", "sweep_ended"])
    at.text_input(key="alert_target").set_value("ana@example.com")
    button(at, "Add alert").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [rule] = alerts.list_rules(db)
    assert (rule.channel, rule.target, rule.event_list) == (
        "email",
        "ana@example.com",
        ["failed", "sweep_ended"],
    )
    # A message that could not go yet is listed with its attempts and error, as a sentence.
    down = f"http://127.0.0.1:{free_port()}/hook"
    alerts.add_rule(db, settings, ADMIN, project="Default", events="failed", webhook=down)
    alerts.run_ended(db, settings, _ended_run(db, "failed"))
    alert_delivery.drain_once(db, settings)
    at = open_page("views/admin.py")
    messages = next(f.value for f in at.dataframe if "outcome" in f.value.columns)
    assert sorted(messages["outcome"]) == ["pending", "sent"]
    pending = messages[messages["outcome"] == "pending"].iloc[0]
    assert pending["attempts"] == 1
    assert pending["last error"].startswith("The webhook could not be reached")


def test_the_migration_keeps_existing_data_and_goes_back(tmp_path):
    from alembic import command
    from sqlalchemy import inspect, text

    from db.migrate import alembic_config
    from db.session import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0019_share_links")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO projects (name, description, created_at)"
                " VALUES ('p', '', '2026-01-01')"
            )
        )
    command.upgrade(cfg, "0020_alerts")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO alert_rules (project_id, events, channel, target, created_at, enabled)"
                " VALUES (2, 'failed', 'email', 'a@b.io', '2026-01-01', 1)"
            )
        )
        assert conn.execute(text("SELECT name FROM projects WHERE id = 2")).scalar() == "p"
    command.downgrade(cfg, "0019_share_links")
    tables = set(inspect(engine).get_table_names())
    assert not {"alert_rules", "alert_deliveries", "app_settings"} & tables
    with engine.begin() as conn:
        assert conn.execute(text("SELECT name FROM projects WHERE id = 2")).scalar() == "p"
    engine.dispose()


def test_a_member_asks_for_an_e_mail_from_the_run_page(
    settings: Settings, db: Engine, smtp_server, monkeypatch: pytest.MonkeyPatch
):
    from streamlit.testing.v1 import AppTest

    from dashboard import auth
    from engine.services import accounts
    from tests.support.pages import APP, TIMEOUT, go

    _, port = smtp_server
    monkeypatch.setenv("SEEDLAB_AUTH", "on")
    accounts.add_user(db, ADMIN, "ana", "correct horse battery", "member")
    alerts.save_smtp_config(db, ADMIN, host="127.0.0.1", port=port)
    run_id = _ended_run(db, "running")
    session = accounts.start_session(db, accounts.authenticate(db, "ana", "correct horse battery"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[auth.SESSION_TOKEN] = session.token
    at.run()
    at = go(at, "views/run_detail.py", run=str(run_id))
    at.text_input(key="alert_me_to").set_value("ana@example.com")
    button(at, "Alert me").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [rule] = alerts.list_rules(db)
    assert (rule.run_id, rule.project_id, rule.channel, rule.created_by) == (
        run_id,
        None,
        "email",
        "ana",
    )
    assert rule.event_list == ["completed", "failed"]
    # When the run ends, the e-mail goes out.
    assert run_writes.finish_run(db, run_id, "failed", "boom")
    assert alerts.run_ended(db, settings, run_id) == 1
