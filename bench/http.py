"""HTTP benchmark: hello world as raw ASGI, Starlette and FastAPI, with and without keyturn.

Each app runs under uvicorn (one worker, in its own process, pinned to CPU 0 where the OS
allows) and is loaded by wrk on loopback (pinned to CPU 1), with the same
``Authorization: Bearer <key>`` header for every app so that only keyturn's work differs.
Rounds alternate the order of the apps (A B C ... then ... C B A) so that a noisy, shared
machine hurts every app alike; the report gives medians over rounds, the ratio of medians
and the median of per-round ratios (the paired figure, steadier on a noisy machine).

Each run measures two server stacks, one after the other: uvicorn's pure-Python h11 on
asyncio, and httptools on uvloop (what ``uvicorn[standard]`` users run); the ratios are
paired within each stack.

``--instructions`` counts instead of timing: each server runs under valgrind's callgrind,
is loaded by wrk over one connection (one request at a time, so that every request takes
the same way through the event loop), and the report gives the instructions its serving
thread ran per request, with keyturn and without. A shared, busy machine does not move
these counts, which is what an A/B of a change needs; they leave out the kernel's share
(the sockets), so their ratio is lower than the throughput ratio. The other threads' count
(the verification log's writer, above all) is shown beside it but is no verdict: their
work comes in batches on a timer, and under callgrind a server answers a few hundred
requests a second, so a batch's fixed cost is shared by far fewer requests than in
production (``bench/verify.py`` measures the writer per entry).

``--instructions --in-process`` counts more finely, for an A/B of a few hundred
instructions: each app is driven in a child process under callgrind through uvicorn's own
protocol for the stack, on a transport that keeps nothing, one request at a time, and the
count is what the event loop's tasks ran (no socket, no timers), for a run of requests less
a run without: runs of the same code differ by about 500 instructions a request (raw ASGI
and FastAPI, log off), where a server under wrk differs by about 1,000. The verification
log's writer still wakes on its own: ``--no-verification-log`` steadies the count further.

Run:  .venv/bin/python bench/http.py [--rounds 7] [--duration 5] [--connections 8]
      [--stacks h11,uvloop] [--instructions [--in-process]]
Needs wrk:  apt-get install wrk  (Debian/Ubuntu)  or  brew install wrk  (macOS),
for ``--instructions`` valgrind too (apt-get install valgrind),
and, for the uvloop stack, the ``bench`` extra:  pip install -e '.[dev,bench]'
"""

import argparse
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

# (baseline, with keyturn, target ratio or None for an informative row)
PAIRS: list[tuple[str, str, float | None]] = [
    ("raw", "raw+keyturn", 0.92),
    ("starlette", "starlette+keyturn", 0.92),
    ("fastapi", "fastapi+keyturn", 0.92),
    ("fastapi", "fastapi+keyturn+Security", 0.88),
]
# uvicorn --http and --loop of each stack measured.
STACKS = {"h11": ("h11", "asyncio"), "uvloop": ("httptools", "uvloop")}
VARIANTS = list(dict.fromkeys(name for pair in PAIRS for name in pair[:2]))
DESCRIPTIONS = {
    "raw": "bare ASGI callable",
    "raw+keyturn": "KeyturnMiddleware around it",
    "starlette": "Starlette, one route",
    "starlette+keyturn": "+ Middleware(KeyturnMiddleware)",
    "fastapi": "FastAPI, one route",
    "fastapi+keyturn": "+ the README's 3 lines (protect)",
    "fastapi+keyturn+Security": "+ Security(auth, scopes=[...]) on the route",
}
SCOPE = "hello:read"


# -- the apps ----------------------------------------------------------------------------


async def hello_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].replace("lifespan.", "")
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"12")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"Hello, world"})


