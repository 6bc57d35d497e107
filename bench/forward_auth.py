"""Forward-auth throughput: ``/auth`` with a valid key against a raw-ASGI hello-world.

Both run on uvicorn with the settings ``keyturn serve`` uses (``uvicorn_config``), each in
its own process, loaded in turn by ``wrk`` with the same connections, threads and request
headers. Rounds alternate between the two so a noisy machine hurts both alike; the figures
are medians over rounds, and the ratio is keyturn / hello-world (target >= 0.85).

Run: ``.venv/bin/python bench/forward_auth.py [--rounds 5] [--seconds 5] [--no-access-log]``
(needs ``wrk``: ``apt-get install -y wrk``). Not run in CI.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from keyturn.config import Settings


async def hello(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    """The ceiling: the least an ASGI app can answer with."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})  # type: ignore[operator]


def serve(which: str, port: int, db: str, access_log: bool) -> None:
    """Child process: one server, on keyturn's uvicorn settings."""
    import uvicorn

    from keyturn.service.app import create_app
    from keyturn.service.server import configure_logging, uvicorn_config

    settings = Settings(
        port=port, database_url=db, access_log=access_log, log_level="warning", cache_ttl=60.0
    )
    app = create_app(settings) if which == "keyturn" else hello
    configure_logging(settings)
    uvicorn.Server(uvicorn_config(app, settings)).run()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
                if answer.status in (200, 204):
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not come up")


def run_wrk(url: str, key: str, seconds: int, connections: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", f"Authorization: Bearer {key}",
         url],
        capture_output=True, text=True, check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors against {url}:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                        help="keyturn's JSON access log, written to a file (default: on)")
    parser.add_argument("--serve", choices=["keyturn", "hello"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db, args.access_log)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")

    from keyturn.manager import KeyManager

    folder = Path(tempfile.mkdtemp(prefix="keyturn-fa-bench-"))
    db = f"sqlite:///{folder / 'bench.db'}"
    with KeyManager(db) as manager:
        key = manager.create_key("bench", scopes=["read"]).key
    ports = {"keyturn": free_port(), "hello": free_port()}
    log = (folder / "access.log").open("wb")
    children = [
        subprocess.Popen(
            [sys.executable, __file__, "--serve", which, "--port", str(port), "--db", db,
             "--access-log" if args.access_log else "--no-access-log"],
            stdout=log if which == "keyturn" else subprocess.DEVNULL,
        )
        for which, port in ports.items()
    ]
    urls = {
        "keyturn": f"http://127.0.0.1:{ports['keyturn']}/auth",
        "hello": f"http://127.0.0.1:{ports['hello']}/",
    }
    try:
        for url in urls.values():
            wait_ready(url, {"Authorization": f"Bearer {key}"})
        for url in urls.values():
            run_wrk(url, key, 1, args.connections)  # warm up
        samples: dict[str, list[float]] = {"keyturn": [], "hello": []}
        for round_ in range(args.rounds):
            order = ["keyturn", "hello"] if round_ % 2 == 0 else ["hello", "keyturn"]
            for which in order:
                samples[which].append(run_wrk(urls[which], key, args.seconds, args.connections))
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=30)
        log.close()
    keyturn_rps = statistics.median(samples["keyturn"])
    hello_rps = statistics.median(samples["hello"])
    loop = "uvloop" if _has("uvloop") else "asyncio"
    http = "httptools" if _has("httptools") else "h11"
    print(f"forward-auth benchmark: uvicorn ({loop}, {http}), wrk -t1 -c{args.connections}, "
          f"{args.rounds} alternating rounds of {args.seconds}s, access log "
          f"{'on' if args.access_log else 'off'}, {os.cpu_count()} CPUs")
    print(f"  keyturn /auth (valid key, 204)  median {keyturn_rps:9,.0f} req/s   "
          f"rounds {', '.join(f'{s:,.0f}' for s in samples['keyturn'])}")
    print(f"  raw ASGI hello-world            median {hello_rps:9,.0f} req/s   "
          f"rounds {', '.join(f'{s:,.0f}' for s in samples['hello'])}")
    print(f"  ratio keyturn / hello-world     {keyturn_rps / hello_rps:.3f}x   (target >= 0.85x)")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    main()
