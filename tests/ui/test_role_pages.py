"""The dashboard's roles page and roles on the key pages, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keyturn import Actor
from tests.service.conftest import Live, start_live
from tests.ui.test_http import signed_in, signed_in_to
from tests.ui.test_restrictions_pages import page_expiry

OPERATOR = Actor.operator("test")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("ui-roles"))


def test_define_change_and_delete_a_role(live: Live) -> None:
    client, csrf = signed_in(live)
    assert 'href="/ui/roles"' in client.get("/ui/keys").text
    made = client.post(
        "/ui/roles",
        data={"csrf": csrf, "name": "clerk", "scopes": "orders:read", "description": "desk"},
    )
    assert made.status_code == 303 and made.headers["location"] == "/ui/roles/clerk"
    listed = client.get("/ui/roles").text
    assert "clerk" in listed and "orders:read" in listed and "desk" in listed
    bad = client.post("/ui/roles", data={"csrf": csrf, "name": "no good", "scopes": ""})
    assert bad.status_code == 422 and "role name" in bad.text
    changed = client.post(
        "/ui/roles/clerk", data={"csrf": csrf, "scopes": "orders:read orders:write"}
    )
    assert changed.status_code == 303
    assert live.manager.roles.get(OPERATOR, "clerk").scopes == {"orders:read", "orders:write"}
    # Held by a key: deletion refused with the count, nothing changed.
    live.manager.create_key("holder", roles=["clerk"])
    page = client.get("/ui/roles/clerk").text
    assert "/ui/keys?role=clerk" in page
    assert "holder" in client.get("/ui/keys?role=clerk").text
    refused = client.post("/ui/roles/clerk/delete", data={"csrf": csrf})
    assert refused.status_code == 409 and "held by 1 key" in refused.text
    assert live.manager.roles.get(OPERATOR, "clerk")
    live.manager.roles.put(OPERATOR, "spare", [])
    assert client.post("/ui/roles/spare/delete", data={"csrf": csrf}).status_code == 303
    assert client.get("/ui/roles/spare").status_code == 404


def test_roles_on_the_key_form_and_page(live: Live) -> None:
    live.manager.roles.put(OPERATOR, "auditor", ["audit:read"])
    client, csrf = signed_in(live)
    made = client.post("/ui/keys/new", data={"csrf": csrf, "name": "with-role",
                                              "roles": "auditor"})  # fmt: skip
    assert made.status_code == 201, made.text
    record = next(r for r in live.manager.list_keys() if r.name == "with-role")
    assert record.roles == ("auditor",)
    page = client.get(f"/ui/keys/{record.id}").text
    assert "Effective scopes" in page and "/ui/roles/auditor" in page
    unknown = client.post("/ui/keys/new", data={"csrf": csrf, "name": "x", "roles": "ghost"})
    assert unknown.status_code == 422 and "ghost" in unknown.text
    cleared = client.post(
        f"/ui/keys/{record.id}/edit",
        data={"csrf": csrf, "name": "with-role", "owner": "", "scopes": "", "allowed_ips": "",
              "roles": "", "expires_at": page_expiry(page)},
    )  # fmt: skip
    assert cleared.status_code == 303
    assert live.manager.get(record.id).roles == ()


def test_a_key_whose_role_reads_roles_signs_in_to_them(live: Live) -> None:
    live.manager.roles.put(OPERATOR, "role-viewer", ["roles:read"])
    key = live.manager.create_key("viewer", roles=["role-viewer"]).key
    client, csrf = signed_in_to(live, key, "/ui/roles")
    assert "Define a role" not in client.get("/ui/roles").text
    refused = client.post("/ui/roles", data={"csrf": csrf, "name": "x", "scopes": ""})
    assert refused.status_code == 403
