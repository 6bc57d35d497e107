"""`pip install 'keyturn[serve]'` from the built wheel: `keyturn serve` finds its migrations,
templates and static files, answers `/readyz` and `/auth`, and writes its root key to the
file it is given, never to its log."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request

from tests.packaging.conftest import Env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_served_wheel_answers_with_its_files(served: Env) -> None:
    assert {"uvicorn", "fastapi", "jinja2"} <= served.packages()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    key_file = served.work / "root-key"
    server = subprocess.Popen(
        [str(served.bin / "keyturn"), "serve", "--port", str(port), "--db",
         "sqlite:///served.db", "--root-key-file", str(key_file)],
        cwd=served.work, env=served.environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = 0
        while time.monotonic() < deadline and server.poll() is None:
            try:
                status, _ = get(f"{base}/readyz")
            except OSError:
                status = 0
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, server.stderr.read() if server.poll() is not None else status
        root_key = key_file.read_text().strip()
        assert get(f"{base}/auth", {"Authorization": f"Bearer {root_key}"})[0] == 204
        refused, body = get(f"{base}/auth", {"Authorization": "Token nope"})
        assert refused == 401 and json.loads(body)["code"] == "unsupported_scheme"
        login, page = get(f"{base}/ui/login")  # a template
        assert login == 200 and b"<html" in page.lower()
        assert get(f"{base}/ui/static/style.css")[0] == 200  # a static file
        docs, page = get(f"{base}/docs")  # the vendored Swagger UI
        assert docs == 200 and b"swagger" in page.lower()
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert root_key not in out + err  # the key went to its file only