def build(variant: str, database: str, verification_log: bool = True) -> Any:
    from keyturn import KeyManager
    from keyturn.integrations.asgi import KeyturnMiddleware

    keys = KeyManager(database, verification_log=verification_log)
    if variant.startswith("raw"):
        return KeyturnMiddleware(hello_asgi, keys) if "keyturn" in variant else hello_asgi
    if variant.startswith("starlette"):
        from starlette.applications import Starlette
        from starlette.middleware import Middleware
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        async def hello(request: Any) -> PlainTextResponse:
            return PlainTextResponse("Hello, world")

        middleware = [Middleware(KeyturnMiddleware, keys=keys)] if "keyturn" in variant else []
        return Starlette(routes=[Route("/", hello)], middleware=middleware)

    from fastapi import FastAPI, Security

    from keyturn.integrations import VerifiedKey
    from keyturn.integrations.fastapi import KeyturnAuth

    app = FastAPI()
    if variant == "fastapi":

        @app.get("/")
        async def hello() -> dict[str, str]:
            return {"message": "Hello, world"}

        return app
    auth = KeyturnAuth(keys)
    auth.protect(app)
    if variant == "fastapi+keyturn":

        @app.get("/")
        async def hello_protected() -> dict[str, str]:
            return {"message": "Hello, world"}

    else:

        @app.get("/")
        async def hello_scoped(
            key: Annotated[VerifiedKey, Security(auth, scopes=[SCOPE])],
        ) -> dict[str, str]:
            return {"message": "Hello, world"}

    return app


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    uvicorn.run(
        build(args.serve, args.database, args.verification_log),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        http=args.http,
        loop=args.loop,
    )


WARM_UP = 300  # requests before an in-process count: lazy imports, caches


def drive(args: argparse.Namespace) -> None:
    """``--in-process``'s side: ``args.requests`` requests with the key (after the warm-up)
    through the stack's uvicorn protocol, on a transport that keeps only a response's
    status line."""
    import asyncio
    import gc

    from uvicorn.config import Config
    from uvicorn.server import ServerState

    app = build(args.drive, args.database, args.verification_log)
    config = Config(
        app, http=args.http, loop="none", log_level="warning", access_log=False, lifespan="off"
    )
    config.load()
    request = f"GET / HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {args.key}\r\n\r\n"

    class Transport(asyncio.Transport):
        status = b""

        def write(self, data: Any) -> None:
            if data[:9] == b"HTTP/1.1 ":
                self.status = data[9:12]

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return {"sockname": ("127.0.0.1", 80), "peername": ("127.0.0.1", 9)}.get(name, default)

        def is_closing(self) -> bool:
            return False

    async def requests() -> None:
        transport, state = Transport(), ServerState()
        make: Any = config.http_protocol_class  # uvicorn's, not a bare asyncio.Protocol
        protocol = make(config=config, server_state=state, app_state={})
        protocol.connection_made(transport)
        for count in (WARM_UP, args.requests):
            for _ in range(count):
                protocol.data_received(request.encode())
                await asyncio.sleep(0)  # a cached key's request is done in two turns
                await asyncio.sleep(0)
                if state.tasks:  # a store read in a thread: waited for, not spun on
                    await asyncio.wait(set(state.tasks))
            # What the warm-up left is kept from the collector: a full collection of a
            # large heap (FastAPI's) costs millions of instructions, and whether one falls
            # inside the counted run or not would outweigh what is measured.
            gc.collect()
            gc.freeze()
        if transport.status != b"200":
            raise SystemExit(f"{args.drive}: answered {transport.status!r}")

    if args.loop == "uvloop":
        import uvloop

        uvloop.run(requests())
    else:
        asyncio.run(requests())


