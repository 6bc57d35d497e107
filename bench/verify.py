"""Verify-path benchmark: keyturn against a hand-written bare ceiling, side by side.

Prints, from one run:
- the cached verify (``KeyManager.verify_asgi``: the core's decision for a request, which
  the ASGI middleware makes in its ``triage`` form) against a bare ceiling (find the
  header, split off ``Bearer``, SHA-256, dict lookup, expiry check); target: at most 2x
  for the core with the verification log off (the target was set before the log existed,
  and the log has its own budget, below), and beside it, in the same rounds, the default
  manager with the log on (the core plus the log's queueing), against the same ceiling;
- the cached verify of a key restricted by address (``allowed_ips``: the client's address
  is checked on the fast path) and of an unrestricted key with the peer given, against the
  plain cached verify; target: at most 1.10x;
- the cached verify with the verification log off, against the same with it on (the
  default: the core queues every decision), called as the ASGI middleware calls it (with
  what it saw of the request: method, path, a new request id; the user agent left to the
  core), no entry dropped; target: at most 1.10x; and the writer's CPU time per entry it
  writes (entries of one shape, and of a new path each), which the serving thread's time
  does not count, added to it;
- the verify of a key holding its scope through roles against a key holding it itself,
  cached (target: at most 1.10x) and missing the cache (the read joins the roles' scopes);
- a verify that misses the cache (SQLite lookup) with 1,000 and with 1,000,000 keys, against
  a bare ``sqlite3`` fetch of the same row (``SELECT * ... WHERE key_hash = ?``, no Python
  around it) measured in the same rounds; target: at most 1.5x at 1,000,000 keys (the big
  store holds 1,000 keys made by the admin layer and filler rows of the same shape). Two
  pairs, each side reading the same rows: one key missed again and again (its row read
  again: the store keeps the record made of it) against the bare fetch of that one row,
  and the 1,000 keys in turn on a store that keeps no rows (each row read for the first
  time: its record built) against the bare fetch of the same 1,000 rows in the same turn.
  As for the cached target, the target rows are the core (the verification log off: the
  log has its own budget, 1d, and its writer would also write into the file both sides
  read); the first reads with the log on (the default manager) are printed beside them;
- keys created per second (one transaction each, and in bulk).

Rounds alternate between the contenders so that a noisy, shared machine hurts both alike;
figures are medians over rounds, in CPU time of the measuring thread (see ``per_call``).
Run: ``.venv/bin/python bench/verify.py [--big N] [--hot-only | --miss-only]``
(``--hot-only``: the sections that need no million-key store; ``--miss-only``: only the
cache misses).
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from hashlib import sha256
from pathlib import Path

from keyturn import Actor, IssuedKey, KeyCache, KeyManager, NewKey
from keyturn._request_ids import new_id
from keyturn._verifications import Seen, VerificationLog
from keyturn.keys import builtin_sha256 as fastest_sha256

Headers = list[tuple[bytes, bytes]]


def request_headers(key: str) -> Headers:
    return [
        (b"host", b"api.example.com"),
        (b"user-agent", b"python-httpx/0.28"),
        (b"accept", b"application/json"),
        (b"authorization", b"Bearer " + key.encode()),
    ]


def bare_ceiling(table: dict[str, float]) -> Callable[[Headers], bool]:
    """The least work that can check a key: what keyturn's hot path is measured against.
    It hashes the header's bytes as sent with the SHA-256 keyturn itself uses (CPython's
    built-in one, cheaper per call than OpenSSL's), so the ceiling is no slower than
    keyturn for a reason that is not keyturn's own work."""

    def verify(headers: Headers) -> bool:
        for name, value in headers:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"bearer":
                    return False
                expires = table.get(fastest_sha256(token).hexdigest())
                return expires is not None and time.time() < expires
        return False

    return verify


def per_call(func: Callable[[], object], calls: int) -> float:
    """CPU seconds of this thread per call: on a shared, loaded machine the wall clock also
    counts the time other processes hold the CPU, which hurts whichever contender runs
    then; the thread's own CPU time is what a call costs. (Alone on a machine, the two
    agree.)"""
    start = time.thread_time()
    for _ in range(calls):
        func()
    return (time.thread_time() - start) / calls


