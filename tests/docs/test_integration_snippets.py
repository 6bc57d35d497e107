"""docs/integrations.md's Flask and FastAPI snippets, pasted into an app that starts in
another folder than the server's database, accept the server's keys.

They named ``sqlite:///keyturn.db``, relative to the folder the app starts in: from
anywhere but the server's folder the app stopped at start-up (no database there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "integrations.md").read_text()

ROUTES = {
    "FastAPI": (
        "from fastapi import FastAPI\nfrom fastapi.testclient import TestClient\n"
        "app = FastAPI()\n@app.get('/items')\ndef items() -> dict[str, int]:\n"
        "    return {'ok': 1}\n",
        "client = TestClient(app)\n",
    ),
    "Flask": ("", "client = app.test_client()\n"),
}


def snippet(section: str) -> str:
    return PAGE.split(f"\n## {section}\n", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("section", sorted(ROUTES))
def test_the_snippet_works_from_another_folder(tmp_path: Path, section: str) -> None:
    server = tmp_path / "srv"
    server.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
    env["KEYTURN_DATABASE_URL"] = f"sqlite:///{server / 'keyturn.db'}"  # four slashes
    made = subprocess.run(
        [sys.executable, "-m", "keyturn", "keys", "create", "--name", "app", "--scope",
         "items:read", "--format", "json"],
        cwd=server, env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    key = json.loads(made.stdout)["key"]
    before, client = ROUTES[section]
    app = tmp_path / "app"
    app.mkdir()
    (app / "app.py").write_text(
        before + snippet(section) + client
        + f"print(client.get('/items', headers={{'x-api-key': {key!r}}}).status_code,"
        " client.get('/items').status_code)\n"
    )
    done = subprocess.run([sys.executable, "app.py"], cwd=app, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-600:]
    assert done.stdout.split() == ["200", "401"]
    assert not (app / "keyturn.db").exists()
