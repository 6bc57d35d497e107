"""Forward-auth throughput: ``/auth`` with a valid key against a raw-ASGI hello-world.

Both run on uvicorn with the settings ``keyturn serve`` uses (``uvicorn_config``), each in
its own process, loaded by ``wrk`` with the same connections, threads and request headers.
Every row is paired: in each round the two contenders of a row, pinned to the same CPU,
are loaded at the same time (wrk on the other CPU), so whatever else the machine does hurts
both alike, and the rows take turns, in alternating order. Two ratios come from each pair's
runs, medians over rounds: throughput, and requests per CPU-second (the scheduler shares a
CPU by thread, so a server whose background threads are busy gets more than half of it,
which the second ratio does not reward). The verdict, keyturn against hello-world, is the
lower (target >= 0.90). The costs, each the higher reading (target <= 1.10): the
verification log, keyturn against the same server with the log off; the allow-list, a key
restricted by address against an unrestricted key, on two keyturn servers alike (with a
database each), the keys swapping servers from round to round. Informative: a raw-ASGI app
that sends /auth's answer headers through ASGI without deciding anything, against
hello-world, the servers' CPU time per request, and the log's part of it split between the
serving thread (queueing an entry) and the others (its writer, storing it).

Every server runs on the same uvicorn stack, ``--http`` (keyturn serve's ``http`` setting):
``h11`` on asyncio (``pip install uvicorn``) or ``httptools`` on uvloop (``pip install
'uvicorn[standard]'``, or keyturn's ``bench`` extra); ``auto`` takes the second when it is
installed, as ``keyturn serve`` does. The first line of the output says which ran.

Run: ``.venv/bin/python bench/forward_auth.py [--http h11|httptools] [--rounds 5]
[--seconds 5] [--no-access-log]`` (needs ``wrk``: ``apt-get install -y wrk``). Not run in CI.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from keyturn.config import Settings

# Servers on one CPU, wrk on the other, where the OS can pin them (Linux, 2+ CPUs).
SERVER_CPU = 0
WRK_CPU = 1 if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2 \
    and shutil.which("taskset") else None

# Run as a script, this folder comes first on sys.path, and bench/http.py (another
# benchmark) would shadow the standard library's http package, which uvicorn imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != _HERE]


async def hello(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    """The ceiling: the least an ASGI app can answer with."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"hello"})  # type: ignore[operator]


# What /auth answers a valid key with (identity, lifecycle, request id), as constants: what
# sending such an answer costs through ASGI, deciding nothing (keyturn serve answers /auth in
# the protocol where it can: keyturn.service.direct_auth).
AUTH_HEADERS = [
    (b"x-keyturn-key-id", b"key_0123456789abcdef"), (b"x-keyturn-owner", b""),
    (b"x-keyturn-scopes", b"read"), (b"x-keyturn-truncated", b""),
    (b"cache-control", b"no-store"), (b"keyturn-key-expires", b"Tue, 02 Mar 2027 12:00:00 GMT"),
    (b"x-request-id", b"0123456789abcdef0123456789abcdef"),
]


