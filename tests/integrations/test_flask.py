"""Flask: the extension and ``@require_key``, through Flask's test client."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient

from keyturn.integrations.flask import Keyturn, require_key
from tests.integrations.cases import CASES, REALM, Case, Keys, case_ids, check, last, observed


def flask_app(keys: Keys) -> Flask:
    app = Flask(__name__)
    Keyturn(app, keys.manager, realm=REALM)

    @app.get("/items")
    @require_key(scopes=["items:read"])
    def items() -> dict[str, Any]:
        return g.keyturn_key.as_dict()

    @app.get("/admin")
    @require_key(scopes=["admin"])
    def admin() -> dict[str, Any]:
        return g.keyturn_key.as_dict()

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/bare")
    @require_key
    def bare() -> dict[str, str]:
        return {"name": g.keyturn_key.name}

    return app


@pytest.fixture(scope="module")
def client(keys: Keys) -> FlaskClient:
    return flask_app(keys).test_client()


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_flask_answers_every_case(case: Case, client: FlaskClient, keys: Keys) -> None:
    r = last(
        case,
        lambda: client.get(case.path, headers=keys.headers(case), query_string=keys.query(case)),
    )
    check(case, observed(r.status_code, r.headers.items(), r.data), keys)


def test_bare_decorator_needs_a_key_and_no_scope(client: FlaskClient, keys: Keys) -> None:
    assert client.get("/bare").status_code == 401
    r = client.get("/bare", headers={"x-api-key": keys.values["other"]})
    assert r.json == {"name": "other"}


def test_app_factory_pattern(keys: Keys) -> None:
    keyturn = Keyturn()
    app = Flask(__name__)

    @app.get("/x")
    @require_key
    def x() -> str:
        return "ok"

    keyturn.init_app(app, keys.manager)
    assert app.test_client().get("/x", headers={"x-api-key": keys.values["valid"]}).text == "ok"


def test_without_the_extension_the_error_says_what_to_do() -> None:
    app = Flask(__name__)

    @app.get("/x")
    @require_key
    def x() -> str:  # pragma: no cover - never reached
        return "ok"

    app.testing = True
    with pytest.raises(RuntimeError, match=r"Keyturn\(app, keys\)"):
        app.test_client().get("/x")


def test_scopes_given_as_a_string_are_refused() -> None:
    with pytest.raises(TypeError, match="list of scopes"):
        require_key(scopes="admin")
