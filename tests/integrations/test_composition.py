"""The integrations build their manager as ``keyturn serve`` does (one composition root).

- The URL form only reads: a SQLite file that does not exist is refused, naming its
  absolute path, and is not created (an empty database would answer ``unknown_key`` to
  every key of the real one).
- The README's FastAPI snippet works from any folder, with the server's settings (the
  pepper included) taken from the environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from keyturn import InvalidValue, KeyManager, Settings, build_manager
from keyturn.integrations.fastapi import KeyturnAuth

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/nope.db", "sqlite:///nope.db"])
def test_the_url_form_refuses_a_missing_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidValue) as refused:
        KeyturnAuth(url.format(tmp=tmp_path))
    assert str(tmp_path / "nope.db") in str(refused.value)
    assert "keyturn init" in str(refused.value)
    assert not (tmp_path / "nope.db").exists()


def readme_snippet() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    return next(b for b in blocks if "KeyturnAuth" in b)


def test_the_readme_fastapi_snippet_works_from_another_folder(tmp_path: Path) -> None:
    server = tmp_path / "server"
    app_folder = tmp_path / "elsewhere"
    server.mkdir()
    app_folder.mkdir()
    url = f"sqlite:///{server / 'keyturn.db'}"
    env = {"KEYTURN_DATABASE_URL": url, "KEYTURN_PEPPER": "server-secret"}
    settings = Settings(database_url=url, pepper="server-secret")
    with build_manager(settings) as manager:  # what `keyturn serve` would do
        key = manager.create_key("app", scopes=["read"]).key
    script = app_folder / "app.py"
    script.write_text(
        "from fastapi import FastAPI\n"
        "from starlette.testclient import TestClient\n"
        "app = FastAPI()\n"
        "@app.get('/items')\n"
        "def items() -> list[str]:\n"
        "    return ['a']\n"
        + readme_snippet()
        + textwrap.dedent(
            """
            import sys
            with TestClient(app) as client:
                good = client.get('/items', headers={'authorization': 'Bearer ' + sys.argv[1]})
                bad = client.get('/items')
            print(good.status_code, bad.status_code)
            """
        )
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
    result = subprocess.run(
        [sys.executable, str(script), key],
        cwd=app_folder,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["200", "401"], result.stderr
    assert not (app_folder / "keyturn.db").exists()
    # Without the server's pepper the same key is unknown: the setting reached the app.
    with KeyManager(url) as unpeppered:
        assert unpeppered.verify_key(key).code == "unknown_key"


def test_the_middleware_fails_closed_with_a_503_when_redis_does_not_answer(
    tmp_path: Path,
) -> None:
    import socket

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from keyturn._ratelimit import RateLimiter
    from keyturn.integrations.asgi import KeyturnMiddleware

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    url = f"sqlite:///{tmp_path / 'k.db'}"
    limiter = RateLimiter(f"redis://127.0.0.1:{port}/0")
    with KeyManager(url, limiter=limiter) as manager:
        key = manager.create_key("metered", rate_limits=["5/second"]).key
        app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
        with TestClient(KeyturnMiddleware(app, manager)) as client:
            answer = client.get("/", headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 503, answer.text
    assert answer.json()["code"] == "limiter_unavailable"
    assert int(answer.headers["retry-after"]) >= 1