async def headers_only(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    """A raw-ASGI app answering as /auth does (204, its headers), without deciding anything."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 204,  # type: ignore[operator]
                "headers": AUTH_HEADERS})
    await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]


def serve(which: str, port: int, db: str, access_log: bool, cpu: int, http: str) -> None:
    """Child process: one server, run as ``keyturn serve`` runs it (on ``cpu``, if >= 0)."""
    if cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    from keyturn.app import create_app
    from keyturn.service.server import serve as run

    settings = Settings(
        port=port, database_url=db, access_log=access_log, log_level="warning", cache_ttl=60.0,
        verification_log=which != "nolog", http=http,
    )
    apps = {"hello": hello, "headers": headers_only}
    app = apps[which] if which in apps else create_app(settings)
    run(app, settings)  # what `keyturn serve` runs, for both


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, headers: dict[str, str]) -> None:
    import httpx

    deadline = time.monotonic() + 60  # a loaded machine takes a while to import the stack
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers).status_code in (200, 204):
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not come up")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    return _ticks(Path(f"/proc/{pid}/stat")) / os.sysconf("SC_CLK_TCK")


def thread_seconds(pid: int) -> tuple[float, float]:
    """User + system CPU time so far of a process's main thread (the event loop, which
    serves the requests) and of its other threads together (the verification log's and the
    usage counters' writers), Linux /proc."""
    main = rest = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            ticks = _ticks(task / "stat")
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        if task.name == str(pid):
            main = ticks
        else:
            rest += ticks
    tick = os.sysconf("SC_CLK_TCK")
    return main / tick, rest / tick


def _ticks(stat: Path) -> int:
    fields = stat.read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def start_wrk(url: str, key: str, seconds: int, connections: int) -> subprocess.Popen[str]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
               "-H", f"Authorization: Bearer {key}", url]
    if WRK_CPU is not None:
        command = ["taskset", "-c", str(WRK_CPU), *command]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def run_wrk(url: str, key: str, seconds: int, connections: int) -> tuple[float, int]:
    """Requests per second, and how many requests were made."""
    return finish_wrk(url, start_wrk(url, key, seconds, connections))