def side_by_side(
    contenders: dict[str, Callable[[], object]], rounds: int, calls: int
) -> dict[str, float]:
    """Median seconds per call for each contender, measured in alternating rounds."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for func in contenders.values():
        per_call(func, calls // 10)  # warm up
    for _ in range(rounds):
        for name, func in contenders.items():
            samples[name].append(per_call(func, calls))
    return {name: statistics.median(values) for name, values in samples.items()}


REAL_KEYS = 1_000
# Rows shaped as keyturn writes them (random 64-hex hash, key id, display parts), made by
# SQLite itself: a million keys through the admin layer take minutes, and the lookup
# cost depends on the index and the table, not on who wrote the rows.
_FILLER = """
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
INSERT INTO keys (id, key_hash, prefix, start, "end", name, owner, scopes, metadata,
                  created_at)
SELECT 'key_' || lower(hex(randomblob(8))), lower(hex(randomblob(32))), 'kt_live',
       substr(hex(randomblob(2)), 1, 4), substr(hex(randomblob(2)), 1, 4),
       'bench-' || i, 'bench', 'read', '{}', ?
FROM n
"""


def populate(url: str, count: int) -> tuple[KeyManager, list[IssuedKey]]:
    """A store with ``count`` keys: ``REAL_KEYS`` made through the admin layer (returned,
    to look up), the rest filler rows of the same shape, in the same table."""
    # Every verify goes to SQLite; the core, the verification log off (see ``misses``).
    manager = KeyManager(url, cache=KeyCache(maxsize=0), verification_log=False)
    news = (NewKey(f"bench-real-{i}", ["read"], None, "bench") for i in range(REAL_KEYS))
    issued = manager.admin.create_many(Actor.operator("bench"), news)
    path = url.removeprefix("sqlite:///")
    raw = sqlite3.connect(path, isolation_level=None)
    left = count - REAL_KEYS
    while left > 0:
        size = min(200_000, left)
        raw.execute("BEGIN")
        raw.execute(_FILLER, (size, time.time()))
        raw.execute("COMMIT")
        left -= size
    raw.execute("ANALYZE")
    raw.close()
    return manager, issued


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=1_000_000, help="keys in the large store")
    parser.add_argument("--rounds", type=int, default=15)
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--hot-only", action="store_true", help="only the sections without the large store"
    )
    only.add_argument("--miss-only", action="store_true", help="only the cache misses")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="keyturn-bench-") as tmp:
        run(args, Path(tmp))  # a million keys take ~700 MB: never leave them behind


def run(args: argparse.Namespace, folder: Path) -> None:
    print(f"keyturn verify benchmark (median of {args.rounds} alternating rounds)\n")
    if not args.miss_only:
        hot(args, folder)
    if not args.hot_only:
        misses(args, folder)
    if not (args.hot_only or args.miss_only):
        creation(folder)


def hot(args: argparse.Namespace, folder: Path) -> None:
    # 1. Cached verify against the bare ceiling: the core (the verification log off), which
    # is what the target is about, and the default manager (the log on), in the same rounds.
    cached = KeyManager(f"sqlite:///{folder / 'cached.db'}", cache=KeyCache(ttl=3600))
    unlogged = KeyManager(
        f"sqlite:///{folder / 'cached.db'}", cache=KeyCache(ttl=3600), verification_log=False
    )
    issued = cached.create_key("bench", scopes=["read"])
    headers = request_headers(issued.key)
    assert cached.verify_asgi(headers).code == unlogged.verify_asgi(headers).code == "valid"
    table = {sha256(issued.key.encode()).hexdigest(): time.time() + 3600}
    bare = bare_ceiling(table)
    assert bare(headers)
    hot = side_by_side(
        {
            "bare": lambda: bare(headers),
            "off": lambda: unlogged.verify_asgi(headers),
            "on": lambda: cached.verify_asgi(headers),
        },
        rounds=args.rounds,
        calls=20_000,
    )
    print(f"bare ceiling                                  {hot['bare'] * 1e6:7.2f} µs")
    print(f"cached verify, log off (the core)             {hot['off'] * 1e6:7.2f} µs, "
          f"{hot['off'] / hot['bare']:.2f}x bare   (target <= 2.00x)")
    print(f"cached verify, log on (the default manager)   {hot['on'] * 1e6:7.2f} µs, "
          f"{hot['on'] / hot['bare']:.2f}x bare   (the log's own budget: 1d)\n")

    # 1b. Allow-lists on the same fast path: a restricted key, and the peer passed along.
    office = ["10.0.0.0/8", "172.16.0.0/12", "203.0.113.0/24", "2001:db8::/32"]
    restricted = cached.create_key("bench-ips", scopes=["read"], allowed_ips=office)
    fenced = request_headers(restricted.key)
    assert cached.verify_asgi(fenced, peer="203.0.113.9").code == "valid"
    ips = side_by_side(
        {
            "plain": lambda: cached.verify_asgi(headers),
            "peer": lambda: cached.verify_asgi(headers, peer="203.0.113.9"),
            "restricted": lambda: cached.verify_asgi(fenced, peer="203.0.113.9"),
        },
        rounds=args.rounds,
        calls=20_000,
    )
    print(f"cached verify, no allow-list         {ips['plain'] * 1e6:7.2f} µs")
    print(f"  the same with the peer passed      {ips['peer'] * 1e6:7.2f} µs, "
          f"{ips['peer'] / ips['plain']:.2f}x")
    print(f"  restricted key (4 networks)        {ips['restricted'] * 1e6:7.2f} µs, "
          f"{ips['restricted'] / ips['plain']:.2f}x   (target <= 1.10x)\n")

    # 1c. Roles: the scope held through two roles against held by the key itself.
    operator = Actor.operator("bench")
    cached.roles.put(operator, "bench-reader", ["read", "list"])
    cached.roles.put(operator, "bench-auditor", ["audit:read"])
    roled = cached.create_key("bench-roles", roles=["bench-reader", "bench-auditor"])
    roled_headers = request_headers(roled.key)
    assert cached.verify_asgi(roled_headers, scopes=("read",)).code == "valid"
    assert cached.verify_asgi(headers, scopes=("read",)).code == "valid"
    roles = side_by_side(
        {
            "own": lambda: cached.verify_asgi(headers, scopes=("read",)),
            "roles": lambda: cached.verify_asgi(roled_headers, scopes=("read",)),
        },
        rounds=args.rounds,
        calls=20_000,
    )
    print(f"cached verify, scope held itself     {roles['own'] * 1e6:7.2f} µs")
    print(f"  the scope held through 2 roles     {roles['roles'] * 1e6:7.2f} µs, "
          f"{roles['roles'] / roles['own']:.2f}x   (target <= 1.10x)")
    missing = KeyManager(f"sqlite:///{folder / 'cached.db'}", cache=KeyCache(maxsize=0))
    missed = side_by_side(
        {
            "own": lambda: missing.verify_asgi(headers, scopes=("read",)),
            "roles": lambda: missing.verify_asgi(roled_headers, scopes=("read",)),
        },
        rounds=args.rounds,
        calls=2_000,
    )
    missing.close()
    print(f"cache miss (SQLite), scope held      {missed['own'] * 1e6:7.2f} µs")
    print(f"  through 2 roles (joined)           {missed['roles'] * 1e6:7.2f} µs, "
          f"{missed['roles'] / missed['own']:.2f}x\n")
    # 1d. The verification log, which the core writes for every decision: the cached verify
    # as the ASGI middleware makes it (``KeyturnMiddleware.__call__``: the peer, and what
    # it saw of the request in a ``Seen`` made in C, method, path and a new request id, the
    # user agent left to the core; its ``triage`` form, every argument by position), with
    # the log on (the default) and off, measured in the same rounds. The writer runs beside
    # the rounds, woken by the queue (``WAKE_AT``): no entry is dropped, though the loop
    # queues four times what the queue holds for the writer's interval.

    def as_middleware(manager: KeyManager) -> Callable[[], object]:
        triage = manager.verify_asgi

        def verify() -> object:
            seen = new_seen(Seen, ("GET", "/orders/7", new_id()[0], None, ()))
            return triage(headers, b"", (), "203.0.113.9", seen, True)

        return verify

    new_seen = tuple.__new__
    log = cached.verifications
    dropped = log.dropped
    logged = side_by_side(
        {
            "off": as_middleware(unlogged),
            "on": as_middleware(cached),
            # A direct call of the core, no face around it (informative).
            "direct off": lambda: unlogged.verify_asgi(headers, peer="203.0.113.9"),
            "direct on": lambda: cached.verify_asgi(headers, peer="203.0.113.9"),
        },
        rounds=args.rounds,
        calls=20_000,
    )
    assert log.dropped == dropped, "entries were dropped: the log-on side was overloaded"
    print(f"cached verify, verification log off  {logged['off'] * 1e6:7.2f} µs")
    print(f"  the same, log on (the default)     {logged['on'] * 1e6:7.2f} µs, "
          f"{logged['on'] / logged['off']:.2f}x   (target <= 1.10x)")
    print(f"  called directly (no Seen), off/on  {logged['direct off'] * 1e6:7.2f} / "
          f"{logged['direct on'] * 1e6:.2f} µs, "
          f"{logged['direct on'] / logged['direct off']:.2f}x")
    # The writer's part, which the serving thread's CPU time above does not count (it runs
    # in a thread of its own, and on a server takes CPU the requests would have had): the
    # CPU time of writing queued entries to the store, per entry. A shape is what repeats
    # from request to request (outcome, key, scopes, method, user agent; not the path nor
    # the client): entries of one shape, each after one like it (the best case); of one
    # shape with a new path each; of 50 clients interleaved; of a new client each (the
    # client's address worked out for each); and of a new user agent each (every entry's
    # shape is new and written too: the worst case).
    writer = writer_per_entry(cached, args.rounds)
    total = logged["on"] + writer["50 clients"]
    print(f"  the writer, per entry: one shape   {writer['one shape'] * 1e6:7.2f} µs; "
          f"one shape, a new path each {writer['new paths'] * 1e6:.2f} µs")
    print(f"    50 clients interleaved           {writer['50 clients'] * 1e6:7.2f} µs; "
          f"a new client each {writer['new clients'] * 1e6:.2f} µs")
    print(f"    a new user agent (a new shape) each {writer['new shapes'] * 1e6:4.2f} µs")
    print(f"  log on, serving thread + writer    {total * 1e6:7.2f} µs, "
          f"{total / logged['off']:.2f}x the log off (writer: 50 clients interleaved)\n")
    unlogged.close()
    cached.close()


def writer_per_entry(manager: KeyManager, rounds: int, entries: int = 5_000) -> dict[str, float]:
    """CPU seconds of the verification log's writer per entry (median over rounds), for
    entries queued as the ASGI middleware's are: of one shape; of one shape with a new path
    each; of 50 clients interleaved; of a new client each; of a new user agent (so a new
    shape) each."""
    # A log of its own, whose queue is filled here and whose writer thread never starts:
    # every entry is written by ``flush``, in this thread, where its CPU time is counted.
    log = VerificationLog(manager.store, manager.verifier.proxies, interval=3600)
    key = manager.create_key("bench-writer", scopes=["read"])
    log.note_mask(key.record.id, key.record.masked)
    samples: dict[str, list[float]] = {
        "one shape": [], "new paths": [], "50 clients": [], "new clients": [],
        "new shapes": [],
    }  # fmt: skip
    for round_ in range(rounds):
        for kind, times in samples.items():
            for n in range(entries):
                path = f"/orders/{round_}-{n}" if kind == "new paths" else "/orders/7"
                peer = (f"198.51.100.{n % 50}" if kind == "50 clients" else
                        f"10.{round_ & 255}.{n >> 8 & 255}.{n & 255}" if kind == "new clients"
                        else "203.0.113.9")  # fmt: skip
                agent = f"client/{round_}-{n}" if kind == "new shapes" else "python-httpx/0.28"
                # The user agent left to the core, which queues the header as sent.
                log.queue.extend((time.time(), "valid", key.record.id, peer, (),
                                  agent.encode("latin-1"), *Seen("GET", path, new_id()[0])))
            start = time.thread_time()
            written = log.flush()
            times.append((time.thread_time() - start) / written)
    return {kind: statistics.median(times) for kind, times in samples.items()}


def misses(args: argparse.Namespace, folder: Path) -> None:
    """2. Cache misses on SQLite, small and large store, against the bare fetch of the same
    rows, all in the same alternating rounds."""
    small, small_keys = populate(f"sqlite:///{folder / 'small.db'}", REAL_KEYS)
    big, big_keys = populate(f"sqlite:///{folder / 'big.db'}", args.big)
    small_key, big_key = small_keys[REAL_KEYS // 2], big_keys[REAL_KEYS // 2]
    small_headers = request_headers(small_key.key)
    big_headers = request_headers(big_key.key)
    # A miss whose row was never read before (the record is built from it): every key in
    # turn, on a store that keeps no rows.
    first, logged = (
        KeyManager(f"sqlite:///{folder / 'big.db'}", cache=KeyCache(maxsize=0),
                   verification_log=log)
        for log in (False, True)
    )  # fmt: skip
    first.store.rows_kept = logged.store.rows_kept = 0  # type: ignore[attr-defined]
    rotation = itertools.cycle([request_headers(k.key) for k in big_keys])
    logged_rotation = itertools.cycle([request_headers(k.key) for k in big_keys])
    assert small.verify_asgi(small_headers).code == big.verify_asgi(big_headers).code == "valid"
    # The bare fetch: one statement in autocommit mode (one read transaction), on a
    # connection set up as keyturn's is, no Python around it; of the one row ``big`` reads,
    # and of the same rows in the same turn as ``first``.
    raw = sqlite3.connect(folder / "big.db", isolation_level=None)
    raw.execute("PRAGMA mmap_size = 268435456")
    digest = sha256(big_key.key.encode()).hexdigest()
    digests = itertools.cycle([sha256(k.key.encode()).hexdigest() for k in big_keys])
    select = "SELECT * FROM keys WHERE key_hash = ?"
    assert raw.execute(select, (digest,)).fetchone() is not None
    # With the peer, as the ASGI middleware passes it: a miss works out the client's bucket
    # of the bound on unknown keys (``keyturn._store_reads``).
    peer = "203.0.113.9"
    miss = side_by_side(
        {
            "1k": lambda: small.verify_asgi(small_headers, peer=peer),
            "big": lambda: big.verify_asgi(big_headers, peer=peer),
            "row": lambda: raw.execute(select, (digest,)).fetchone(),
            "first": lambda: first.verify_asgi(next(rotation), peer=peer),
            "first logged": lambda: logged.verify_asgi(next(logged_rotation), peer=peer),
            "rows": lambda: raw.execute(select, (next(digests),)).fetchone(),
        },
        rounds=args.rounds,
        calls=5_000,
    )
    raw.close()
    keys = f"{args.big:,} keys"
    print(f"cache-miss verify, SQLite, 1,000 keys              {miss['1k'] * 1e6:7.2f} µs")
    print(f"ratio {keys}/1,000 keys                 {miss['big'] / miss['1k']:7.2f}x\n")
    print(f"At {keys}, each against the bare sqlite3 fetch of the same rows:")
    print(f"row read again (one key; its record kept)  {miss['big'] * 1e6:7.2f} µs")
    print(f"  bare fetch of that row                   {miss['row'] * 1e6:7.2f} µs")
    print(f"  ratio                                    {miss['big'] / miss['row']:7.2f}x"
          "   (target <= 1.50x)")
    print(f"row read first (1,000 keys; record built)  {miss['first'] * 1e6:7.2f} µs")
    print(f"  bare fetch of those rows in turn         {miss['rows'] * 1e6:7.2f} µs")
    print(f"  ratio                                    {miss['first'] / miss['rows']:7.2f}x"
          "   (target <= 1.50x)")
    print(f"  the same, log on (the default)           {miss['first logged'] * 1e6:7.2f} µs, "
          f"{miss['first logged'] / miss['rows']:.2f}x   (the log's own budget: 1d)\n")
    for m in (small, big, first, logged):
        m.close()


def creation(folder: Path) -> None:
    """3. Keys created per second, through the admin layer (validated, audited)."""
    creator = KeyManager(f"sqlite:///{folder / 'create.db'}")
    n = 500
    t0 = time.perf_counter()
    for i in range(n):
        creator.create_key(f"k{i}", scopes=["read"])
    one_by_one = n / (time.perf_counter() - t0)
    bulk = 20_000
    t0 = time.perf_counter()
    creator.admin.create_many(
        Actor.operator("bench"), (NewKey(f"b{i}", ["read"]) for i in range(bulk))
    )
    in_bulk = bulk / (time.perf_counter() - t0)
    print(f"keys created/s, one transaction each (create_key)     {one_by_one:9,.0f}")
    print(f"keys created/s, in bulk (create_many, {bulk:,} keys)   {in_bulk:9,.0f}")
    creator.close()


if __name__ == "__main__":
    main()
