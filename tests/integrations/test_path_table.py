"""The path table every face is held to (tests/path_cases.py), through each integration on a
real server, with each request target sent exactly as written.

The integration sees the path as its server decoded it; whatever the app then routes it as,
a key short of a scope the rules ask for any of those places is refused (403), and a key
holding them all gets to the app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test.utils import override_settings

from keyturn import KeyManager
from tests.integrations import django_site, mounted_apps
from tests.integrations.servers import asgi_server, wsgi_server
from tests.path_cases import ALL_SCOPES, PATH_CASES, RULES, PathCase, send_raw

WIRE_CASES = [case for case in PATH_CASES if case.wire]


def _starlette(store: str) -> AbstractContextManager[str]:
    return asgi_server(mounted_apps.starlette_app(store, scopes=RULES))


def _fastapi(store: str) -> AbstractContextManager[str]:
    return asgi_server(mounted_apps.fastapi_app(store, scopes=RULES))


def _django(store: str) -> AbstractContextManager[str]:
    keyturn = {"KEYS": store, "SCOPES": RULES}
    middleware = ["keyturn.integrations.django.KeyturnMiddleware"]

    class Serving:
        def __enter__(self) -> str:
            self.settings = override_settings(
                ROOT_URLCONF=django_site.echoing, MIDDLEWARE=middleware, KEYTURN=keyturn
            )
            self.settings.enable()
            self.server = wsgi_server(WSGIHandler())
            return self.server.__enter__()

        def __exit__(self, *exc: Any) -> None:
            self.server.__exit__(*exc)
            self.settings.disable()

    return Serving()


FACES: dict[str, Callable[[str], AbstractContextManager[str]]] = {
    "starlette": _starlette,
    "fastapi": _fastapi,
    "django": _django,
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('table') / 'keyturn.db'}"


@pytest.fixture(scope="module")
def key_for(store: str) -> Iterator[Callable[[Iterable[str]], str]]:
    made: dict[frozenset[str], str] = {}
    manager = KeyManager(store)

    def key(scopes: Iterable[str]) -> str:
        wanted = frozenset(scopes)
        if wanted not in made:
            made[wanted] = manager.create_key("table", scopes=sorted(wanted)).key
        return made[wanted]

    yield key
    manager.close()


@pytest.fixture(scope="module")
def face(
    request: pytest.FixtureRequest, store: str, key_for: Callable[[Iterable[str]], str]
) -> Iterator[tuple[str, str]]:
    key_for(())  # the database exists before a face opens it (faces never create one)
    with FACES[request.param](store) as url:
        yield request.param, url


# An ASGI server decodes some forms (an overlong UTF-8 '%c0') away before the app sees
# them; those reach only the WSGI face.
FACE_CASES = [(name, case) for name in sorted(FACES) for case in WIRE_CASES
              if name == "django" or case.asgi]


@pytest.mark.parametrize(("face", "case"), FACE_CASES, indirect=["face"],
                         ids=[f"{name}-{case.id}" for name, case in FACE_CASES])
def test_every_form_needs_the_scopes_of_its_strictest_form(
    face: tuple[str, str], key_for: Callable[[Iterable[str]], str], case: PathCase
) -> None:
    _, url = face
    for missing in sorted(case.needs):
        short = key_for(case.needs - {missing})
        answer = send_raw(url, case.method, case.path, {"x-api-key": short})
        assert answer.status == 403, (missing, answer.status, answer.body[:200])
    answer = send_raw(url, case.method, case.path, {"x-api-key": key_for(ALL_SCOPES)})
    assert answer.status not in (401, 403), answer.body[:300]