# -- the driver --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unshadow_stdlib_http() -> None:
    """This file is named like the standard library's ``http``, and a script's folder comes
    first on sys.path: drop it before anything (uvicorn, urllib) imports ``http``."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]


def status_of(url: str, key: str | None) -> int:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def wait_ready(url: str, key: str, deadline: float) -> None:
    while True:
        try:
            status_of(url, key)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextlib.contextmanager
def servers(
    args: argparse.Namespace, database: str, stack: str
) -> Iterator[dict[str, tuple[str, int]]]:
    """Every variant's server on ``stack``: its URL and process id."""
    http, loop = STACKS[stack]
    procs, urls = [], {}
    try:
        for variant in VARIANTS:
            port = free_port()
            command = [sys.executable, __file__, "--serve", variant, "--database", database]
            command += ["--port", str(port), "--http", http, "--loop", loop]
            if not args.verification_log:
                command.append("--no-verification-log")
            if args.server_cpu >= 0:
                command += ["--cpu", str(args.server_cpu)]
            proc = subprocess.Popen(command)
            procs.append(proc)
            urls[variant] = (f"http://127.0.0.1:{port}/", proc.pid)
        deadline = time.monotonic() + 90  # a loaded machine takes a while to import FastAPI
        for url, _ in urls.values():
            wait_ready(url, "", deadline)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux), or None where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    rps: float
    cpu_us: float | None  # the server's CPU time per request: steadier than rps when shared


@dataclass
class Load:
    """A wrk run under way against one server."""

    process: subprocess.Popen[str]
    pid: int
    cpu_before: float | None
    url: str


def start_wrk(args: argparse.Namespace, url: str, pid: int, key: str, seconds: int) -> Load:
    command = [args.wrk, "-t1", f"-c{args.connections}", f"-d{seconds}s"]
    command += ["-H", f"Authorization: Bearer {key}", url]
    if args.wrk_cpu >= 0 and shutil.which("taskset"):
        command = ["taskset", "-c", str(args.wrk_cpu), *command]
    before = cpu_seconds(pid)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    return Load(process, pid, before, url)


