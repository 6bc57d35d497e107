"""``GET /v1/verifications`` over a log stored in blocks, on a real server on each engine:
odd values of every filter are an answer (a page, an empty one) or a clear 422, never a
500; a page's ``since`` and ``before`` inside a block of one run of request ids."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import pg_schema
from tests.service.conftest import Live, start_live
from tests.service.test_verifications_api import entries


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Live]:  # fmt: skip
    tmp = tmp_path_factory.mktemp("blocks")
    if request.param == "sqlite":
        yield from start_live(tmp)
        return
    with pg_schema(request.getfixturevalue("pg_database"), "blocks") as url:
        yield from start_live(tmp, database_url=url)


@pytest.fixture(scope="module")
def run(served: Live) -> tuple[str, list[dict[str, Any]]]:
    """Six requests of one key and client, made together: one block (a run of ids)."""
    key, record = served.make_key()
    client = served.client()
    for _ in range(6):
        assert client.get("/auth", headers={"Authorization": f"Bearer {key}"}).status_code == 204
    found = entries(served, 6, key_id=record["id"])
    assert len(found) == 6
    return record["id"], found


@pytest.mark.parametrize(
    "params",
    [
        {"since": "0001-01-01T00:00:00+00:00"}, {"since": "0001-01-01T00:00:00+14:00"},
        {"since": "9999-12-31T23:59:59.999999-14:00"}, {"since": "9999-12-31T23:59:59Z"},
        {"since": "1970-01-01T00:00:00Z"}, {"request_id": ""}, {"request_id": "\\"},
        {"request_id": '"'}, {"request_id": '","'}, {"request_id": "]"},
        {"request_id": "\u2028\x1f"}, {"owner": " "}, {"outcome": "' OR 1=1 --"},
        {"key_id": "%"}, {"limit": 1000, "before": 2**63 - 1},
    ],
)
def test_odd_filters_are_a_page_never_an_error(
    served: Live, run: tuple[str, list[dict[str, Any]]], params: dict[str, Any]
) -> None:
    found = served.root.get("/v1/verifications", params=params)
    assert found.status_code == 200, found.text
    shown = found.json()["verifications"]
    if "since" in params and params["since"].startswith("9999"):
        assert shown == []
    elif "since" in params or "before" in params:
        assert {e["id"] for e in run[1]} <= {e["id"] for e in shown}
    else:
        assert shown == []


@pytest.mark.parametrize(
    "params",
    [{"since": "yesterday"}, {"since": "2026-13-01T00:00:00Z"}, {"since": "1e400"},
     {"since": "2026-01-01T00:00:00"}, {"limit": 0}, {"limit": 1001}, {"before": "nan"},
     {"request_id": "x" * 129}],
)
def test_garbage_is_a_clear_422(served: Live, params: dict[str, Any]) -> None:
    found = served.root.get("/v1/verifications", params=params)
    assert found.status_code == 422, found.text


def test_since_and_before_inside_a_block_are_exact(
    served: Live, run: tuple[str, list[dict[str, Any]]]
) -> None:
    """The block's entries newest first; ``since`` one of them (as shown) keeps it and
    the newer ones; ``before`` one of them gives the older ones, page after page."""
    key_id, shown = run
    assert [e["id"] for e in shown] == sorted((e["id"] for e in shown), reverse=True)
    for place in range(6):
        since = shown[place]["at"]
        assert datetime.fromisoformat(since) >= datetime.fromisoformat(shown[-1]["at"])
        page = served.root.get("/v1/verifications", params={"key_id": key_id, "since": since})
        assert [e["id"] for e in page.json()["verifications"]] == [
            e["id"] for e in shown if e["at"] >= since]
        after = served.root.get("/v1/verifications",
                                params={"key_id": key_id, "before": shown[place]["id"]})
        assert after.json()["verifications"] == shown[place + 1:]
    for entry in shown:
        by_id = served.root.get("/v1/verifications", params={"request_id": entry["request_id"]})
        assert by_id.json()["verifications"] == [entry]
