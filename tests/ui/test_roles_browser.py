"""The Roles page in Chromium: define a role, give it to a key on the key page, see the
key's effective scopes, and every page passes axe-core (WCAG 2.1 A and AA)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.ui.axe import accessible
from tests.ui.conftest import Server, sign_in, unique


def test_define_a_role_and_give_it_to_a_key(page: Any, server: Server) -> None:
    key, record = server.make_key("orders:read", name=unique("clerk"))
    role = unique("desk").replace(" ", "-")
    sign_in(page, server, to="/ui/roles")
    accessible(page)
    page.get_by_label("Name").fill(role)
    page.get_by_label("Scopes").fill("orders:read orders:write")
    page.get_by_role("button", name="Save role").click()
    expect(page.get_by_role("heading", name=f"Role {role}")).to_be_visible()
    accessible(page)
    assert server.auth(key, **{"X-Keyturn-Required-Scopes": "orders:write"}).status_code == 403

    page.goto(f"{server.url}/ui/keys/{record['id']}")
    page.get_by_label("Roles").fill(role)
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("link", name=role)).to_be_visible()
    expect(page.locator("dd code.scope").filter(has_text="orders:write")).to_be_visible()
    accessible(page)
    assert server.auth(key, **{"X-Keyturn-Required-Scopes": "orders:write"}).status_code == 204

    # Held: the page refuses to delete it, and says by how many.
    page.get_by_role("link", name=role).click()
    page.get_by_role("button", name="Delete the role").click()
    expect(page.get_by_text("held by 1 key")).to_be_visible()
