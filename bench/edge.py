"""The attacks of issue 11 on a real ``keyturn serve``, measured: what they cost the server
and what ``/auth`` answers meanwhile.

1. Bodies: three anonymous 100 MB POSTs to the admin API at once. Reports the server's RSS
   before and at its peak, and ``/auth`` latency for a valid key during the attack.
2. Half-open connections: 1,100 connections that never finish their request head, with the
   server under the usual 1,024-descriptor soft limit. Reports how many ``/auth`` requests
   succeed meanwhile and the descriptors the server holds.

Run: ``.venv/bin/python bench/edge.py`` (Linux: reads /proc). Not run in CI. No timed
assertion: it prints figures.
"""

from __future__ import annotations

import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# Run as a script, this folder comes first on sys.path, and bench/http.py (another
# benchmark) would shadow the standard library's http package, which httpx imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != _HERE]

import httpx  # noqa: E402

MB = 1024 * 1024


def start(tmp: str) -> tuple[subprocess.Popen[bytes], str, str]:
    """``keyturn serve`` under a 1,024-descriptor soft limit: (process, url, root key)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    err = Path(tmp) / "serve.err"
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", "from keyturn.cli import main; main()", "serve", "--port", "0",
             "--db", f"sqlite:///{tmp}/k.db", "--no-access-log"],
            stderr=err.open("w"), stdout=subprocess.DEVNULL,
        )
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = err.read_text()
        port = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", text)
        key = re.search(r"kt_live_[0-9A-Za-z]{36}", text)
        if key and port:
            return process, f"http://127.0.0.1:{port.group(1)}", key.group(0)
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"keyturn serve did not start:\n{err.read_text()}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def flood(url: str, size: int) -> None:
    host, port = url.rsplit("/", 1)[-1].split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=60) as sock:
            sock.sendall(f"POST /v1/keys HTTP/1.1\r\nhost: x\r\ncontent-type: application/json"
                         f"\r\ncontent-length: {size}\r\n\r\n".encode())
            chunk, sent = b"A" * 65536, 0
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
    except OSError:
        pass


def bodies(url: str, key: str, pid: int) -> None:
    client = httpx.Client(headers={"authorization": f"Bearer {key}"}, timeout=30)
    client.get(f"{url}/auth")
    before, peak = rss_mb(pid), 0.0
    threads = [threading.Thread(target=flood, args=(url, 100 * MB)) for _ in range(3)]
    for thread in threads:
        thread.start()
    latencies = []
    while any(t.is_alive() for t in threads):
        started = time.perf_counter()
        status = client.get(f"{url}/auth").status_code
        latencies.append((time.perf_counter() - started) * 1000)
        assert status == 204, status
        peak = max(peak, rss_mb(pid))
        time.sleep(0.02)
    print("3 anonymous 100 MB POSTs to /v1/keys:")
    print(f"  server RSS: {before:.0f} MB before, {peak:.0f} MB at peak")
    if latencies:
        print(f"  /auth during the attack: {len(latencies)} requests, median "
              f"{statistics.median(latencies):.1f} ms, max {max(latencies):.1f} ms")


def half_open(url: str, key: str, pid: int, count: int = 1100) -> None:
    host, port = url.rsplit("/", 1)[-1].split(":")
    socks = []
    for _ in range(count):
        try:
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.sendall(b"GET /auth HTTP/1.1\r\nhost: x\r\nx-slow: ")
            socks.append(sock)
        except OSError:
            break
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    ok, times = 0, []
    for _ in range(20):
        started = time.perf_counter()
        try:
            status = httpx.get(f"{url}/auth", headers={"authorization": f"Bearer {key}"},
                               timeout=3).status_code
        except httpx.HTTPError:
            status = 0
        times.append((time.perf_counter() - started) * 1000)
        ok += status == 204
    print(f"{len(socks)} half-open connections (server soft limit 1,024 descriptors):")
    print(f"  server holds {fds} descriptors; /auth: {ok}/20 answered 204, median "
          f"{statistics.median(times):.1f} ms")
    for sock in socks:
        sock.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        process, url, key = start(tmp)
        try:
            bodies(url, key, process.pid)
            half_open(url, key, process.pid)
        finally:
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
