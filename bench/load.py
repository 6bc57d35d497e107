"""Load, not just throughput: ``/auth`` at fixed offered rates, and under a forged-key flood.

wrk is closed-loop: when the server slows down, wrk sends less, and the slow requests it
never sent are missing from its percentiles (coordinated omission). This generator is open
loop: request *i* is due at ``start + i / rate`` whatever happened to the ones before, and
its latency is counted from when it was due, so a stall shows up in the percentiles of every
request it delayed.

The store is PostgreSQL with ``--keys`` keys (1,000,000 by default: a few thousand made by
the admin layer, whose plaintext the generator holds, and filler rows of the same shape).
Every ``keyturn serve`` instance runs as ``keyturn serve`` does (its uvicorn settings, the
access log on, the cache and the change feed). The offered load is 95% requests with a hot
key (cached after the first request) and 5% with a key not asked for before (a cache miss,
one store read); each instance gets its share of the requests round robin.

It prints, for one and for two instances: p50, p99 and p99.9 latency and the completed rate
per offered rate, and the highest offered rate at which p99 stays under 5 ms. Then the
flood: the same legitimate load, first alone and then with as many requests again made of
fresh forged keys (well-formed, valid checksum, unknown: each one misses the cache and
reaches the store), and the legitimate requests' throughput and p99 in both (targets:
throughput >= 0.7x, p99 < 2x the p99 without the flood). The generator plays a proxy that
keyturn trusts (``X-Forwarded-For``): legitimate requests come from 200 client addresses,
and the forged keys first all from one (which keyturn throttles after its first unknown
keys), then each from an address of its own (which only the store-read limit bounds).

Run: ``.venv/bin/python bench/load.py [--keys 1000000] [--rates 100,200,400,800]
[--seconds 5] [--postgres URL]`` with PostgreSQL on loopback (a database of its own is made
and dropped). The generator is one Python process: on a small machine it, not the server,
may be what limits the highest rates; it prints how late it was sending, so that shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# Run as a script, this folder comes first on sys.path, and bench/http.py (another
# benchmark) would shadow the standard library's http package, which uvicorn imports.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != _HERE]

HOT_KEYS = 50
MISS_SHARE = 0.05
P99_BOUND = 0.005  # seconds
CONNECTIONS = 64  # per instance, at most; opened as the offered load needs them
TIMEOUT = 5.0  # a request not answered by then counts as failed
FLOODER = "203.0.113.9"

_FILLER = """
INSERT INTO keys (id, key_hash, prefix, start, "end", name, owner, scopes, metadata,
                  created_at)
SELECT 'key_' || substr(md5(random()::text), 1, 16),
       md5(random()::text) || md5(random()::text),
       'kt_live', substr(md5(random()::text), 1, 4), substr(md5(random()::text), 1, 4),
       'bench-' || i, 'bench', 'read', '{}', now()
