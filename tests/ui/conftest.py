"""A real ``keyturn serve`` on loopback and a real headless Chromium driving its dashboard.

Chromium is Debian's ``chromium`` package (``scripts/services.sh`` installs it), driven by
Playwright for Python with ``executable_path``: Playwright's own browser download is never
used. Each pytest-xdist worker starts its own server (SQLite in a temporary folder, port 0)
and its own browser; each test gets a fresh browser context, so cookies never leak between
tests, and makes its own keys, so no test depends on another.

Without Chromium or Playwright the tests skip locally; under ``CI=true`` they fail instead,
so a CI machine that lost its browser cannot pass by skipping.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import in_ci
from tests.service.conftest import KEY_RE, ServeProcess

CHROMIUM = os.environ.get("KEYTURN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


def _unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class Server:
    """A running ``keyturn serve``: its URL and root key, and a client for its admin API."""

    url: str
    root_key: str = field(repr=False)
    process: ServeProcess
    db_url: str = ""

    def api(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"authorization": f"Bearer {key or self.root_key}"},
            timeout=10,
        )

    def make_key(
        self, *scopes: str, name: str | None = None, **fields: Any
    ) -> tuple[str, dict[str, Any]]:
        """A key made through the admin API: (the full key, its record)."""
        body = {"name": name or unique("key"), "scopes": list(scopes), **fields}
        with self.api() as client:
            answer = client.post("/v1/keys", json=body)
        assert answer.status_code == 201, answer.text
        record = answer.json()
        return record.pop("key"), record

    def auth(self, key: str, **headers: str) -> httpx.Response:
        """What forward-auth answers for a request carrying ``key``."""
        return httpx.get(
            f"{self.url}/auth", headers={"authorization": f"Bearer {key}", **headers}, timeout=10
        )


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("ui-serve")
    env = {
        # Usage counts reach the store quickly, so a test sees its requests in the chart.
        "KEYTURN_USAGE_FLUSH_INTERVAL": "0.2",
        "KEYTURN_ACCESS_LOG": "false",
        # The webhook pages' tests post to a receiver on loopback.
        "KEYTURN_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    db_url = f"sqlite:///{tmp / 'keyturn.db'}"
    with ServeProcess("--db", db_url, env=env, cwd=tmp) as process:
        keys = KEY_RE.findall(process.stderr)
        assert len(keys) == 1, process.stderr
        yield Server(process.url, keys[0], process, db_url)
        process.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install playwright)")
    # Generous waits: CI machines are shared. A passing check returns as soon as it holds.
    expect.set_options(timeout=15_000)
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def shared_context(browser: Any) -> Iterator[Any]:
    """One browser context per worker (making one costs about a second on a busy machine);
    each test starts from it with no cookies, so no session carries over."""
    made = browser.new_context(viewport={"width": 1280, "height": 900})
    made.set_default_timeout(15_000)
    yield made
    made.close()


@pytest.fixture
def context(shared_context: Any) -> Iterator[Any]:
    shared_context.clear_cookies()
    yield shared_context
    for opened in shared_context.pages:
        opened.close()
    shared_context.clear_cookies()


@pytest.fixture
def page(context: Any) -> Any:
    return context.new_page()


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under ``test-artifacts/ui/`` (kept by CI, not by git)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    try:
        page.screenshot(path=str(path), full_page=True)
    except Exception as exc:  # Chromium now and then cannot capture a whole page at once
        if "Unable to capture screenshot" not in str(exc):
            raise
        page.screenshot(path=str(path))  # the visible part is still a record of the page
    return path


_root_cookies: list[dict[str, Any]] = []


def sign_in(page: Any, server: Server, key: str | None = None, to: str = "/ui/keys") -> None:
    """Sign in through the form, with the keyboard, as a person would, and open ``to``.
    The root key's session is made once per worker and its cookie reused: the form itself
    is tested by the tests that sign in with other keys."""
    if key is None and _root_cookies:
        page.context.add_cookies(_root_cookies)
        page.goto(server.url + to)
        if "/ui/login" not in page.url:
            return
        _root_cookies.clear()  # that session ended (idle timeout): sign in again
    page.goto(f"{server.url}/ui/login?next={quote(to, safe='/')}")
    page.get_by_label("Admin key").fill(key or server.root_key)
    page.get_by_label("Admin key").press("Enter")
    page.wait_for_load_state()
    assert "/ui/login" not in page.url, page.content()
    if key is None:
        _root_cookies[:] = page.context.cookies()


def csrf_token(page: Any) -> str:
    match = CSRF_RE.search(page.content())
    assert match, "no CSRF token on the page"
    return match.group(1)
