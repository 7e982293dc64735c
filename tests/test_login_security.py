"""Logins and sessions under attack (issue 22): parallel attempts never check more passwords than
the limit, one address cannot lock a user out, the answers for an unknown name, a wrong password
and a waiting user are the same, and a session ends on the server at logout (a copied cookie opens
nothing). Real SQLite (and PostgreSQL for the race), real threads and processes, and a real
`seedlab dashboard` for the cookie.

Passwords checked are counted by wrapping `accounts.verify_password` and keeping only the checks
against the user's real hash (a check against the dummy hash proves nothing to an attacker)."""

from __future__ import annotations

import http.client
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from sqlalchemy import Engine

from db import users as user_store
from db.session import get_db, utcnow
from engine.core.settings import Settings
from engine.services import accounts
from engine.services.permissions import Actor, cli_actor
from tests.support.commands import child_env, seedlab_cmd
from tests.support.web import Server, page_elements, start_server, stop_server

PASSWORD = "correct horse battery"
WRONG_PASSWORD = "not the password"
ADMIN = cli_actor()
WAIT = "Too many failed logins from your address: try again in"


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """The defaults, set explicitly: 5 failures per address, 20 per user name."""
    monkeypatch.setenv("SEEDLAB_LOGIN_MAX_FAILURES", "5")
    monkeypatch.setenv("SEEDLAB_LOGIN_USER_MAX_FAILURES", "20")
    monkeypatch.setenv("SEEDLAB_LOGIN_LOCKOUT_MIN", "15")
    return 5, 20


@pytest.fixture
def real_checks(monkeypatch: pytest.MonkeyPatch) -> Callable[[Engine, str], list[bool]]:
    """`checks(db, name)`: the results of every password check against that user's real hash
    made in this process since (thread-safe)."""
    seen: list[tuple[str, bool]] = []
    lock = threading.Lock()
    original = accounts.verify_password

    def counting(password_hash: str, password: str) -> bool:
        result = original(password_hash, password)
        with lock:
            seen.append((password_hash, result))
        return result

    monkeypatch.setattr(accounts, "verify_password", counting)

    def checks(db: Engine, name: str) -> list[bool]:
        real = user_store.get_user(db, name).password_hash
        with lock:
            return [ok for h, ok in seen if h == real]

    return checks


def _attempt(db: Engine, name: str, password: str, address: str) -> Actor | str:
    try:
        return accounts.authenticate(db, name, password, address=address)
    except accounts.LoginError as exc:
        return str(exc)