FROM generate_series(1, %s) AS i
"""


# -- the store --------------------------------------------------------------------------


@contextlib.contextmanager
def database(admin_url: str) -> Iterator[str]:
    """A database of its own on the server at ``admin_url``, dropped afterwards."""
    import psycopg

    name = f"keyturn_load_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def populate(url: str, total: int, real: int) -> list[str]:
    """``real`` keys made by the admin layer (returned), filler rows up to ``total``."""
    import psycopg

    from keyturn import Actor, KeyManager, NewKey

    with KeyManager(url) as manager:
        news = (NewKey(f"load-{i}", ["read"], None, "bench") for i in range(real))
        keys = [issued.key for issued in manager.admin.create_many(Actor.operator(), news)]
    with psycopg.connect(url, autocommit=True) as conn:
        left = total - real
        while left > 0:
            size = min(250_000, left)
            conn.execute(_FILLER, (size,))  # type: ignore[arg-type]
            left -= size
        conn.execute("ANALYZE keys")
    return keys


# -- the servers ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def instances(url: str, count: int) -> Iterator[list[int]]:
    """``count`` ``keyturn serve`` processes on one store: their ports."""
    ports = [free_port() for _ in range(count)]
    env = {**os.environ, "KEYTURN_DATABASE_URL": url, "KEYTURN_LOG_LEVEL": "warning",
           "KEYTURN_TRUSTED_PROXIES": "127.0.0.1"}  # the generator plays the proxy
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "keyturn", "serve", "--port", str(port), "--access-log"],
            env=env,
            stdout=subprocess.DEVNULL,  # the access log: written, as in production
            stderr=subprocess.DEVNULL,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 60
        for port in ports:
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


# -- the open-loop generator -------------------------------------------------------------


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # of answered requests, seconds
    statuses: dict[int, int] = field(default_factory=dict)
    failed: int = 0
    late: list[float] = field(default_factory=list)  # how late each request was sent

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Pool:
    """Keep-alive connections to one instance, opened as needed (up to ``CONNECTIONS``)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0
        self.freed = asyncio.Condition()

    async def take(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with self.freed:
            while not self.idle and self.opened >= CONNECTIONS:
                await self.freed.wait()
            if self.idle:
                return self.idle.pop()
            self.opened += 1
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def give(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        async with self.freed:
            if conn is None:
                self.opened -= 1
            else:
                self.idle.append(conn)
            self.freed.notify()


async def one(pool: Pool, request: bytes) -> int:
    """Send one request on a pooled connection; its status."""
    conn = await pool.take()
    try:
        reader, writer = conn
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await reader.readexactly(length)
    except BaseException:
        conn[1].close()
        await pool.give(None)
        raise
    await pool.give(conn)
    return status


def request_for(key: str, client: str) -> bytes:
    """``/auth`` as a proxy asks it, naming the client in ``X-Forwarded-For``."""
    return (
        b"GET /auth HTTP/1.1\r\nhost: bench\r\nx-forwarded-uri: /orders\r\n"
        b"x-forwarded-for: " + client.encode() + b"\r\n"
        b"authorization: Bearer " + key.encode() + b"\r\n\r\n"
    )


async def offer(
    ports: list[int], rate: float, seconds: float, keys: Iterator[tuple[str, bytes]]
) -> dict[str, Result]:
    """Requests due at ``rate`` per second for ``seconds``, round robin over ``ports``;
    results by the label each key came with."""
    pools = [Pool(port) for port in ports]
    results: dict[str, Result] = {}
    tasks = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    total = int(rate * seconds)

    async def timed(index: int, label: str, request: bytes, due: float) -> None:
        result = results.setdefault(label, Result())
        result.late.append(loop.time() - due)
        try:
            status = await asyncio.wait_for(one(pools[index % len(pools)], request), TIMEOUT)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
            result.failed += 1
            return
        result.latencies.append(loop.time() - due)
        result.statuses[status] = result.statuses.get(status, 0) + 1

    for index in range(total):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        label, request = next(keys)
        tasks.append(asyncio.create_task(timed(index, label, request, due)))
    await asyncio.gather(*tasks)
    for pool in pools:
        for _, writer in pool.idle:
            writer.close()
    return results


def legitimate(hot: list[str], cold: Iterator[str]) -> Iterator[tuple[str, bytes]]:
    """95% hot keys (cached), 5% keys not asked for before (a store read each)."""
    chooser = random.Random(7)
    hot_requests = [request_for(k, f"198.51.100.{n % 200 + 1}") for n, k in enumerate(hot)]
    while True:
        if chooser.random() < MISS_SHARE:
            yield "miss", request_for(next(cold), f"198.51.100.{chooser.randrange(1, 201)}")
        else:
            yield "hit", chooser.choice(hot_requests)


def flooded(normal: Iterator[tuple[str, bytes]], spread: bool) -> Iterator[tuple[str, bytes]]:
    """Every other request a fresh forged key (well-formed, never issued), all from one
    client address, or (``spread``) each from an address of its own."""
    from keyturn import generate_key

    addresses = (f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in range(1, 1 << 24))
    while True:
        yield next(normal)
        yield "forged", request_for(generate_key(), next(addresses) if spread else FLOODER)


def show(label: str, result: Result, offered: float, seconds: float) -> str:
    done = len(result.latencies)
    late = statistics.median(result.late) * 1e3 if result.late else 0.0
    return (
        f"{label:<7} offered {offered:7.0f}/s  done {done / seconds:7.0f}/s  "
        f"p50 {result.percentile(0.5) * 1e3:7.2f} ms  p99 {result.percentile(0.99) * 1e3:7.2f} ms"
        f"  p99.9 {result.percentile(0.999) * 1e3:7.2f} ms  failed {result.failed}"
        f"  statuses {dict(sorted(result.statuses.items()))}  sent late (median) {late:.2f} ms"
    )


def merged(results: dict[str, Result], labels: tuple[str, ...]) -> Result:
    out = Result()
    for label in labels:
        part = results.get(label, Result())
        out.latencies += part.latencies
        out.failed += part.failed
        out.late += part.late
        for status, n in part.statuses.items():
            out.statuses[status] = out.statuses.get(status, 0) + n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--real", type=int, default=20_000, help="keys made by the admin layer")
    parser.add_argument("--rates", default="100,200,400,800,1200", help="offered rates, per s")
    parser.add_argument("--seconds", type=float, default=5.0, help="per offered rate")
    parser.add_argument("--instances", default="1,2", help="'': the flood alone")
    parser.add_argument(
        "--flood-rate",
        type=float,
        default=0,
        help="legitimate rate (0: half the highest rate with p99 under 5 ms on one instance)",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "KEYTURN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    print(
        f"/auth load on PostgreSQL, {args.keys:,} keys, {MISS_SHARE:.0%} misses, "
        f"{args.seconds:g} s per rate, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    with database(args.postgres) as url:
        started = time.monotonic()
        keys = populate(url, args.keys, args.real)
        print(f"store populated in {time.monotonic() - started:.0f} s\n", flush=True)
        hot, cold = keys[:HOT_KEYS], iter(keys[HOT_KEYS:])
        best: dict[int, float] = {}
        for count in [int(n) for n in args.instances.split(",") if n.strip()]:
            print(f"== {count} instance{'s' if count > 1 else ''} ==", flush=True)
            with instances(url, count) as ports:
                asyncio.run(offer(ports, 50, 1, legitimate(hot, cold)))  # warm up
                for rate in rates:
                    results = asyncio.run(offer(ports, rate, args.seconds, legitimate(hot, cold)))
                    everything = merged(results, ("hit", "miss"))
                    print(show("all", everything, rate, args.seconds))
                    print(
                        "  "
                        + show(
                            "miss", results.get("miss", Result()), rate * MISS_SHARE, args.seconds
                        ),
                        flush=True,
                    )
                    ok = everything.failed == 0 and everything.percentile(0.99) < P99_BOUND
                    if ok:
                        best[count] = max(best.get(count, 0.0), rate)
            print(f"highest offered rate with p99 < 5 ms: {best.get(count, 0):.0f}/s\n", flush=True)

        rate = args.flood_rate or max(50.0, best.get(1, rates[0]) / 2)  # flood doubles it
        print(
            f"== forged-key flood, one instance: {rate:.0f}/s legitimate, {rate:.0f}/s forged ==",
            flush=True,
        )
        with instances(url, 1) as ports:
            asyncio.run(offer(ports, 50, 1, legitimate(hot, cold)))
            calm = asyncio.run(offer(ports, rate, args.seconds, legitimate(hot, cold)))
            before = merged(calm, ("hit", "miss"))
            print(show("calm", before, rate, args.seconds))
            for spread in (False, True):
                storm = asyncio.run(
                    offer(ports, 2 * rate, args.seconds, flooded(legitimate(hot, cold), spread))
                )
                during = merged(storm, ("hit", "miss"))
                source = "each from its own address" if spread else f"all from {FLOODER}"
                print(f"-- forged keys {source} --")
                print(show("flooded", during, rate, args.seconds))
                print(show("forged", storm.get("forged", Result()), rate, args.seconds))
                kept = len(during.latencies) / max(1, len(before.latencies))
                p99 = during.percentile(0.99) / before.percentile(0.99)
                print(
                    f"legitimate throughput under the flood {kept:.2f}x (target >= 0.70), "
                    f"p99 {p99:.2f}x the calm p99 (target < 2.00)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
