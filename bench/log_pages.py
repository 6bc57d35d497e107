"""Reading the verification log: a page by request id and by key, stored one row to an entry
(before migration 0100) against stored in blocks, side by side, on SQLite.

Prints, from one run, on a log of ``--entries`` entries (1,000,000 by default) made as
keyturn serving ``--keys`` keys makes them (batches of half a second at ``--rate``
requests a second; request ids in runs of 256 sharing a head; a few shapes, clients and
paths), stored both ways:

- the page of ``GET /v1/verifications?request_id=`` (one entry) and of ``?key_id=`` (the
  100 newest, then 100 from the middle of the key's entries: ``before``), each a store
  call with what it returns made into the entries the API shows; the rows side reads as
  the store did before the blocks (its query and its making of entries are here, as they
  were), the blocks side is the store's ``verifications``;
- each query's plan (``EXPLAIN QUERY PLAN``): a lookup must stay an index read.

Rounds alternate between the two sides; figures are medians over rounds, in microseconds
of the measuring thread's CPU time. Run: ``.venv/bin/python bench/log_pages.py``.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keyturn import KeyManager
from keyturn._verifications import Verification, VerificationFilter
from keyturn.store.migrate import migrations
from keyturn.store.verification_blocks import pack_texts, pack_times, split_request_id
from keyturn.store.verification_rows import blocks_query

PAGE = 100
OUTCOMES = ("valid", "insufficient_scope", "rate_limited")
OUTCOME_WEIGHTS = (90, 5, 5)
PATHS = ("/v1/orders", "/v1/orders/{}", "/v1/users/me")
CLIENTS = ("203.0.113.9", "203.0.113.10", "198.51.100.7")

# The store's read of a page before the blocks (migration 0090's table: a row an entry).
ROWS_READ = (
    "SELECT v.id, v.at, v.request_id, v.key_id, s.masked, s.outcome, v.client, s.method, "
    "v.path, s.user_agent, s.scopes FROM verifications v "
    "JOIN verification_shapes s ON s.id = v.shape WHERE {} ORDER BY v.id DESC LIMIT ?"
)


def traffic(entries: int, keys: int, rate: int) -> list[list[tuple[Any, ...]]]:
    """Batches of entries as the writer takes them: (time, request id, key id, shape,
    client, path)."""
    rng = random.Random(7)
    per_batch = rate // 2
    start = time.time() - entries / rate
    run, batches = 0, []
    for b in range(entries // per_batch):
        batch = []
        for i in range(per_batch):
            n = b * per_batch + i
            if n % 256 == 0:
                run += 1
            key = rng.randrange(keys)
            outcome = rng.choices(range(len(OUTCOMES)), OUTCOME_WEIGHTS)[0]
            shape = key * len(OUTCOMES) + outcome + 1
            path = rng.choice(PATHS).format(rng.randrange(10_000))
            rid = f"{int(start * 1000) + n // 256:012x}5eed5eed5eed{run:06x}{n % 256:02x}"
            batch.append((start + n / rate, rid, f"key{key:05d}", shape,
                          CLIENTS[key % len(CLIENTS)], path))  # fmt: skip
        batches.append(batch)
    return batches


def shapes(keys: int) -> list[tuple[Any, ...]]:
    return [
        (k * len(OUTCOMES) + o + 1, 0.0, outcome, f"kt_...{k:04d}", "GET", "curl/8", "read")
        for k in range(keys) for o, outcome in enumerate(OUTCOMES)
    ]  # fmt: skip


def fill_rows(path: Path, batches: list[list[tuple[Any, ...]]], keys: int) -> None:
    """The log as stored before the blocks: migrations up to 0090, a row an entry."""
    conn = sqlite3.connect(path)
    for migration in migrations("sqlite"):
        if migration.version <= 90:
            conn.executescript(migration.sql)
    conn.executemany("INSERT INTO verification_shapes VALUES (?, ?, ?, ?, ?, ?, ?)",
                     shapes(keys))  # fmt: skip
    conn.executemany(
        "INSERT INTO verifications (at, request_id, key_id, shape, client, path) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (row for batch in batches for row in batch),
    )
    conn.commit()
    conn.close()


def fill_blocks(path: Path, batches: list[list[tuple[Any, ...]]], keys: int) -> int:
    """The log in blocks (the store's own schema): a batch's entries sharing a key, shape
    and request-id head are a block. The number of blocks."""
    KeyManager(f"sqlite:///{path}").close()  # the schema, migrated
    conn = sqlite3.connect(path)
    conn.executemany("INSERT INTO verification_shapes VALUES (?, ?, ?, ?, ?, ?, ?)",
                     shapes(keys))  # fmt: skip
    rows, first = [], 1
    for batch in batches:
        blocks: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        for entry in batch:
            _, rid, key_id, shape, _, _ = entry
            blocks.setdefault((key_id, shape, split_request_id(rid)[0]), []).append(entry)
        for (key_id, shape, head), held in blocks.items():
            times = [e[0] for e in held]
            rows.append((first, max(times), len(held), key_id, shape, head,
                         pack_texts([split_request_id(e[1])[1] for e in held]),
                         pack_times(times), pack_texts([e[5] for e in held]),
                         pack_texts([e[4] for e in held])))  # fmt: skip
            first += len(held)
    conn.executemany(
        "INSERT INTO verifications (id, at, count, key_id, shape, head, tails, times, paths, "
        "clients) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    conn.close()
    return len(rows)


def rows_page(conn: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> list[Any]:
    """A page as the store read it before the blocks: the query, then an entry a row."""
    found = conn.execute(ROWS_READ.format(where), (*params, PAGE)).fetchall()
    return [
        Verification(int(r[0]), datetime.fromtimestamp(r[1], UTC), r[2], r[3], r[4], r[5],
                     r[6], r[7], r[8], r[9], None if r[10] is None else tuple(r[10].split()))
        for r in found
    ]  # fmt: skip


def cpu_us(call: Callable[[], object], times: int = 20) -> float:
    started = time.thread_time()
    for _ in range(times):
        call()
    return (time.thread_time() - started) / times * 1e6


def plan(conn: sqlite3.Connection, query: str, params: Any) -> str:
    return "; ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {query}", params))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--rate", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=31)
    args = parser.parse_args()
    batches = traffic(args.entries, args.keys, args.rate)
    everything = [e for batch in batches for e in batch]
    with tempfile.TemporaryDirectory() as folder:
        rows_db, blocks_db = Path(folder, "rows.db"), Path(folder, "blocks.db")
        fill_rows(rows_db, batches, args.keys)
        count = fill_blocks(blocks_db, batches, args.keys)
        print(f"{len(everything):,} entries, {args.keys} keys, {args.rate:,} a second: "
              f"{count:,} blocks ({len(everything) / count:.1f} entries a block)")  # fmt: skip
        conn = sqlite3.connect(rows_db)
        manager = KeyManager(f"sqlite:///{blocks_db}")
        store = manager.store
        rng = random.Random(11)
        rid = rng.choice(everything)[1]
        key_id = "key00007"
        mine = [i + 1 for i, e in enumerate(everything) if e[2] == key_id]
        middle = mine[len(mine) // 2]
        cases: list[tuple[str, Callable[[], list[Any]], Callable[[], list[Any]]]] = [
            ("request_id", lambda: rows_page(conn, "v.request_id = ?", (rid,)),
             lambda: store.verifications(VerificationFilter(request_id=rid), limit=PAGE)),
            ("key_id, newest", lambda: rows_page(conn, "v.key_id = ?", (key_id,)),
             lambda: store.verifications(VerificationFilter(key_id=key_id), limit=PAGE)),
            ("key_id, before", lambda: rows_page(conn, "v.key_id = ? AND v.id < ?",
                                                 (key_id, middle)),
             lambda: store.verifications(VerificationFilter(key_id=key_id), limit=PAGE,
                                         before=middle)),
        ]  # fmt: skip
        print(f"one page ({PAGE} entries at most), CPU µs, median of {args.rounds} rounds:")
        for name, before, after in cases:
            # The same entries both ways (their ids differ: a block's entries are numbered
            # together), a full page of the key's.
            assert len(before()) == len(after()), name
            assert [replace(v, id=0) for v in before()] == [replace(v, id=0) for v in after()] \
                or name != "request_id"
            spent: dict[str, list[float]] = {"rows": [], "blocks": []}
            for _ in range(args.rounds):
                spent["rows"].append(cpu_us(before))
                spent["blocks"].append(cpu_us(after))
            old, new = (statistics.median(spent[side]) for side in ("rows", "blocks"))
            print(f"  {name:16} rows {old:8.1f}   blocks {new:8.1f}   blocks/rows {new / old:.2f}x")
        blocks_conn = sqlite3.connect(blocks_db)
        print("plans, blocks:")
        for name, wanted in (("request_id", VerificationFilter(request_id=rid)),
                             ("key_id", VerificationFilter(key_id=key_id))):  # fmt: skip
            query, params = blocks_query(store.dialect, wanted)
            params.update(below=2**63 - 1, blocks=16)
            print(f"  {name:16} {plan(blocks_conn, query, params)}")
        manager.close()


if __name__ == "__main__":
    main()
