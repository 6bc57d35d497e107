"""The served OpenAPI document, held to account by schemathesis against a live server.

Every operation gets generated requests, valid and invalid (bounded so the run stays well
under a minute); each response must be no 5xx, have a documented status and content type,
and match its schema. Requests carry the root key, so they reach the handlers. The server is
the real ``keyturn serve`` process a user runs (its connection guard, body limits and
timeouts in front of the app), not the app in a thread.

The document is generated at collection time from a throwaway in-memory service, since the
cases are made then (schemathesis's lazy fixture loader does not run on this pytest); the
first test proves it is the very document the live server serves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    positive_data_acceptance,
    unsupported_method,
)

from keyturn.admin import EARLIEST, LATEST, new_key_id
from keyturn.compose import build_manager
from keyturn.config import Settings
from keyturn.keys import display_parts, generate_key, hash_key
from keyturn.record import KeyRecord
from keyturn.service.api import build_api
from keyturn.service.body_limit import SMALL_BODIES
from keyturn.service.context import build_context
from tests.service.conftest import ServeProcess


def _document() -> dict[str, Any]:
    settings = Settings(database_url="sqlite:///:memory:")
    context = build_context(settings, build_manager(settings))
    try:
        return build_api(context).openapi()
    finally:
        context.sync.close()


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT)
# The root key is made here, not by the server, because schemathesis asks for credentials
# while collecting; the fixture stores it as the live server's root key.
ROOT_KEY = generate_key()


@schema.auth()
class RootKey:
    """The run's credentials, through schemathesis's auth hook (so that its ``ignored_auth``
    check knows what to leave out): the root key as a Bearer token, and no other key."""

    def get(self, case: schemathesis.Case, context: object) -> str:
        return ROOT_KEY

    def set(self, case: schemathesis.Case, data: str, context: object) -> None:
        headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "x-api-key"}
        case.headers = {**headers, "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module")
def schema_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``keyturn serve`` on a database holding the run's root key (so it makes none)."""
    tmp = tmp_path_factory.mktemp("schemathesis")
    database = f"sqlite:///{tmp / 'keyturn.db'}"
    manager = build_manager(Settings(database_url=database))
    try:
        prefix, start, end = display_parts(ROOT_KEY)
        record = KeyRecord(
            id=new_key_id(), key_hash=hash_key(ROOT_KEY), prefix=prefix, start=start, end=end,
            name="schemathesis root", owner=None, scopes=frozenset({"*"}), metadata={},
            created_at=datetime.now(UTC), expires_at=None,
        )
        manager.store.create(record, actor="test")
    finally:
        manager.close()
    with ServeProcess("--db", database, "--no-access-log", cwd=tmp) as served:
        yield served.url


def test_the_document_is_the_served_one(schema_live: str) -> None:
    assert httpx.get(f"{schema_live}/openapi.json").json() == DOCUMENT


def _values(case: schemathesis.Case) -> list[Any]:
    body = case.body if isinstance(case.body, dict) else {}
    return [*(case.query or {}).values(), *body.values()]


def _unstorable(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return False
    if moment.utcoffset() is None:
        return False
    try:
        return not EARLIEST <= moment.astimezone(UTC) < LATEST
    except (OverflowError, ValueError):
        return True


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(case: schemathesis.Case, schema_live: str) -> None:
    # /auth answers every method (a proxy forwards WebDAV's and tomorrow's too), so the
    # check that an undocumented method gets a 405 does not apply to it.
    excluded = [unsupported_method] if case.operation.path == "/auth" else []
    # Whether keyturn may post to a webhook URL depends on where its host resolves (public
    # addresses only), which no schema can say: a well-formed URL may still be a 422.
    if case.operation.path == "/v1/webhooks" and case.method == "POST":
        excluded.append(positive_data_acceptance)
    # A quiet period must be long enough for the deployment's usage flush and cache, and
    # the longest grace at least the quiet period: relations between settings and fields
    # that the schema cannot state (its `not` and `dependentRequired` say the rest).
    if case.operation.path.endswith("/rotate") and case.method == "POST":
        excluded.append(positive_data_acceptance)
    # A key's roles must be defined ones (422 unknown_role otherwise), which depends on the
    # store; and whether a permission expression parses depends on a grammar (nested
    # parentheses) no JSON Schema can state. Either one in a body makes a 422 possible.
    body = case.body if isinstance(case.body, dict) else {}
    if body.get("roles") or body.get("permissions") is not None:
        excluded.append(positive_data_acceptance)
    # Every time keyturn stores lies from 1970 to 9998 (UTC; `admin.EARLIEST`, `LATEST`),
    # and an expiry outside is a 422 (test_admin_rules.py): JSON Schema cannot bound a date-time.
    if any(_unstorable(value) for value in _values(case)):
        excluded.append(positive_data_acceptance)
    # A body over the endpoint's cap is refused unread, with the documented 413 (a
    # rejection the negative-data check does not list among its own).
    cap = SMALL_BODIES.get(case.operation.path, Settings().max_body_size)
    too_large = isinstance(case.body, (dict, list, str)) and len(json.dumps(case.body)) > cap
    if too_large:
        excluded.append(negative_data_rejection)
    response = case.call_and_validate(base_url=schema_live, excluded_checks=excluded)
    assert response.status_code < 500
    if too_large:
        assert 400 <= response.status_code < 500, response.text  # refused, never taken