def _all_at_once(jobs: list[Callable[[], object]]) -> list[object]:
    """Run the jobs in as many threads, released together."""
    start = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(i: int) -> None:
        start.wait()
        results[i] = jobs[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    return results


# ---------------------------------------------------------------- the race


@pytest.mark.backends("sqlite", "postgresql")
def test_sixty_parallel_wrong_passwords_check_no_more_than_the_limit(db, limits, real_checks):
    per_address, _ = limits
    accounts.add_user(db, ADMIN, "ana", PASSWORD, "member")
    answers = _all_at_once(
        [lambda: _attempt(db, "ana", WRONG_PASSWORD, "203.0.113.9") for _ in range(60)]
    )
    assert len(real_checks(db, "ana")) == per_address  # was 23 of 60 before issue 22
    assert answers.count(accounts.WRONG) == per_address
    assert all(str(a).startswith(WAIT) for a in answers if a != accounts.WRONG)


@pytest.mark.backends("sqlite", "postgresql")
def test_the_right_password_in_a_crowd_is_refused_once_locked(db, limits, real_checks):
    per_address, _ = limits
    accounts.add_user(db, ADMIN, "ana", PASSWORD, "member")
    # Twenty at once, the right one among them: at most the limit is checked; whether the right
    # one was among those checked decides whether it got in, never a check past the limit.
    crowd = [WRONG_PASSWORD] * 19 + [PASSWORD]
    _all_at_once([lambda p=p: _attempt(db, "ana", p, "203.0.113.9") for p in crowd])
    assert len(real_checks(db, "ana")) <= per_address
    # Now lock it (this address's failures reach the limit): a second crowd with the right
    # password in it checks nothing more and lets nobody in.
    for _ in range(per_address + 1):
        if str(_attempt(db, "ana", WRONG_PASSWORD, "203.0.113.9")).startswith(WAIT):
            break
    before = len(real_checks(db, "ana"))
    answers = _all_at_once(
        [lambda p=p: _attempt(db, "ana", p, "203.0.113.9") for p in [PASSWORD] * 5 + crowd]
    )
    assert all(str(a).startswith(WAIT) for a in answers), answers
    assert len(real_checks(db, "ana")) == before


def _guess_in_a_process(home: str, count: int, start: object, out: object) -> None:
    """A separate process guessing `count` times (its own interpreter and connection pool)."""
    os.environ["SEEDLAB_HOME"] = home
    from db.session import get_db as process_db
    from engine.core.settings import Settings as ProcessSettings
    from engine.services import accounts as process_accounts

    db = process_db(ProcessSettings.from_env())
    real = user_store.get_user(db, "ana").password_hash
    original = process_accounts.verify_password
    checks = []

    def counting(password_hash: str, password: str) -> bool:
        checks.append(password_hash == real)
        return original(password_hash, password)

    process_accounts.verify_password = counting
    start.wait()  # type: ignore[attr-defined]
    for _ in range(count):
        try:
            process_accounts.authenticate(db, "ana", WRONG_PASSWORD, address="203.0.113.7")
        except process_accounts.LoginError:
            pass
    out.put(sum(checks))  # type: ignore[attr-defined]


def test_parallel_processes_check_no_more_than_the_limit(settings, db, limits):
    per_address, _ = limits
    accounts.add_user(db, ADMIN, "ana", PASSWORD, "member")
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Barrier(6), ctx.Queue()
    procs = [
        ctx.Process(target=_guess_in_a_process, args=(str(settings.home), 4, start, out))
        for _ in range(6)
    ]
    for p in procs:
        p.start()
    counts = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert sum(counts) == per_address, counts  # 24 attempts from 6 processes, 5 checked


# ---------------------------------------------------------------- who can lock whom


def test_one_address_cannot_lock_a_user_out(db, limits, real_checks):
    per_address, per_user = limits
    accounts.add_user(db, ADMIN, "ana", PASSWORD, "member")
    answers = _all_at_once(
        [lambda: _attempt(db, "ana", WRONG_PASSWORD, "198.51.100.66") for _ in range(60)]
    )
    assert answers.count(accounts.WRONG) == per_address < per_user
    # The attacker's address waits; ana, from her own address, is not locked out.
    assert accounts.locked_until(db, "ana") is None
    assert _attempt(db, "ana", PASSWORD, "192.0.2.10") == Actor("ana", "member")
    # Past the wait the attacker gets one more guess, and then waits twice as long.
    after_wait = utcnow() + timedelta(minutes=16)
    with pytest.raises(accounts.LoginError, match="Wrong"):
        accounts.authenticate(db, "ana", WRONG_PASSWORD, after_wait, address="198.51.100.66")
    with pytest.raises(accounts.AddressWaits, match="try again in 30 minutes"):
        accounts.authenticate(db, "ana", WRONG_PASSWORD, after_wait, address="198.51.100.66")


def test_many_addresses_make_a_user_wait_but_not_at_home(db, limits, real_checks):
    _, per_user = limits
    accounts.add_user(db, ADMIN, "ana", PASSWORD, "member")
    home = "192.0.2.99"
    assert _attempt(db, "ana", PASSWORD, home) == Actor("ana", "member")
    for i in range(per_user):  # a distributed guesser: one failure from each of 20 addresses
        _attempt(db, "ana", WRONG_PASSWORD, f"198.51.100.{i}")
    assert accounts.locked_until(db, "ana") is not None
    checked = len(real_checks(db, "ana"))
    # Waiting: even the right password from a fresh address is refused, without being checked,
    # with the very sentence a wrong password gets.
    assert _attempt(db, "ana", PASSWORD, "192.0.2.10") == accounts.WRONG
    assert len(real_checks(db, "ana")) == checked
    # From the address she logged in from before, ana is not kept out...
    assert _attempt(db, "ana", PASSWORD, home) == Actor("ana", "member")
    # ...and an admin's unlock lets her in from anywhere.
    accounts.unlock_user(db, ADMIN, "ana")
    assert _attempt(db, "ana", PASSWORD, "192.0.2.10") == Actor("ana", "member")


def test_ipv6_clients_are_counted_by_their_64_network(db, limits):
    per_address, _ = limits
    accounts.add_user(db, ADMIN, "ana", PASSWORD, "member")
    answers = [
        _attempt(db, "ana", WRONG_PASSWORD, f"2001:db8:1:2::{i:x}") for i in range(per_address + 1)
    ]
    assert answers[-1] == accounts.wait_sentence(15)  # every address of one /64 shares a limit
    assert _attempt(db, "ana", PASSWORD, "2001:db8:1:3::1") == Actor("ana", "member")
    assert accounts.address_key("::ffff:192.0.2.1") == "192.0.2.1"


def test_unknown_wrong_and_waiting_get_the_same_answer(db, limits):
    _, per_user = limits
    accounts.add_user(db, ADMIN, "ana", PASSWORD, "member")
    accounts.add_user(db, ADMIN, "lou", PASSWORD, "member")
    for i in range(per_user):
        _attempt(db, "lou", WRONG_PASSWORD, f"198.51.100.{i}")
    wrong = _attempt(db, "ana", WRONG_PASSWORD, "192.0.2.1")
    unknown = _attempt(db, "nobody", PASSWORD, "192.0.2.2")
    waiting = _attempt(db, "lou", PASSWORD, "192.0.2.3")
    assert wrong == unknown == waiting == accounts.WRONG
    # An unknown name is counted like a known one: its count says nothing either.
    for i in range(per_user):
        _attempt(db, "nobody", WRONG_PASSWORD, f"198.51.100.{i}")
    assert accounts.locked_until(db, "nobody") is not None


# ---------------------------------------------------------------- the real server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`seedlab dashboard` with access control on, behind a "proxy" on localhost: the test
    names each request's client address in X-Forwarded-For, as a proxy would."""
    home = tmp_path_factory.mktemp("login") / "home"
    env = child_env()
    env.update(
        SEEDLAB_HOME=str(home),
        SEEDLAB_AUTH="on",
        SEEDLAB_TRUSTED_PROXIES="127.0.0.1,::1",
        SEEDLAB_LOGIN_MAX_FAILURES="5",
    )
    env.pop("SEEDLAB_DB_URL", None)
    running = start_server(seedlab_cmd("dashboard"), env, home)
    yield running
    stop_server(running.proc)


def _server_db(server: Server) -> Engine:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEEDLAB_HOME", str(server.home))
        patch.delenv("SEEDLAB_DB_URL", raising=False)
        return get_db(Settings.from_env())


def _post(
    server: Server, path: str, fields: dict[str, str] | None = None, **headers: str
) -> tuple[int, dict[str, str], list[str]]:
    """Status, headers and Set-Cookie lines of one POST, redirects not followed."""
    url = urlsplit(server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    body = urlencode(fields or {})
    conn.request(
        "POST",
        path,
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    return (
        response.status,
        {k.lower(): v for k, v in response.getheaders()},
        response.msg.get_all("set-cookie") or [],
    )


def _log_in(server: Server, name: str, password: str, address: str, **headers: str):  # noqa: ANN202
    return _post(
        server,
        "/auth/login",
        {"seedlab_user": name, "seedlab_password": password},
        **{"X-Forwarded-For": address, **headers},
    )


def _page_elements(server: Server, cookie: str | None) -> set[str]:
    """The kinds of element the default page draws for a browser sending `cookie`."""
    return page_elements(server.url, cookie)[1]


def _cookie_pair(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0]


@pytest.mark.slow
def test_the_cookie_is_httponly_and_a_stolen_one_is_refused_after_logout(server: Server):
    db = _server_db(server)
    accounts.add_user(db, ADMIN, "ana", PASSWORD, "member")
    status, headers, cookies = _log_in(server, "ana", PASSWORD, "192.0.2.50")
    assert (status, headers["location"]) == (303, "/")
    (cookie,) = cookies
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags  # plain HTTP here, and the proxy did not say HTTPS
    token = _cookie_pair(cookie).split("=", 1)[1]
    assert len(token) >= 43 and "ana" not in token  # a random id, nothing readable

    # The page opens for that cookie (the Home page's metrics, not the login form).
    stolen = _cookie_pair(cookie)
    assert "metric" in _page_elements(server, stolen)
    # Log out (the route; the page's button calls the same accounts.end_session).
    status, headers, cleared = _post(server, "/auth/logout", Cookie=stolen)
    assert status == 303 and any("Max-Age=0" in c or "max-age=0" in c for c in cleared)
    # The copy kept by an attacker opens nothing any more: the login form.
    elements = _page_elements(server, stolen)
    assert "html" in elements and "metric" not in elements


@pytest.mark.slow
def test_secure_follows_the_trusted_proxy(server: Server):
    db = _server_db(server)
    accounts.add_user(db, ADMIN, "sam", PASSWORD, "member")
    _, _, cookies = _log_in(server, "sam", PASSWORD, "192.0.2.51", **{"X-Forwarded-Proto": "https"})
    assert "secure" in {p.strip().lower() for p in cookies[0].split(";")}


@pytest.mark.slow
def test_the_server_answers_unknown_wrong_and_waiting_alike(server: Server):
    db = _server_db(server)
    accounts.add_user(db, ADMIN, "bo", PASSWORD, "member")
    accounts.add_user(db, ADMIN, "lou", PASSWORD, "member")
    for i in range(20):  # lou waits: 20 failures, from 20 addresses
        _log_in(server, "lou", WRONG_PASSWORD, f"198.51.100.{i}")
    wrong = _log_in(server, "bo", WRONG_PASSWORD, "192.0.2.61")
    unknown = _log_in(server, "nobody", PASSWORD, "192.0.2.62")
    waiting = _log_in(server, "lou", PASSWORD, "192.0.2.63")
    assert wrong[0] == unknown[0] == waiting[0] == 303
    assert wrong[1]["location"] == unknown[1]["location"] == waiting[1]["location"]
    assert wrong[1]["location"] == "/?login=wrong"
    assert wrong[2] == unknown[2] == waiting[2] == []  # no cookie for any of them


@pytest.mark.slow
def test_the_server_counts_per_address_and_refuses_other_sites(server: Server):
    db = _server_db(server)
    accounts.add_user(db, ADMIN, "cy", PASSWORD, "member")
    locations = [
        _log_in(server, "cy", WRONG_PASSWORD, "198.51.100.200")[1]["location"] for _ in range(7)
    ]
    assert locations[:5] == ["/?login=wrong"] * 5
    assert locations[5:] == ["/?login=wait&minutes=15"] * 2
    # Another address (cy herself) is not held back by that one.
    assert _log_in(server, "cy", PASSWORD, "192.0.2.70")[2]
    # A form on another site cannot log a visitor in (login CSRF).
    status, _, cookies = _log_in(
        server, "cy", PASSWORD, "192.0.2.70", Origin="https://evil.example"
    )
    assert status == 403 and cookies == []


@pytest.mark.slow
def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(tmp_path: Path):
    # uvicorn alone would believe X-Forwarded-For from localhost; SEEDLAB_TRUSTED_PROXIES unset
    # must mean no proxy is believed, so a local client cannot step around the address limit.
    home = tmp_path / "home"
    env = child_env()
    env.update(SEEDLAB_HOME=str(home), SEEDLAB_AUTH="on")
    for name in ("SEEDLAB_DB_URL", "SEEDLAB_TRUSTED_PROXIES", "FORWARDED_ALLOW_IPS"):
        env.pop(name, None)
    running = start_server(seedlab_cmd("dashboard"), env, home)
    try:
        db = _server_db(running)
        accounts.add_user(db, ADMIN, "ana", PASSWORD, "member")
        headers = {"X-Forwarded-Proto": "https"}
        locations = [
            _log_in(running, "ana", WRONG_PASSWORD, f"198.51.100.{i}", **headers)[1]["location"]
            for i in range(6)
        ]
        _, _, cookies = _log_in(running, "ana", PASSWORD, "192.0.2.1", **headers)
    finally:
        stop_server(running.proc)
    # Six "different" addresses were one (the real peer): the sixth already waits.
    assert locations[-1].startswith("/?login=wait")
    assert cookies == []  # and the right password, "from" yet another address, waits too


def test_client_address_believes_only_trusted_proxies():
    from starlette.requests import Request

    from dashboard.web import client_address, served_over_https

    def request(peer: str, **headers: str) -> Request:
        raw = [(k.lower().replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        return Request(
            {
                "type": "http",
                "client": (peer, 1234),
                "headers": raw,
                "scheme": "http",
                "server": ("here", 80),
                "path": "/",
                "query_string": b"",
                "method": "POST",
            }
        )

    proxied = Settings(home=Path("."), db_url="sqlite://", trusted_proxies="10.0.0.0/8")
    plain = Settings(home=Path("."), db_url="sqlite://")
    forged = request("203.0.113.5", X_Forwarded_For="1.2.3.4", X_Forwarded_Proto="https")
    assert client_address(forged, proxied) == "203.0.113.5"  # not a proxy: header ignored
    assert not served_over_https(forged, proxied)
    via = request(
        "10.0.0.2", X_Forwarded_For="1.2.3.4, 198.51.100.7, 10.0.0.9", X_Forwarded_Proto="https"
    )
    # Right to left past the trusted hops: the first address a trusted proxy saw.
    assert client_address(via, proxied) == "198.51.100.7"
    assert served_over_https(via, proxied)
    assert client_address(via, plain) == "10.0.0.2" and not served_over_https(via, plain)
    forced = Settings(home=Path("."), db_url="sqlite://", https=True)
    assert served_over_https(forged, forced)


# ---------------------------------------------------------------- ending sessions


def test_admin_page_lists_a_users_sessions_and_ends_them(settings, db, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from dashboard import auth
    from tests.support.pages import APP, TIMEOUT, button, go

    monkeypatch.setenv("SEEDLAB_AUTH", "on")
    root = Actor("root", "admin")
    accounts.add_user(db, ADMIN, "root", PASSWORD, "admin")
    ana = Actor("ana", "member")
    accounts.add_user(db, ADMIN, "ana", PASSWORD, "member")
    tokens = [accounts.start_session(db, ana, f"192.0.2.{i}").token for i in (1, 2)]
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[auth.SESSION_TOKEN] = accounts.start_session(db, root).token
    at = go(at.run(), "views/admin.py")
    at.selectbox(key="sessions_of").select("ana").run()
    sessions = at.dataframe[1].value
    assert list(sessions["from"]) == ["192.0.2.2", "192.0.2.1"]  # newest first
    button(at, "End all their sessions").click().run()
    assert not at.exception
    assert [accounts.session_actor(db, t) for t in tokens] == [None, None]
    assert accounts.list_sessions(db, root, "ana") == []


def test_cli_lists_and_ends_sessions(settings, db):
    from tests.support.commands import cli

    accounts.add_user(db, ADMIN, "ana", PASSWORD, "member")
    ana = Actor("ana", "member")
    first, second = (accounts.start_session(db, ana, f"192.0.2.{i}") for i in (1, 2))
    listed = cli("users", "sessions", "ana")
    assert listed.returncode == 0 and "192.0.2.1" in listed.stdout and "192.0.2.2" in listed.stdout
    one = cli("users", "end-sessions", "ana", "--session", str(first.id))
    assert one.returncode == 0 and "Ended 1 session of 'ana'." in one.stdout
    assert accounts.session_actor(db, first.token) is None
    assert accounts.session_actor(db, second.token) == ana
    assert "Ended 1 session of 'ana'." in cli("users", "end-sessions", "ana").stdout
    assert accounts.session_actor(db, second.token) is None
    assert "no open session" in cli("users", "sessions", "ana").stdout