def finish_wrk(url: str, process: subprocess.Popen[str]) -> tuple[float, int]:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"wrk failed against {url}:\n{out}")
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors against {url}:\n{out}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if not rate or not count:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return float(rate.group(1)), int(count.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                        help="keyturn's JSON access log, written to a file (default: on)")
    parser.add_argument("--http", choices=["auto", "h11", "httptools"], default="auto",
                        help="h11 on asyncio, or httptools on uvloop (default: httptools "
                             "on uvloop if installed)")
    parser.add_argument("--serve", choices=["keyturn", "nolog", "hello", "headers"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=-1, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.db, args.access_log, args.cpu, args.http)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")

    from keyturn.manager import KeyManager

    folder = Path(tempfile.mkdtemp(prefix="keyturn-fa-bench-"))
    db = f"sqlite:///{folder / 'bench.db'}"
    with KeyManager(db) as manager:
        key = manager.create_key("bench", scopes=["read"]).key
        # A key restricted by address (wrk connects from loopback): the allow-list's cost.
        fenced = manager.create_key(
            "bench-ips", scopes=["read"], allowed_ips=["10.0.0.0/8", "127.0.0.0/8", "::1"]
        ).key
    # The second keyturn server's own copy: two logs writing one SQLite file would wait on
    # each other's transactions, which no single server does.
    with sqlite3.connect(folder / "bench.db") as source, \
            sqlite3.connect(folder / "fenced.db") as copy:
        source.backup(copy)
    # "nolog": keyturn with the verification log turned off, to show what the log costs.
    # "fenced": a second keyturn like the first, for the restricted key's pair (each pair's
    # two servers are loaded at the same time, so the restricted key needs one of its own).
    # "headers": a raw-ASGI app sending /auth's answer without deciding (the server's floor).
    names = ("keyturn", "nolog", "fenced", "hello", "headers")
    ports = {which: free_port() for which in names}
    log = (folder / "access.log").open("wb")
    children = {
        which: subprocess.Popen(
            [sys.executable, __file__, "--serve", "nolog" if which == "nolog" else
             "keyturn" if which == "fenced" else which, "--port", str(port),
             "--db", f"sqlite:///{folder / 'fenced.db'}" if which == "fenced" else db,
             "--access-log" if args.access_log else "--no-access-log",
             "--http", args.http,
             "--cpu", str(SERVER_CPU if WRK_CPU is not None else -1)],
            stdout=log if which in ("keyturn", "fenced") else subprocess.DEVNULL,
        )
        for which, port in ports.items()
    }
    urls = {which: f"http://127.0.0.1:{ports[which]}/"
                   + ("" if which in ("hello", "headers") else "auth")
            for which in names}  # fmt: skip
    try:
        for url in urls.values():
            wait_ready(url, {"Authorization": f"Bearer {key}"})
            wait_ready(url, {"Authorization": f"Bearer {fenced}"})
            run_wrk(url, key, 1, args.connections)  # warm up
        # Each row is a pair of contenders loaded at the same time, on the same CPU, in the
        # same rounds, the pairs in alternating order: (server, key) against (server, key).
        # The restricted key and the unrestricted one swap servers from round to round, so
        # that neither is measured on one process only.
        pairs = {
            "verdict": (("keyturn", key), ("hello", key)),
            "log": (("keyturn", key), ("nolog", key)),
            "allow-list": (("fenced", fenced), ("keyturn", key)),
            "floor": (("headers", key), ("hello", key)),
        }
        rows: dict[str, list[Paired]] = {name: [] for name in pairs}
        for round_ in range(args.rounds):
            order = list(pairs) if round_ % 2 == 0 else list(reversed(pairs))
            for name in order:
                first, second = pairs[name]
                if name == "allow-list" and round_ % 2:
                    first, second = ("keyturn", fenced), ("fenced", key)
                rows[name].append(load_pair(children, urls, first, second, args))
    finally:
        for child in children.values():
            child.terminate()
        for child in children.values():
            child.wait(timeout=30)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)  # the database and a run's access log
    import uvicorn

    http = args.http if args.http != "auto" else "httptools" if _has("httptools") else "h11"
    loop = {"h11": "asyncio", "httptools": "uvloop"}.get(args.http) or (
        "uvloop" if _has("uvloop") else "asyncio")
    print(f"forward-auth benchmark: uvicorn {uvicorn.__version__} ({http} on {loop}), "
          f"wrk -t1 -c{args.connections}, {args.rounds} rounds of {args.seconds}s, access log "
          f"{'on' if args.access_log else 'off'}, {os.cpu_count()} CPUs"
          + (f", servers on CPU {SERVER_CPU}, wrk on CPU {WRK_CPU}" if WRK_CPU is not None else ""))
    print("  every row: two contenders loaded at the same time on one CPU, medians of the "
          "per-round ratios")
    verdict = rows["verdict"]
    keyturn_rps = statistics.median(r.rps[0] for r in verdict)
    hello_rps = statistics.median(r.rps[1] for r in verdict)
    print(f"  keyturn /auth (valid key, 204)  median {keyturn_rps:9,.0f} req/s   "
          f"rounds {', '.join(f'{r.rps[0]:,.0f}' for r in verdict)}")
    print(f"  raw ASGI hello-world            median {hello_rps:9,.0f} req/s   "
          f"rounds {', '.join(f'{r.rps[1]:,.0f}' for r in verdict)}")
    # Loaded together, the scheduler shares the CPU by thread, so a server whose background
    # threads are busy (the verification log's writer) gets more than half of it: requests
    # per CPU-second, from the same runs, counts that work too. The verdict is the lower.
    throughput = statistics.median(r.throughput for r in verdict)
    efficiency = statistics.median(r.per_cpu for r in verdict)
    print(f"  keyturn / hello-world: throughput {throughput:.3f}x "
          f"(rounds {', '.join(f'{r.throughput:.3f}' for r in verdict)}), requests per "
          f"CPU-second {efficiency:.3f}x (rounds {', '.join(f'{r.per_cpu:.3f}' for r in verdict)})")
    lower = min(throughput, efficiency)
    print(f"  verdict (the lower) {lower:.3f}x  (target >= 0.90x)  "
          f"{'ok' if lower >= 0.90 else 'BELOW TARGET'}")
    # A cost row: what the first contender costs against the second, per request, as the
    # higher of the two readings (the inverse throughput ratio, and the CPU time ratio).
    for name, label in (("log", "verification log on / off"),
                        ("allow-list", "restricted key (allowed_ips) / unrestricted")):  # fmt: skip
        paired = rows[name]
        slower = statistics.median(1 / r.throughput for r in paired)
        dearer = statistics.median(1 / r.per_cpu for r in paired)
        cost = max(slower, dearer)
        print(f"  {label}: {slower:.3f}x the time per request (rounds "
              f"{', '.join(f'{1 / r.throughput:.3f}' for r in paired)}), {dearer:.3f}x the CPU "
              f"per request (rounds {', '.join(f'{1 / r.per_cpu:.3f}' for r in paired)}); "
              f"cost (the higher) {cost:.3f}x (target <= 1.10x) "
              f"{'ok' if cost <= 1.10 else 'ABOVE TARGET'}")
    # Where the log's CPU goes: the serving thread (queueing an entry per request) and the
    # other threads (the writer, which stores them), each as the difference per request
    # between the two servers of a round, medians over rounds.
    log_rows = rows["log"]
    serving = statistics.median(r.threads[0][0] - r.threads[1][0] for r in log_rows)
    writing = statistics.median(r.threads[0][1] - r.threads[1][1] for r in log_rows)
    print(f"    the log's CPU per request: serving thread {serving * 1e6:+.2f} µs, other threads "
          f"(its writer) {writing * 1e6:+.2f} µs, against the log off's serving thread "
          f"{statistics.median(r.threads[1][0] for r in log_rows) * 1e6:.2f} µs")
    floor = rows["floor"]
    print(f"  raw ASGI sending /auth's 204 headers, deciding nothing / hello-world: "
          f"throughput {statistics.median(r.throughput for r in floor):.3f}x, requests per "
          f"CPU-second {statistics.median(r.per_cpu for r in floor):.3f}x (such an answer "
          "through ASGI, which keyturn serve's /auth goes below)")
    print("  server CPU per request (medians): " + ", ".join(
        f"{name} {statistics.median(r.cpu[i] for r in rows[row]) * 1e6:.1f} µs"
        for name, row, i in (("keyturn", "verdict", 0), ("log off", "log", 1),
                             ("hello-world", "verdict", 1), ("headers", "floor", 0))
    ))


