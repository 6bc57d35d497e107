"""An owner is read one way on every face: as keys store it, trimmed (``/v1/owners/%20acme``
is ``acme``, and so is ``keyturn owners show " acme"``). The filters of ``GET /v1/keys``
and ``GET /v1/verifications`` compared the raw text, so ``?owner=%20acme%20co`` found
none of ``acme co``'s keys or entries."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.service.conftest import Live, start_live


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("owner-reading"))


def test_owner_filters_read_the_owner_as_stored(live: Live) -> None:
    key, record = live.make_key(owner="acme co")
    assert live.client(key).get("/auth").status_code == 204
    listed = live.root.get("/v1/keys", params={"owner": " acme co "}).json()["keys"]
    assert [k["id"] for k in listed] == [record["id"]]
    deadline = time.monotonic() + 5
    while True:
        found = live.root.get("/v1/verifications", params={"owner": " acme co"}).json()
        if found["verifications"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {e["key_id"] for e in found["verifications"]} == {record["id"]}
