"""A share link in a real browser (headless Chromium through Playwright): the dashboard served
with access control on, a fresh browser context (no cookie, no login) opens the link and sees
that run and nothing else: no login form, no sidebar pages; another path (/runs?share=T,
/compare?share=T) or another run's id (?run=) shows the same run; once revoked, and for an
expired link, the page says so and shows nothing of the run. A logged-in admin's Share button
makes a compare link from the address the browser used, and that link opens only its runs.
Marked `e2e` (`make e2e`)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine, update

from db.migrate import upgrade_to_head
from db.models import share_links
from db.session import get_db, utcnow, writing
from engine.core.settings import Settings
from engine.data.demo import register_demo_datasets
from engine.services import accounts
from engine.services import share_links as sharing
from engine.services.permissions import Actor, cli_actor
from tests.support.commands import child_env, seedlab_cmd
from tests.support.data import finished_run
from tests.support.web import Server, start_server, stop_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.e2e

ADMIN = Actor("ada", "admin")
STATUS_WIDGET = '[data-testid="stStatusWidget"]'


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's launch arguments: Debian's Chromium, never a downloaded browser."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("No Chromium on this machine: `apt-get install -y chromium` as root.")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    return {**browser_type_launch_args, "executable_path": executable, "args": args}


class Site:
    def __init__(self, server: Server, settings: Settings) -> None:
        self.server, self.url, self.settings = server, server.url, settings
        self.db: Engine = get_db(settings)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """`seedlab dashboard` with SEEDLAB_AUTH=on and an admin account, on its own home."""
    home = tmp_path_factory.mktemp("share-e2e") / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEEDLAB_HOME", str(home))
        patch.delenv("SEEDLAB_DB_URL", raising=False)
        settings = Settings.from_env()
    settings.ensure_dirs()
    db = get_db(settings)
    upgrade_to_head(db)
    register_demo_datasets(settings, db, images=False)
    accounts.add_user(db, cli_actor(), ADMIN.name, "password-123", "admin")
    env = child_env()
    env.update(SEEDLAB_HOME=str(home), SEEDLAB_AUTH="on")
    env.pop("SEEDLAB_DB_URL", None)
    server = start_server(seedlab_cmd("dashboard"), env, Path(home))
    try:
        yield Site(server, settings)
    finally:
        stop_server(server.proc)


def _open(page: Page, url: str) -> str:
    """Go to `url`, wait until the script run has drawn the page; the main area's text."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url)
    page.wait_for_selector('[data-testid="stMain"]', timeout=60_000)
    try:  # the status widget shows up a moment after a run starts, not at all for a quick one
        page.wait_for_selector(STATUS_WIDGET, state="attached", timeout=1_500)
    except PlaywrightTimeout:
        pass
    page.wait_for_selector(STATUS_WIDGET, state="detached", timeout=60_000)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stMain\"]').innerText.trim().length > 0"
    )
    return page.locator('[data-testid="stMain"]').inner_text()


def _nothing_else(page: Page) -> None:
    """No login form, no sidebar with pages, no page links."""
    assert page.get_by_role("button", name="Log in").count() == 0
    assert page.locator('[data-testid="stSidebarNav"]').count() == 0
    assert page.locator('[data-testid="stSidebar"]').count() == 0
    assert page.locator('[data-testid="stPageLink"]').count() == 0


def test_a_share_link_in_a_fresh_browser(browser: Browser, site: Site) -> None:
    from playwright.sync_api import expect

    shown = finished_run(site.db, "iris", "shown-run", 0.9)
    other = finished_run(site.db, "iris", "other-run", 0.4)
    made = sharing.create(site.db, ADMIN, "run", shown, "7d")
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    try:
        # Without the link, access control asks for a login: the site is not open.
        _open(page, site.url)
        expect(page.get_by_role("button", name="Log in")).to_be_visible()

        for path in ("/", "/runs", "/compare", "/run"):
            text = _open(page, f"{site.url}{path}?share={made.token}&run={other}&runs={other}")
            assert f"#{shown} · shown-run" in text, (path, text)
            assert "90.0 %" in text and "other-run" not in text, (path, text)
            _nothing_else(page)
            assert page.get_by_role("dialog").count() == 0  # no "Page not found"

        sharing.revoke(site.db, ADMIN, made.link.id)
        text = _open(page, f"{site.url}/?share={made.token}")
        assert "This share link was revoked on" in text and "shown-run" not in text
        _nothing_else(page)

        expired = sharing.create(site.db, ADMIN, "run", shown, "1d")
        with writing(site.db) as conn:
            conn.execute(
                update(share_links)
                .where(share_links.c.id == expired.link.id)
                .values(expires_at=utcnow() - timedelta(minutes=1))
            )
        text = _open(page, f"{site.url}/?share={expired.token}")
        assert "This share link expired on" in text and "shown-run" not in text
    finally:
        context.close()


def test_share_button_makes_a_link_that_opens_only_its_runs(browser: Browser, site: Site) -> None:
    from playwright.sync_api import expect

    a = finished_run(site.db, "iris", "left-run", 0.6)
    b = finished_run(site.db, "iris", "right-run", 0.8)
    outside = finished_run(site.db, "iris", "outside-run", 0.3)
    admin = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = admin.new_page()
    try:
        _open(page, site.url)
        page.get_by_role("textbox", name="User name").fill(ADMIN.name)
        page.get_by_role("textbox", name="Password").fill("password-123")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_text(f"Logged in as {ADMIN.name}").first).to_be_visible()
        _open(page, f"{site.url}/compare?runs={a},{b}")
        page.get_by_role("button", name="Share").click()
        page.get_by_role("button", name="Create link").click()
        code = page.locator('[data-testid="stCode"]').filter(has_text="?share=")
        expect(code).to_be_visible(timeout=30_000)
        url = code.inner_text().strip()
    finally:
        admin.close()
    assert url.startswith(f"{site.url}/?share="), url

    visitor = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = visitor.new_page()
    try:
        text = _open(page, f"{url}&runs={outside}")
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
        assert "left-run" in text and "right-run" in text and "outside-run" not in text
        expect(page.locator('[data-testid="stDataFrame"]')).to_have_count(1)  # the metrics
        _nothing_else(page)
    finally:
        visitor.close()