class Paired:
    """One round of a pair: each contender's requests per second and server CPU seconds per
    request, and the first's ratios to the second (throughput, requests per CPU-second)."""

    __slots__ = ("cpu", "per_cpu", "rps", "threads", "throughput")

    def __init__(self, rps: tuple[float, float], cpu: tuple[float, float],
                 threads: list[tuple[float, float]]) -> None:
        self.rps = rps
        self.cpu = cpu
        self.threads = threads  # each contender's (main thread, other threads) per request
        self.throughput = rps[0] / rps[1]
        self.per_cpu = cpu[1] / cpu[0]


def load_pair(children: dict[str, subprocess.Popen[bytes]], urls: dict[str, str],
              first: tuple[str, str], second: tuple[str, str],
              args: argparse.Namespace) -> Paired:
    """Load two (server, key) contenders at the same time for ``args.seconds``."""
    contenders = (first, second)
    spent = [cpu_seconds(children[server].pid) for server, _ in contenders]
    threads = [thread_seconds(children[server].pid) for server, _ in contenders]
    started = [start_wrk(urls[server], sent, args.seconds, args.connections)
               for server, sent in contenders]
    done = [finish_wrk(urls[server], wrk)
            for (server, _), wrk in zip(contenders, started, strict=True)]
    cpu = [(cpu_seconds(children[server].pid) - before) / count
           for (server, _), before, (_, count) in zip(contenders, spent, done, strict=True)]
    split = [tuple((after - before) / count for after, before in
                   zip(thread_seconds(children[server].pid), spent_by, strict=True))
             for (server, _), spent_by, (_, count) in zip(contenders, threads, done, strict=True)]
    return Paired((done[0][0], done[1][0]), (cpu[0], cpu[1]),
                  [(main, rest) for main, rest in split])


def _has(module: str) -> bool:  # what uvicorn's "auto" finds
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    main()
