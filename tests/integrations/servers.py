"""Real servers on loopback for the integrations: uvicorn in a thread or as the command a user
runs (``uvicorn --root-path``), and a WSGI server in a thread. Every one binds port 0."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import uvicorn


@contextmanager
def asgi_server(app: Any, **config: Any) -> Iterator[str]:
    """``app`` under uvicorn in this process; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def wsgi_server(app: Any) -> Iterator[str]:
    """``app`` under the standard library's WSGI server in a thread; yields its base URL."""
    server: WSGIServer = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@contextmanager
def uvicorn_command(target: str, *args: str, env: dict[str, str], log: Path) -> Iterator[str]:
    """``uvicorn TARGET ARGS --port 0`` as a child process, as a user starts it."""
    root = Path(__file__).resolve().parents[2]
    path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(root)]))
    with log.open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", target, *args, "--port", "0"],
            stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL, cwd=root,
            env={**os.environ, **env, "PYTHONPATH": path},
        )
        try:
            deadline = time.monotonic() + 90
            while not (match := _RUNNING.search(log.read_text())):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start:\n{log.read_text()}")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{match.group(1)}"
        finally:
            process.terminate()
            process.wait(timeout=15)
