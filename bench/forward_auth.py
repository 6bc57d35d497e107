"""Forward-auth throughput: ``/auth`` with a valid key against a raw-ASGI hello-world.

Both run on uvicorn with the settings ``keyturn serve`` uses (``uvicorn_config``), each in
its own process, loaded by ``wrk`` with the same connections, threads and request headers.
The verdict is paired: in each round both servers, pinned to the same CPU, are loaded at the
same time (wrk on the other CPU), so whatever else the machine does hurts both alike. Two
ratios come from those runs, medians over rounds of keyturn / hello-world: throughput, and
requests per CPU-second (the scheduler shares a CPU by thread, so a server whose background
threads are busy gets more than half of it, which the second ratio does not reward); the
verdict is the lower (target >= 0.90). Then each is loaded alone, in turn, with the
informative rows (a key restricted by address, the verification log off, a raw-ASGI app that
sends /auth's answer headers through ASGI without deciding anything)
and the servers' CPU time per request.

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
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    # "nolog": keyturn with the verification log turned off, to show what the log costs.
    # "headers": a raw-ASGI app sending /auth's answer without deciding (the server's floor).
    ports = {"keyturn": free_port(), "nolog": free_port(), "hello": free_port(),
             "headers": free_port()}
    log = (folder / "access.log").open("wb")
    children = {
        which: subprocess.Popen(
            [sys.executable, __file__, "--serve", which, "--port", str(port), "--db", db,
             "--access-log" if args.access_log else "--no-access-log",
             "--http", args.http,
             "--cpu", str(SERVER_CPU if WRK_CPU is not None else -1)],
            stdout=log if which == "keyturn" else subprocess.DEVNULL,
        )
        for which, port in ports.items()
    }
    urls = {
        "keyturn": f"http://127.0.0.1:{ports['keyturn']}/auth",
        "nolog": f"http://127.0.0.1:{ports['nolog']}/auth",
        "hello": f"http://127.0.0.1:{ports['hello']}/",
        "headers": f"http://127.0.0.1:{ports['headers']}/",
    }
    try:
        for url in urls.values():
            wait_ready(url, {"Authorization": f"Bearer {key}"})
        for url in urls.values():
            run_wrk(url, key, 1, args.connections)  # warm up
        wait_ready(urls["keyturn"], {"Authorization": f"Bearer {fenced}"})
        # contender -> (the server it runs on, the key it sends)
        contenders = {"keyturn": ("keyturn", key), "nolog": ("nolog", key),
                      "restricted": ("keyturn", fenced), "hello": ("hello", key),
                      "headers": ("headers", key)}
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        cpu: dict[str, list[float]] = {name: [] for name in contenders}  # server CPU s/request
        together: list[float] = []  # keyturn / hello-world, loaded at the same time
        per_cpu: list[float] = []  # requests per CPU-second, keyturn / hello-world, same runs
        for round_ in range(args.rounds):
            spent = {which: cpu_seconds(children[which].pid) for which in ("keyturn", "hello")}
            both = {which: start_wrk(urls[which], key, args.seconds, args.connections)
                    for which in ("keyturn", "hello")}
            done = {which: finish_wrk(urls[which], wrk) for which, wrk in both.items()}
            together.append(done["keyturn"][0] / done["hello"][0])
            cost = {which: (cpu_seconds(children[which].pid) - spent[which]) / done[which][1]
                    for which in done}
            per_cpu.append(cost["hello"] / cost["keyturn"])
            order = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
            for which in order:
                server, sent = contenders[which]
                before = cpu_seconds(children[server].pid)
                rps, count = run_wrk(urls[server], sent, args.seconds, args.connections)
                cpu[which].append((cpu_seconds(children[server].pid) - before) / count)
                samples[which].append(rps)
    finally:
        for child in children.values():
            child.terminate()
        for child in children.values():
            child.wait(timeout=30)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)  # the database and a run's access log
    keyturn_rps = statistics.median(samples["keyturn"])
    hello_rps = statistics.median(samples["hello"])
    keyturn_cpu = statistics.median(cpu["keyturn"])
    hello_cpu = statistics.median(cpu["hello"])
    import uvicorn

    http = args.http if args.http != "auto" else "httptools" if _has("httptools") else "h11"
    loop = {"h11": "asyncio", "httptools": "uvloop"}.get(args.http) or (
        "uvloop" if _has("uvloop") else "asyncio")
    print(f"forward-auth benchmark: uvicorn {uvicorn.__version__} ({http} on {loop}), "
          f"wrk -t1 -c{args.connections}, {args.rounds} rounds of {args.seconds}s, access log "
          f"{'on' if args.access_log else 'off'}, {os.cpu_count()} CPUs"
          + (f", servers on CPU {SERVER_CPU}, wrk on CPU {WRK_CPU}" if WRK_CPU is not None else ""))
    print(f"  keyturn /auth (valid key, 204)  median {keyturn_rps:9,.0f} req/s   "
          f"rounds {', '.join(f'{s:,.0f}' for s in samples['keyturn'])}")
    print(f"  raw ASGI hello-world            median {hello_rps:9,.0f} req/s   "
          f"rounds {', '.join(f'{s:,.0f}' for s in samples['hello'])}")
    pairs = zip(samples["keyturn"], samples["hello"], strict=True)
    paired = statistics.median(k / h for k, h in pairs)
    # Loaded together, the scheduler shares the CPU by thread, so a server whose background
    # threads are busy (the verification log's writer) gets more than half of it: requests
    # per CPU-second, from the same runs, counts that work too. The verdict is the lower.
    throughput, efficiency = statistics.median(together), statistics.median(per_cpu)
    verdict = min(throughput, efficiency)
    print(f"  keyturn / hello-world, loaded together on one CPU: throughput {throughput:.3f}x "
          f"(rounds {', '.join(f'{r:.3f}' for r in together)}), requests per CPU-second "
          f"{efficiency:.3f}x (rounds {', '.join(f'{r:.3f}' for r in per_cpu)})")
    print(f"  verdict (the lower) {verdict:.3f}x  (target >= 0.90x)  "
          f"{'ok' if verdict >= 0.90 else 'BELOW TARGET'}")
    print(f"  loaded in turn: ratio of medians {keyturn_rps / hello_rps:.3f}x, "
          f"median of per-round ratios {paired:.3f}x")
    print("  server CPU per request (steadier than req/s when the machine is shared):")
    print(f"    keyturn {keyturn_cpu * 1e6:7.1f} µs, hello-world {hello_cpu * 1e6:7.1f} µs, "
          f"ratio hello / keyturn {hello_cpu / keyturn_cpu:.3f}x (requests per CPU-second)")
    fenced_rps = statistics.median(samples["restricted"])
    fenced_cpu = statistics.median(cpu["restricted"])
    print(f"  restricted key (allowed_ips)    median {fenced_rps:9,.0f} req/s, "
          f"{fenced_rps / keyturn_rps:.3f}x of the unrestricted key; server CPU "
          f"{fenced_cpu * 1e6:.1f} µs, {fenced_cpu / keyturn_cpu:.3f}x (target <= 1.10x)")
    floor_rps = statistics.median(samples["headers"])
    floor_cpu = statistics.median(cpu["headers"])
    print(f"  raw ASGI sending /auth's 204 headers, deciding nothing: median {floor_rps:9,.0f} "
          f"req/s, {floor_rps / hello_rps:.3f}x of hello-world; server CPU {floor_cpu * 1e6:.1f} "
          f"µs (such an answer through ASGI); keyturn / it: "
          f"{keyturn_rps / floor_rps:.3f}x the requests, "
          f"{floor_cpu / keyturn_cpu:.3f}x per CPU-second")
    nolog_rps = statistics.median(samples["nolog"])
    nolog_cpu = statistics.median(cpu["nolog"])
    print(f"  verification log off            median {nolog_rps:9,.0f} req/s; with it on: "
          f"{keyturn_rps / nolog_rps:.3f}x the requests, server CPU {keyturn_cpu * 1e6:.1f} vs "
          f"{nolog_cpu * 1e6:.1f} µs, {keyturn_cpu / nolog_cpu:.3f}x (target <= 1.10x)")


def _has(module: str) -> bool:  # what uvicorn's "auto" finds
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    main()
