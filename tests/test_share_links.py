"""Read-only share links (schema 0019_share_links, engine/services/share_links.py): made by a
member or an admin, refused to a viewer, bound to their record, ended by revoke or expiry; the
share view in the dashboard (dashboard/share_view.py) shows that one view and nothing else; the
`seedlab share` commands. The browser walk is in tests/e2e/test_share_browser.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import update
from streamlit.testing.v1 import AppTest

from dashboard import auth
from db import audit as audit_store
from db import registry
from db import runs as run_store
from db import share_links as link_store
from db.models import share_links
from db.session import utcnow, writing
from engine.services import accounts
from engine.services import share_links as sharing
from engine.services.launch import submit_run
from engine.services.permissions import Actor, PermissionDenied, cli_actor
from tests.support.commands import seedlab_in_process
from tests.support.data import finished_run
from tests.support.pages import APP, TIMEOUT, button, go, open_page, plotly_figures, texts

ANA, BOB, VIC = Actor("ana", "member"), Actor("bob", "member"), Actor("vic", "viewer")
ADMIN = Actor("ada", "admin")


def _finished(db, name: str, accuracy: float) -> int:  # noqa: ANN001
    return finished_run(db, "iris", name, accuracy)


def _expire(db, link_id: int) -> None:  # noqa: ANN001
    with writing(db) as conn:
        conn.execute(
            update(share_links)
            .where(share_links.c.id == link_id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )


# ---------------------------------------------------------------- the service


def test_expiry_forms():
    now = datetime(2026, 3, 1, 12, 0)
    assert sharing.parse_expiry("7d", now) == now + timedelta(days=7)
    assert sharing.parse_expiry("12H", now) == now + timedelta(hours=12)
    assert sharing.parse_expiry(" 30m ", now) == now + timedelta(minutes=30)
    assert sharing.parse_expiry("never", now) is None
    # A date: valid through that whole day (UTC).
    assert sharing.parse_expiry("2026-03-01", now) == datetime(2026, 3, 2)
    with pytest.raises(sharing.ShareError, match="has passed"):
        sharing.parse_expiry("2026-02-28", now)
    with pytest.raises(sharing.ShareError, match="7d, 12h or 30m"):
        sharing.parse_expiry("next week", now)
    with pytest.raises(sharing.ShareError, match="longer than"):
        sharing.parse_expiry("0d", now)


@pytest.mark.backends("sqlite", "postgresql")
def test_make_resolve_and_revoke_a_run_link(settings, db, demo_datasets):
    run_id = _finished(db, "shown", 0.9)
    made = sharing.create(db, ANA, "run", run_id, "7d")
    assert made.link.target == {"run": run_id} and made.link.created_by == "ana"
    assert len(made.token) >= 40
    # Only the hash is stored: the token is nowhere in the table.
    with writing(db) as conn:
        stored = [tuple(map(str, row)) for row in conn.execute(share_links.select())]
    assert not any(made.token in value for row in stored for value in row)

    assert sharing.resolve(db, made.token).id == made.link.id
    url = sharing.share_url(made.token, "https://seedlab.example.com/")
    assert url == f"https://seedlab.example.com/?share={made.token}"
    assert sharing.find(db, url).id == made.link.id  # the whole URL names the link too

    # Another member may not revoke it; its maker may; a second revoke says so.
    with pytest.raises(PermissionDenied, match="made by ana"):
        sharing.revoke(db, BOB, made.token)
    revoked = sharing.revoke(db, ANA, str(made.link.id))
    assert revoked.revoked_by == "ana"
    with pytest.raises(sharing.LinkRefused, match="was revoked on"):
        sharing.resolve(db, made.token)
    with pytest.raises(sharing.ShareError, match="revoked already"):
        sharing.revoke(db, ADMIN, made.token)

    actions = [(e.user, e.action, e.target) for e in audit_store.list_entries(db, limit=10)]
    assert ("ana", "share_create", f"run {run_id}") in actions
    assert ("ana", "share_revoke", f"run {run_id}") in actions


def test_refusals_unknown_expired_viewer_and_missing_targets(settings, db, demo_datasets):
    run_id = _finished(db, "r", 0.5)
    with pytest.raises(PermissionDenied, match=r"Your role \(viewer\) cannot make share links"):
        sharing.create(db, VIC, "run", run_id)
    with pytest.raises(sharing.LinkRefused, match="not valid"):
        sharing.resolve(db, "x" * 43)
    with pytest.raises(sharing.LinkRefused, match="not valid"):
        sharing.resolve(db, "")
    with pytest.raises(sharing.ShareError, match="no run #999"):
        sharing.create(db, ANA, "run", 999)
    with pytest.raises(sharing.ShareError, match="no run #998"):
        sharing.create(db, ANA, "compare", f"{run_id},998")
    with pytest.raises(sharing.ShareError, match="No registered model 'nope'"):
        sharing.create(db, ANA, "model", "nope")
    queued = submit_run(db, "iris", {"epochs": 2})
    with pytest.raises(sharing.ShareError, match="no model Seedlab can load"):
        sharing.create(db, ANA, "model", queued)

    made = sharing.create(db, ADMIN, "compare", f"{run_id}, {run_id}", "1d")
    assert made.link.target == {"runs": [run_id]}  # a run named twice is compared once
    _expire(db, made.link.id)
    with pytest.raises(sharing.LinkRefused, match="expired on"):
        sharing.resolve(db, made.token)


@pytest.mark.backends("sqlite", "postgresql")
def test_admin_lists_every_live_link_a_member_their_own(settings, db, demo_datasets):
    a, b = _finished(db, "a", 0.6), _finished(db, "b", 0.7)
    mine = sharing.create(db, ANA, "run", a, "never")
    theirs = sharing.create(db, BOB, "compare", [a, b], "30d")
    gone = sharing.create(db, BOB, "run", b, "1d")
    sharing.revoke(db, ADMIN, gone.link.id)
    ended = sharing.create(db, ANA, "run", b, "1d")
    _expire(db, ended.link.id)

    assert [link.id for link in sharing.list_live(db, ADMIN)] == [theirs.link.id, mine.link.id]
    assert [link.id for link in sharing.list_live(db, ANA)] == [mine.link.id]
    with pytest.raises(PermissionDenied):
        sharing.list_live(db, VIC)
    assert sharing.describe(theirs.link) == f"runs {a}, {b}"

    sharing.opened(db, sharing.resolve(db, mine.token))
    sharing.opened(db, sharing.resolve(db, mine.token))
    opened = link_store.get_link(db, mine.link.id)
    assert opened.opens == 2 and opened.last_opened_at is not None


def test_a_shared_playground_is_rate_limited_per_link():
    # Link ids no test makes: the limiter lives in the process, across tests.
    assert [sharing.allow_prediction(10_001, 3) for _ in range(4)] == [True] * 3 + [False]
    assert sharing.allow_prediction(10_002, 3)  # another link has its own budget


# ---------------------------------------------------------------- the CLI


def test_cli_share_list_and_revoke(settings, db, demo_datasets, monkeypatch):
    a, b = _finished(db, "a", 0.6), _finished(db, "b", 0.7)
    done = seedlab_in_process("share", "run", str(a), "--expires", "12h")
    assert done.returncode == 0, done.stderr
    assert "http://localhost:8501/?share=" in done.stdout and "SEEDLAB_PUBLIC_URL" in done.stdout
    token = done.stdout.split("?share=")[1].split()[0]
    assert sharing.resolve(db, token).target == {"run": a}

    monkeypatch.setenv("SEEDLAB_PUBLIC_URL", "https://lab.example.com/")
    done = seedlab_in_process("share", "compare", f"{a},{b}")
    assert done.returncode == 0 and "https://lab.example.com/?share=" in done.stdout
    assert "SEEDLAB_PUBLIC_URL" not in done.stdout

    refused = seedlab_in_process("share", "model", "nope")
    assert refused.returncode == 1 and "error: No registered model 'nope'" in refused.stderr
    assert "Traceback" not in refused.stderr

    listed = seedlab_in_process("share", "list")
    assert listed.returncode == 0
    assert f"runs {a}, {b}" in listed.stdout and f"run {a}" in listed.stdout
    assert "cli:" in listed.stdout  # who made it

    done = seedlab_in_process("share", "revoke", token)
    assert done.returncode == 0 and "Revoked" in done.stdout
    assert f"run {a} " not in seedlab_in_process("share", "list").stdout
    again = seedlab_in_process("share", "revoke", token)
    assert again.returncode == 1 and "revoked already" in again.stderr
    bad = seedlab_in_process("share", "run", str(a), "--expires", "soon")
    assert bad.returncode == 1 and "Cannot read the expiry 'soon'" in bad.stderr


# ---------------------------------------------------------------- the share view (AppTest)


def _shared(token: str, **query: str) -> AppTest:
    """A fresh session opening /?share=TOKEN (and any other query parameters)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["share"] = token
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _rerun(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture
def access_control(settings, db, monkeypatch):  # noqa: ANN001, ANN201
    """Access control on with an admin account, as on a shared box: every page needs a login."""
    monkeypatch.setenv("SEEDLAB_AUTH", "on")
    accounts.add_user(db, cli_actor(), "ada", "password-123", "admin")


def test_a_run_link_shows_that_run_and_nothing_else(settings, db, demo_datasets, access_control):
    shown, other = _finished(db, "shown", 0.9), _finished(db, "other", 0.4)
    made = sharing.create(db, ADMIN, "run", shown, "7d")

    at = _shared(made.token)
    assert at.title[0].value == f"#{shown} · shown"
    assert "90.0 %" in [m.value for m in at.metric]  # the headline metric, as a percentage
    assert len(plotly_figures(at)) == 1  # the loss curve
    assert not at.button and not at.get("page_link") and not at.sidebar.children
    assert "Log in" not in texts(at.subheader)
    assert "read-only view shared from Seedlab by ada" in texts(at.caption)

    # Another run's id, another page: the record's run all the same.
    at.query_params["run"] = str(other)
    assert _rerun(at).title[0].value == f"#{shown} · shown"
    at.switch_page("views/runs.py")
    assert _rerun(at).title[0].value == f"#{shown} · shown"
    # Another page's widgets, as a replayed message would set them: nothing to receive them.
    at.session_state["run_delete_confirm"] = True
    at.session_state["register_name"] = "stolen"
    at.session_state["cmp_key"] = "val_loss"
    assert _rerun(at).title[0].value == f"#{shown} · shown"
    assert run_store.get_run(db, shown) is not None and not registry.list_models(db)
    # A logged-in admin's session changes nothing either: the same view, no pages, no menu.
    session = accounts.start_session(db, ADMIN)
    at.session_state[auth.SESSION_TOKEN] = session.token
    _rerun(at)
    assert at.title[0].value == f"#{shown} · shown" and not at.sidebar.children
    assert {e.action for e in audit_store.list_entries(db)} == {"user_add", "share_create"}
    assert link_store.get_link(db, made.link.id).opens == 1  # once per session, not per click

    # Revoked: the next click shows the refusal, and nothing of the run.
    sharing.revoke(db, ADMIN, made.link.id)
    _rerun(at)
    assert "was revoked on" in texts(at.error)
    assert not at.metric and not plotly_figures(at) and f"#{shown}" not in texts(at.title)


def test_a_compare_link_shows_its_runs_only(settings, db, demo_datasets, access_control):
    a, b, c = (_finished(db, n, acc) for n, acc in (("a", 0.6), ("b", 0.8), ("c", 0.3)))
    made = sharing.create(db, ADMIN, "compare", [a, b], "never")
    at = _shared(made.token, runs=f"{a},{b},{c}", tab="Params")
    names = [t["name"] for f in plotly_figures(at) for t in f["data"]]
    assert names == [f"#{a} a", f"#{b} b"]
    table = at.dataframe[0].value
    assert list(table["id"]) == [a, b] and list(table["test accuracy"]) == ["60.0 %", "80.0 %"]
    assert not at.button and not at.sidebar.children


def test_unknown_and_expired_links_are_refused(settings, db, demo_datasets, access_control):
    run_id = _finished(db, "r", 0.5)
    at = _shared("not-a-real-token-at-all-0123456789")
    assert "not valid" in texts(at.error) and "Log in" not in texts(at.subheader)
    made = sharing.create(db, ADMIN, "run", run_id, "1d")
    _expire(db, made.link.id)
    at = _shared(made.token)
    assert "expired on" in texts(at.error) and not at.metric


def test_a_model_link_predicts_within_its_rate_limit(settings, db, demo_datasets, monkeypatch):
    from engine.services.model_registry import register
    from tests.support.data import completed_run

    run_id = completed_run(settings, db, "iris")
    register(settings, db, ADMIN, run_id, "iris-model", stage="production")
    # The Playground's Share: a registered model by its name (its production version).
    at = open_page("views/playground.py")
    button(at, "Create link").click().run()
    made_here = sharing.resolve(db, _shown_url(at).split("share=")[1])
    assert made_here.target == {"model": "iris-model"}

    made = sharing.create(db, ANA, "model", "iris-model")
    monkeypatch.setenv("SEEDLAB_SHARE_PREDICT_PER_MIN", "1")

    at = _shared(made.token, run="999", model="other")
    assert at.title[0].value == "Playground" and "iris\\-model v1" in texts(at.caption)
    assert [m.label for m in at.metric][0] == "Prediction"
    assert not at.button and not at.tabs  # predict only: no batch tab, no actions
    at.slider[0].set_value(at.slider[0].max).run()
    assert "answered its 1 predictions for this minute" in texts(at.warning)
    assert "Prediction" not in [m.label for m in at.metric]


# ---------------------------------------------------------------- Share buttons, Admin


def _shown_url(at: AppTest) -> str:
    urls = [c.value for c in at.code if "?share=" in c.value]
    assert len(urls) == 1, [c.value for c in at.code]
    return urls[0]


def test_share_buttons_make_links_and_admin_revokes_them(settings, db, demo_datasets):
    a, b = _finished(db, "a", 0.6), _finished(db, "b", 0.7)
    at = open_page("views/run_detail.py", run=str(a))
    at.selectbox(key="share_run_expiry").set_value("Never")
    button(at, "Create link").click().run()
    url = _shown_url(at)
    assert url.startswith("http://localhost:8501/?share=")  # AppTest has no browser address
    run_link = sharing.resolve(db, url.split("share=")[1])
    assert run_link.target == {"run": a} and run_link.expires_at is None
    assert not [c.value for c in _rerun(at).code if "?share=" in c.value]  # shown once

    at = open_page("views/compare.py", runs=f"{a},{b}")
    button(at, "Create link").click().run()
    compare_link = sharing.resolve(db, _shown_url(at).split("share=")[1])
    assert compare_link.target == {"runs": [a, b]} and compare_link.expires_at is not None

    at = open_page("views/admin.py")
    shown = texts(at.text)
    assert f"run {a}" in shown and f"runs {a}, {b}" in shown and "local" in shown
    at.button(key=f"share_revoke_{run_link.id}").click().run()
    assert f"Revoked link {run_link.id} to run {a}." in texts(at.success)
    assert link_store.get_link(db, run_link.id).revoked_by == "local"
    assert f"run {a}" not in texts(at.text).replace(f"runs {a}", "")


def test_a_viewer_gets_a_disabled_share_button(settings, db, demo_datasets, access_control):
    run_id = _finished(db, "r", 0.5)
    accounts.add_user(db, cli_actor(), "vic", "password-123", "viewer")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[auth.SESSION_TOKEN] = accounts.start_session(db, VIC).token
    at = go(at.run(), "views/run_detail.py", run=str(run_id))
    assert button(at, "Create link").disabled
    assert not link_store.live_links(db, utcnow())
