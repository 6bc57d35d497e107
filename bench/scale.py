"""Scale-out benchmark: one against two ``keyturn serve`` instances on PostgreSQL, and what a
cache miss costs on PostgreSQL against SQLite. Figures as ratios, from one run.

1. Forward-auth throughput (``GET /auth``, wrk on loopback) through one instance, then
   through two sharing one PostgreSQL database (wrk against each at once, totals summed):
   - a plain key: answered from each instance's cache, PostgreSQL is not involved;
   - a key with credits: every request spends one credit in PostgreSQL (a row update), so
     the database is on every request's path.
   Ratio two/one: how far a second instance adds capacity. On a machine with fewer cores
   than processes (instances + wrk + PostgreSQL) the ratio says more about the machine A
   key with credits is bounded per key by the database's commit latency (its row is locked
   from update to commit), whatever the number of instances.
2. A verify that misses the cache, in process (``KeyManager.verify_asgi`` with no cache),
   on PostgreSQL (pooled connection, loopback) and on SQLite (WAL, local file): medians of
   alternating rounds, and their ratio.

Run:  .venv/bin/python bench/scale.py [--duration 5] [--rounds 5] [--connections 16]
Needs PostgreSQL (``$KEYTURN_BENCH_POSTGRES``, default postgresql://postgres@127.0.0.1:5432/
postgres; a scratch database is created and dropped) and wrk.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from keyturn import KeyCache, KeyManager

ADMIN_URL = os.environ.get(
    "KEYTURN_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    name = f"keyturn_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}"))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def instances(db_url: str, count: int, workdir: Path) -> Iterator[list[str]]:
    """``count`` instances of ``keyturn serve`` on ``db_url``; their base URLs."""
    keyturn = [sys.executable, "-c", "from keyturn.cli import main; main()"]
    env = {**os.environ, "KEYTURN_DATABASE_URL": db_url, "KEYTURN_ACCESS_LOG": "false"}
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for n in range(count):
            log = workdir / f"serve-{n}.err"
            with log.open("w") as err:
                process = subprocess.Popen(
                    [*keyturn, "serve", "--port", "0"],
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    stdin=subprocess.DEVNULL,
                    env=env,
                )
            started.append((process, log))
        urls = []
        for process, log in started:
            deadline = time.monotonic() + 60
            while not (match := RUNNING.search(log.read_text())):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"keyturn serve did not start:\n{log.read_text()}")
                time.sleep(0.05)
            urls.append(f"http://127.0.0.1:{match.group(1)}")
        yield urls
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            process.wait(timeout=30)


def wrk(urls: list[str], key: str, duration: float, connections: int) -> float:
    """Requests per second through all ``urls`` at once (connections split between them)."""
    per = max(1, connections // len(urls))
    runs = [
        subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{per}",
                f"-d{max(1, round(duration))}s",
                "-H",
                f"Authorization: Bearer {key}",
                f"{url}/auth",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for url in urls
    ]
    total = 0.0
    for run in runs:
        out, _ = run.communicate()
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if not match:
            raise RuntimeError(f"wrk said:\n{out}")
        if "Non-2xx" in out:
            raise RuntimeError(f"some requests were refused:\n{out}")
        total += float(match.group(1))
    return total


def throughput(db_url: str, args: argparse.Namespace) -> dict[str, tuple[float, float, float]]:
    """Per key kind: median requests/s through one instance, through two, and the median of
    per-round ratios. Both instances run throughout; rounds alternate one and two, so a
    noisy, shared machine hurts both alike."""
    with KeyManager(db_url) as manager:
        plain = manager.create_key("bench-plain", expires_in=None).key
        paid = manager.create_key("bench-paid", expires_in=None, credits=10**11).key
    results: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, instances(db_url, 2, Path(tmp)) as urls:
        for kind, key in (("plain", plain), ("credits", paid)):
            wrk(urls, key, 1, args.connections)  # warm up: caches and pools
            ones, twos = [], []
            for n in range(args.rounds):
                order = (1, 2) if n % 2 == 0 else (2, 1)
                for count in order:
                    rate = wrk(urls[:count], key, args.duration, args.connections)
                    (ones if count == 1 else twos).append(rate)
            paired = statistics.median(t / o for o, t in zip(ones, twos, strict=True))
            results[kind] = (statistics.median(ones), statistics.median(twos), paired)
    return results


def miss_cost(pg_url: str, rounds: int, calls: int = 2000) -> dict[str, float]:
    """Median seconds per cache-missing verify on each engine, alternating rounds."""
    with tempfile.TemporaryDirectory() as tmp:
        urls = {"postgresql": pg_url, "sqlite": f"sqlite:///{Path(tmp) / 'k.db'}"}
        contenders: dict[str, Callable[[], object]] = {}
        managers = []
        for engine, url in urls.items():
            manager = KeyManager(url, cache=KeyCache(maxsize=0))
            managers.append(manager)
            key = manager.create_key("miss", expires_in=None).key
            headers = [(b"authorization", f"Bearer {key}".encode())]
            assert manager.verify_asgi(headers).ok
            contenders[engine] = lambda m=manager, h=headers: m.verify_asgi(h)
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for func in contenders.values():
            for _ in range(calls // 10):
                func()
        for _ in range(rounds):
            for name, func in contenders.items():
                start = time.perf_counter()
                for _ in range(calls):
                    func()
                samples[name].append((time.perf_counter() - start) / calls)
        for manager in managers:
            manager.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/scale.py needs wrk: apt-get install wrk")
    with scratch_database() as db_url:
        rates = throughput(db_url, args)
        costs = miss_cost(db_url, max(args.rounds, 5))
    print(f"keyturn scale-out benchmark ({os.cpu_count()} CPUs; medians of {args.rounds} rounds)")
    print()
    print("forward-auth (GET /auth) requests/s     one instance   two instances   two/one*")
    for kind, label in (
        ("plain", "plain key (cached)"),
        ("credits", "key with credits (PG write)"),
    ):
        one, two, paired = rates[kind]
        print(f"  {label:<36} {one:>10,.0f}   {two:>13,.0f}   {paired:>6.2f}x")
    print()
    pg, lite = costs["postgresql"], costs["sqlite"]
    print("cache-miss verify, in process           PostgreSQL       SQLite    PG/SQLite")
    print(f"  {'per verify':<36} {pg * 1e6:>8.1f} µs  {lite * 1e6:>8.1f} µs   {pg / lite:>6.2f}x")
    print()
    print("* median of per-round ratios (rounds alternate one and two instances)")


if __name__ == "__main__":
    main()
