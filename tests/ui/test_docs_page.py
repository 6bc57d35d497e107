"""``/docs`` on a real ``keyturn serve``: Swagger UI from the package only, under a strict
Content-Security-Policy, working in a real browser that enforces it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from tests.ui.conftest import Server

SOURCES = re.compile(r'(?:src|href)="([^"]+)"')


def test_the_page_and_its_assets_come_from_the_service_alone(server: Server) -> None:
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                      "frame-ancestors 'none'", "connect-src 'self'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "<script>" not in page.text  # no inline code: every script has a src
    sources = SOURCES.findall(page.text)
    assert len(sources) >= 4
    for source in sources:
        url = urljoin(f"{server.url}/docs", source)
        assert urlsplit(url).netloc == urlsplit(server.url).netloc, source
        asset = httpx.get(url)
        assert asset.status_code == 200, source
        assert asset.headers["x-content-type-options"] == "nosniff"
    licence = httpx.get(f"{server.url}/docs/static/LICENSE")
    assert licence.status_code == 200 and "Apache License" in licence.text


def test_swagger_ui_runs_under_the_policy_in_a_real_browser(server: Server, page: Any) -> None:
    from playwright.sync_api import expect

    violations: list[str] = []
    elsewhere: list[str] = []
    page.on("console", lambda m: violations.append(m.text)
            if "Content Security Policy" in m.text else None)
    page.on("request", lambda r: elsewhere.append(r.url)
            if urlsplit(r.url).netloc != urlsplit(server.url).netloc
            and not r.url.startswith("data:") else None)
    page.goto(f"{server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("keyturn")
    expect(page.locator(".opblock-tag-section").first).to_be_visible()
    # The "Authorize" dialog, where admins paste keys, opens and works.
    page.get_by_role("button", name=re.compile("Authorize")).first.click()
    expect(page.locator(".auth-container input").first).to_be_visible()
    page.locator(".auth-container input").first.fill(server.root_key)
    page.locator(".auth-container button.authorize").first.click()
    page.keyboard.press("Escape")
    stored = page.evaluate("() => JSON.stringify(window.localStorage)")
    assert server.root_key not in stored  # not persisted in the browser
    assert violations == []
    assert elsewhere == []