def finish_wrk(load: Load) -> Run:
    out, _ = load.process.communicate()
    after = cpu_seconds(load.pid)
    if load.process.returncode != 0 or "Non-2xx" in out:
        raise SystemExit(f"{load.url}: wrk failed or saw errors; refusing to report:\n{out}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rps is None or total is None:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    cpu = None
    if load.cpu_before is not None and after is not None:
        cpu = (after - load.cpu_before) / int(total.group(1)) * 1e6
    return Run(float(rps.group(1)), cpu)


def wrk(args: argparse.Namespace, url: str, pid: int, key: str, seconds: int) -> Run:
    return finish_wrk(start_wrk(args, url, pid, key, seconds))


Pairs = dict[int, list[tuple[Run, Run]]]  # PAIRS index -> (without, with keyturn) per round


def measure_round(
    args: argparse.Namespace, urls: dict[str, tuple[str, int]], key: str, round_no: int
) -> dict[int, tuple[Run, Run]]:
    """One round. ``concurrent``: each pair's two servers share CPU 0 and are loaded at the
    same time, so whatever else the machine does hits both alike and the scheduler's fair
    share makes their throughput ratio their cost ratio. ``sequential``: one app at a time,
    the order reversed every other round."""
    forward = round_no % 2 == 0
    if args.mode == "concurrent":
        measured = {}
        for index in range(len(PAIRS)) if forward else reversed(range(len(PAIRS))):
            base, with_keyturn, _ = PAIRS[index]
            loads = [start_wrk(args, *urls[v], key, args.duration) for v in (base, with_keyturn)]
            measured[index] = (finish_wrk(loads[0]), finish_wrk(loads[1]))
        return measured
    runs = {}
    for variant in VARIANTS if forward else VARIANTS[::-1]:
        runs[variant] = wrk(args, *urls[variant], key, args.duration)
    return {i: (runs[base], runs[other]) for i, (base, other, _) in enumerate(PAIRS)}


def count_instructions(
    args: argparse.Namespace, database: str, key: str, stack: str, variant: str, folder: str
) -> tuple[int, float, float]:
    """Requests served, and instructions per request of one variant's server under
    callgrind in its serving thread (the event loop's) and in its other threads: the counts
    are zeroed after a warm-up and dumped after the measured load."""
    http, loop = STACKS[stack]
    port = free_port()
    out = str(Path(folder) / f"{stack}-{variant}.callgrind")
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]
    command += ["--separate-threads=yes"]
    command += [sys.executable, __file__, "--serve", variant, "--database", database]
    command += ["--port", str(port), "--http", http, "--loop", loop]
    if not args.verification_log:
        command.append("--no-verification-log")
    if args.server_cpu >= 0:
        command += ["--cpu", str(args.server_cpu)]
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        wait_ready(url, key, time.monotonic() + 600)  # valgrind runs code ~50x slower
        one = argparse.Namespace(**{**vars(args), "connections": 1})
        wrk(one, url, server.pid, key, 3)  # warm up: lazy imports, caches, the log's writer
        quiet: dict[str, Any] = {"check": True, "stdout": subprocess.DEVNULL}
        # First idle, then loaded: what the server does on its timers (uvicorn's ticks, the
        # log's writer waking) is counted per second idle and taken off the loaded count,
        # which would otherwise share it among however few requests callgrind lets through.
        subprocess.run(["callgrind_control", "--zero", str(server.pid)], **quiet)
        started = time.monotonic()
        time.sleep(args.duration)
        subprocess.run(["callgrind_control", "--dump", str(server.pid)], **quiet)
        idle = time.monotonic() - started
        started = time.monotonic()
        load = start_wrk(one, url, server.pid, key, args.duration)
        out_text, _ = load.process.communicate()
        subprocess.run(["callgrind_control", "--dump", str(server.pid)], **quiet)
        loaded = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=60)
    served = re.search(r"(\d+) requests in", out_text)
    if served is None or "Non-2xx" in out_text:
        raise SystemExit(f"{variant}: wrk failed or saw errors under callgrind:\n{out_text}")
    requests = int(served.group(1))
    idle_serving, idle_others = dumped(Path(folder), f"{Path(out).name}.1")
    load_serving, load_others = dumped(Path(folder), f"{Path(out).name}.2")
    scale = loaded / idle
    serving = load_serving - idle_serving * scale
    others = load_others - idle_others * scale
    return requests, serving / requests, others / requests


def dumped(folder: Path, prefix: str) -> tuple[int, int]:
    """The instructions of one callgrind dump: the first thread's (the server's event
    loop), and the other threads' together."""
    by_thread = []
    for dump in sorted(folder.glob(f"{prefix}-*")):  # one file a thread, the first first
        total = re.search(r"^(?:summary|totals): (\d+)", dump.read_text(), re.MULTILINE)
        by_thread.append(int(total.group(1)) if total else 0)
    if not by_thread:
        raise SystemExit(f"callgrind dumped nothing as {folder / prefix}")
    return by_thread[0], sum(by_thread[1:])


def count_in_process(
    args: argparse.Namespace, database: str, key: str, stack: str, variant: str, folder: str
) -> tuple[int, float, float]:
    """``count_instructions``, in process (``drive``): the event loop's tasks' instructions
    a request, from a run of ``IN_PROCESS`` requests less a run of none."""
    http, loop = STACKS[stack]
    totals = []
    for requests in (0, IN_PROCESS):
        out = Path(folder) / f"{stack}-{variant}-{requests}.callgrind"
        command = ["valgrind", "-q", "--tool=callgrind", f"--callgrind-out-file={out}"]
        command += ["--separate-threads=yes", "--collect-atstart=no"]
        command += ["--toggle-collect=task_step_impl"]  # inside the loop's tasks only
        command += [sys.executable, __file__, "--drive", variant, "--database", database]
        command += ["--key", key, "--requests", str(requests), "--http", http, "--loop", loop]
        if not args.verification_log:
            command.append("--no-verification-log")
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        totals.append(dumped(Path(folder), out.name)[0])
    return IN_PROCESS, (totals[1] - totals[0]) / IN_PROCESS, 0.0


