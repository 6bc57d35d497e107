"""Sign-in against a real ``keyturn serve``: sessions bounded per key, so no key can sign
other admins out, and repeated failures from one client throttled with a clear page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from keyturn.outcomes import CATALOGUE
from keyturn.ui.sessions import PER_KEY_LIMIT, SessionStore
from tests.service.conftest import KEY_RE, ServeProcess

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Served:
    url: str
    root: str

    def key(self, *scopes: str) -> str:
        answer = httpx.post(f"{self.url}/v1/keys", json={"name": "k", "scopes": list(scopes)},
                            headers={"authorization": f"Bearer {self.root}"})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["key"])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    db = f"sqlite:///{tmp_path / 'keyturn.db'}"
    with ServeProcess("--db", db, env={"KEYTURN_ACCESS_LOG": "false"}, cwd=tmp_path) as process:
        yield Served(process.url, KEY_RE.findall(process.stderr)[0])
        assert process.stop() == 0


def sign_in(client: httpx.Client, key: str) -> httpx.Response:
    form = client.get("/ui/login")
    token = CSRF_RE.search(form.text)
    assert token is not None, form.text
    return client.post("/ui/login", data={"csrf": token.group(1), "key": key})


def signed_in(client: httpx.Client) -> bool:
    return client.get("/ui/keys").status_code == 200


def test_one_key_signing_in_over_and_over_ends_only_its_own_sessions(served: Served) -> None:
    """A low-privilege key signing in again and again ends its own oldest sessions, never
    another admin's; its newest stay usable."""
    admin = httpx.Client(base_url=served.url, timeout=20)
    assert sign_in(admin, served.root).status_code == 303 and signed_in(admin)
    auditor = served.key("audit:read")
    first = httpx.Client(base_url=served.url, timeout=20)
    assert sign_in(first, auditor).status_code == 303
    assert first.get("/ui/audit").status_code == 200
    with httpx.Client(base_url=served.url, timeout=20) as attacker:
        for _ in range(PER_KEY_LIMIT):
            attacker.cookies.clear()
            assert sign_in(attacker, auditor).status_code == 303
        assert attacker.get("/ui/audit").status_code == 200
    assert first.get("/ui/audit").status_code != 200  # its own oldest session ended
    assert signed_in(admin)
    admin.close()
    first.close()


def test_the_global_bound_cannot_push_out_another_keys_session() -> None:
    """The issue's 10,001 sign-ins, on a store with the global bound at 100: a key that
    signs in past it pushes out only sessions of its own."""
    store = SessionStore(900, signed_in_limit=100, per_key_limit=16)
    admins = [store.sign_in(None, f"key_admin{i}", "h") for i in range(90)]
    for _ in range(10_001):
        store.sign_in(None, "key_low", "h")
    assert all(store.get(s.id) is s for s in admins)
    assert store.sessions_of("key_low") == 10  # what the bound leaves it
    # Many keys each at their own bound: the busiest key pays, never the newcomer's peers.
    crowded = SessionStore(900, signed_in_limit=40, per_key_limit=16)
    kept = crowded.sign_in(None, "key_quiet", "h")
    for i in range(200):
        crowded.sign_in(None, f"key_{i % 3}", "h")
    assert crowded.get(kept.id) is kept


def test_failed_sign_ins_are_throttled_per_client_with_a_clear_page(served: Served) -> None:
    wrong = "kt_live_" + "A" * 36
    statuses = []
    with httpx.Client(base_url=served.url, timeout=20) as client:
        for _ in range(12):
            statuses.append(sign_in(client, wrong).status_code)
        assert statuses[:10] == [401] * 10
        refused = sign_in(client, served.root)  # even the right key, while throttled
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert CATALOGUE["signin_throttled"].title in refused.text
    assert "wait" in refused.text
    assert served.root not in refused.text and wrong not in refused.text
    # The API is another door, with its own answers: untouched.
    answer = httpx.get(f"{served.url}/v1/keys", headers={"authorization": f"Bearer {served.root}"})
    assert answer.status_code == 200


def test_a_few_mistakes_never_hold_an_admin_up(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=20) as client:
        for _ in range(3):
            assert sign_in(client, "not a key").status_code in (400, 401)
        assert sign_in(client, served.root).status_code == 303
        assert signed_in(client)