IN_PROCESS = 2000  # requests counted by --in-process


def report_instructions(args: argparse.Namespace, database: str, key: str, stack: str) -> None:
    counted: dict[str, tuple[int, float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for variant in VARIANTS:
            count = count_in_process if args.in_process else count_instructions
            requests, serving, others = count(args, database, key, stack, variant, folder)
            counted[variant] = requests, serving, others
            others_text = "" if args.in_process else f"; {others:>7,.0f} other threads"
            print(
                f"  {variant:<26} {serving:>9,.0f} instructions a request, serving thread"
                f"{others_text} ({requests:,} requests)",
                flush=True,
            )
    print(
        "\nwith keyturn / without: the serving thread's instructions a request, without / "
        "with, and what keyturn adds there"
    )
    for base, with_keyturn, _ in PAIRS:
        before, after = counted[base][1], counted[with_keyturn][1]
        print(
            f"  {with_keyturn:<26} / {base:<10} {before / after:.3f}  "
            f"(+{after - before:,.0f} instructions)"
        )


def installed(stack: str) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in STACKS[stack] if m != "asyncio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--stacks",
        default=",".join(STACKS),
        help="server stacks to measure, in turn: h11 (on asyncio), uvloop (httptools on uvloop)",
    )
    parser.add_argument("--http", help=argparse.SUPPRESS)
    parser.add_argument("--loop", help=argparse.SUPPRESS)
    parser.add_argument("--server-cpu", type=int, default=0, help="-1: do not pin")
    parser.add_argument("--wrk-cpu", type=int, default=1, help="-1: do not pin")
    parser.add_argument("--wrk", default="wrk")
    parser.add_argument(
        "--mode",
        choices=["concurrent", "sequential"],
        default="concurrent",
        help="load each pair at the same time (steadier on a shared machine) or in turn",
    )
    parser.add_argument(
        "--verification-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keyturn's verification log (default: on, as deployed); off shows what it costs",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request under callgrind (one connection) instead of timing",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="with --instructions: drive each app through uvicorn's protocol in process "
        "(finer, for small changes)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--drive", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--requests", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    unshadow_stdlib_http()
    if args.serve:
        serve(args)
        return
    if args.drive:
        drive(args)
        return
    if args.instructions and shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    if args.in_process and not args.instructions:
        raise SystemExit("--in-process counts instructions: give --instructions too")
    if shutil.which(args.wrk) is None and not args.in_process:
        raise SystemExit(
            "wrk is not installed: apt-get install wrk (Debian/Ubuntu) or brew install wrk"
        )
    if (os.cpu_count() or 1) < 2:
        args.server_cpu = args.wrk_cpu = -1
    stacks = [name.strip() for name in args.stacks.split(",") if name.strip()]
    unknown = [name for name in stacks if name not in STACKS]
    if unknown:
        raise SystemExit(f"unknown stack {unknown[0]!r}: choose from {', '.join(STACKS)}")
    missing = [name for name in stacks if not installed(name)]
    if missing:
        raise SystemExit(
            f"the {missing[0]} stack needs {' and '.join(STACKS[missing[0]])}: "
            "pip install -e '.[dev,bench]'"
        )

    from keyturn import KeyManager

    if args.instructions and args.in_process:
        measured = f"under callgrind, in process, {IN_PROCESS:,} requests each"
    elif args.instructions:
        measured = f"under callgrind, wrk -t1 -c1 for {args.duration:g} s each"
    else:
        measured = (
            f"{args.mode} pairs, {args.rounds} rounds x {args.duration:g} s per stack, "
            f"wrk -t1 -c{args.connections}"
        )
    print(
        f"{len(VARIANTS)} apps, {measured}, "
        f"Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, server on CPU "
        f"{args.server_cpu if args.server_cpu >= 0 else 'any'}, wrk on CPU "
        f"{args.wrk_cpu if args.wrk_cpu >= 0 else 'any'}, verification log "
        f"{'on' if args.verification_log else 'off'}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        database = f"sqlite:///{Path(tmp) / 'bench.db'}"
        with KeyManager(database) as manager:
            key = manager.create_key("bench", scopes=[SCOPE]).key
        for stack in stacks:
            if args.instructions:
                http, loop = STACKS[stack]
                print(f"\n== uvicorn http={http} loop={loop}, under callgrind ==", flush=True)
                report_instructions(args, database, key, stack)
                continue
            results = measure_stack(args, database, key, stack)
            http, loop = STACKS[stack]
            print(f"\n== uvicorn http={http} loop={loop} ==  (load average {load_average()})")
            report(results)  # each stack's as soon as it is measured


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages: what else was running meanwhile."""
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:  # pragma: no cover - not on this platform
        return "n/a"


def measure_stack(args: argparse.Namespace, database: str, key: str, stack: str) -> Pairs:
    http, loop = STACKS[stack]
    print(f"\nuvicorn http={http} loop={loop}  (load average {load_average()})", flush=True)
    with servers(args, database, stack) as urls:
        for variant, (url, pid) in urls.items():
            expected = 401 if "keyturn" in variant else 200
            got = status_of(url, None)
            assert got == expected, f"{variant}: {got} without a key"
            assert status_of(url, key) == 200, f"{variant} refuses the bench key"
            wrk(args, url, pid, key, 1)  # warm up: lazy imports and caches
        results: Pairs = {i: [] for i in range(len(PAIRS))}
        for round_no in range(args.rounds):
            for index, pair in measure_round(args, urls, key, round_no).items():
                results[index].append(pair)
            done = ", ".join(
                f"{PAIRS[i][1]} {results[i][-1][1].rps / results[i][-1][0].rps:.3f}"
                for i in results
            )
            print(f"  round {round_no + 1} (with/without): {done}", flush=True)
    return results


def report(results: Pairs) -> None:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    print("\nrequests/s, median over rounds (min-max), and the server's CPU time per request")
    for index, rounds in results.items():
        base, with_keyturn, _ = PAIRS[index]
        for position, variant in enumerate((base, with_keyturn)):
            runs = [pair[position] for pair in rounds]
            rps = [run.rps for run in runs]
            cpus = [run.cpu_us for run in runs if run.cpu_us is not None]
            cpu_text = f"{median(cpus):7.1f} µs" if len(cpus) == len(runs) else "    n/a"
            print(
                f"  {variant:<26} {median(rps):>9,.0f}  ({min(rps):,.0f}-{max(rps):,.0f})  "
                f"{cpu_text}  {DESCRIPTIONS[variant]}"
            )
    print(
        "\nwith keyturn / without: paired throughput ratio (median of per-round ratios; the "
        "verdict), ratio of median throughputs, and CPU per request without / with"
    )
    for index, rounds in results.items():
        base, with_keyturn, target = PAIRS[index]
        paired = median([b.rps / a.rps for a, b in rounds])
        of_medians = median([b.rps for _, b in rounds]) / median([a.rps for a, _ in rounds])
        cpu_pairs = [(a.cpu_us, b.cpu_us) for a, b in rounds if a.cpu_us and b.cpu_us]
        by_cpu = median([a / b for a, b in cpu_pairs]) if len(cpu_pairs) == len(rounds) else 0
        goal = f"target >= {target:.2f}" if target else "informative"
        verdict = "" if target is None else ("  ok" if paired >= target else "  BELOW TARGET")
        print(
            f"  {with_keyturn:<26} / {base:<10} paired {paired:.3f}  medians {of_medians:.3f}  "
            f"cpu {by_cpu:.3f}  ({goal}){verdict}"
        )


if __name__ == "__main__":
    main()
