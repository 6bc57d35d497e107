"""What SQLite (and its driver) costs to insert a verification log row, counted by callgrind.

A block of one entry (migration 0100: a new client or a proxy's random request id each)
cost the writer more than a row an entry had (0090). This counts the insert alone: bare
``sqlite3`` inserts of ``--rows`` rows, in statements of 500 rows as the store writes
them, into each table as migrated, each variant twice under callgrind in a process of its
own (the rows made, then inserted or not); the difference over the rows is a row's cost.

Variants: ``row 0090`` (the row an entry: at, request id, key id, shape, path, client; ids
by AUTOINCREMENT), ``block 0100`` (a block of one entry as the store binds it: ten values,
``times`` bound as ``''`` made NULL by ``NULLIF``), and the same block changed one way
each, to see what its cost is made of.

Run: ``.venv/bin/python bench/log_rows.py [--rows N] [--variant NAME ...]`` (needs
valgrind); ``--run NAME insert|none``: one side, what each callgrind process runs.
"""

from __future__ import annotations

import argparse
import sqlite3
from typing import Any

from _callgrind import instructions

PER_STATEMENT = 500
KEY = "key_4f1c2a9b7d3e8f60"
PATH = "/orders/7"
RID_HEAD = "01a24302c62e0edff027ed60000000"  # a keyturn id's head (30 characters)

ROW_0090 = """CREATE TABLE verifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, request_id TEXT NOT NULL,
    key_id TEXT, shape INTEGER NOT NULL, path TEXT NOT NULL, client TEXT);
CREATE INDEX verifications_request ON verifications (request_id);
CREATE INDEX verifications_key ON verifications (key_id, id) WHERE key_id IS NOT NULL;"""
BLOCK_0100 = """CREATE TABLE verifications (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, count INTEGER NOT NULL, key_id TEXT,
    shape INTEGER NOT NULL, head TEXT NOT NULL, tails TEXT NOT NULL, times BLOB,
    paths TEXT NOT NULL, clients TEXT NOT NULL);
CREATE INDEX verifications_request ON verifications (head);
CREATE INDEX verifications_key ON verifications (key_id, id) WHERE key_id IS NOT NULL;"""
BLOCK_COLUMNS = "id, at, count, key_id, shape, head, tails, times, paths, clients"


def _client(n: int) -> str:
    return f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"  # a new client each


def _row(n: int, at: float) -> tuple[Any, ...]:
    return (at, f"{RID_HEAD}{n & 255:02x}", KEY, 1, PATH, _client(n))


def _block(n: int, at: float) -> tuple[Any, ...]:
    return (n + 1, at, 1, KEY, 1, RID_HEAD, f'["{n & 255:02x}"]', "", f'["{PATH}"]',
            f'["{_client(n)}"]')  # fmt: skip


# name -> (schema, columns, marks of a row, one row's values)
VARIANTS: dict[str, tuple[str, str, str, Any]] = {
    "row 0090": (ROW_0090, "at, request_id, key_id, shape, path, client", "?, ?, ?, ?, ?, ?",
                 _row),
    "block 0100": (BLOCK_0100, BLOCK_COLUMNS, "?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''), ?, ?",
                   _block),
    # times bound as None (the driver looks for an adapter for it), no NULLIF
    "times None": (BLOCK_0100, BLOCK_COLUMNS, "?, ?, ?, ?, ?, ?, ?, ?, ?, ?",
                   lambda n, at: (*_block(n, at)[:7], None, *_block(n, at)[8:])),
    # times written as the literal NULL: not bound at all
    "times literal": (BLOCK_0100, BLOCK_COLUMNS, "?, ?, ?, ?, ?, ?, ?, NULL, ?, ?",
                      lambda n, at: (*_block(n, at)[:7], *_block(n, at)[8:])),
    # count written as the literal 1
    "count literal": (BLOCK_0100, BLOCK_COLUMNS, "?, ?, 1, ?, ?, ?, ?, NULLIF(?, ''), ?, ?",
                      lambda n, at: (*_block(n, at)[:2], *_block(n, at)[3:])),
    # a block of one's count and times written as literals (1, NULL): not bound
    "one literal": (BLOCK_0100, BLOCK_COLUMNS, "?, ?, 1, ?, ?, ?, ?, NULL, ?, ?",
                    lambda n, at: (*_block(n, at)[:2], *_block(n, at)[3:7],
                                   *_block(n, at)[8:])),
    # the same, times the table's last column (column order)
    "one literal, times last": (
        BLOCK_0100.replace("times BLOB,\n    paths TEXT NOT NULL, clients TEXT NOT NULL",
                           "paths TEXT NOT NULL,\n    clients TEXT NOT NULL, times BLOB"),
        BLOCK_COLUMNS, "?, ?, 1, ?, ?, ?, ?, NULL, ?, ?",
        lambda n, at: (*_block(n, at)[:2], *_block(n, at)[3:7], *_block(n, at)[8:])),
    # no index on the head: what its index entry costs
    "no head index": (BLOCK_0100.replace(
        "CREATE INDEX verifications_request ON verifications (head);", ""),
        BLOCK_COLUMNS, "?, ?, ?, ?, ?, ?, ?, NULLIF(?, ''), ?, ?", _block),
    # the 0090 row with its id given (as a block's is), not by AUTOINCREMENT
    "row 0090 id given": (ROW_0090, "id, at, request_id, key_id, shape, path, client",
                          "?, ?, ?, ?, ?, ?, ?", lambda n, at: (n + 1, *_row(n, at))),
}


def run(name: str, side: str, rows: int, folder: str) -> None:
    schema, columns, marks, make = VARIANTS[name]
    conn = sqlite3.connect(f"{folder}/log.db", isolation_level=None)
    conn.executescript(schema)
    values: list[Any] = []
    for n in range(rows):
        values.extend(make(n, 1_796_000_000.0 + n / 1000))
    width = len(values) // rows
    sql = f"INSERT INTO verifications ({columns}) VALUES " + \
        ", ".join([f"({marks})"] * PER_STATEMENT)  # fmt: skip
    statement = PER_STATEMENT * width
    conn.execute("BEGIN IMMEDIATE")
    if side == "insert":
        for start in range(0, len(values), statement):
            conn.execute(sql, values[start : start + statement])
    conn.execute("COMMIT")
    conn.close()


def measured(name: str, side: str, rows: int) -> int:
    return instructions(__file__, "--run", name, side, "--rows", str(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--variant", action="append", choices=VARIANTS)
    parser.add_argument("--run", nargs=2, metavar=("VARIANT", "SIDE"))
    parser.add_argument("--folder")
    args = parser.parse_args()
    if args.run:
        run(args.run[0], args.run[1], args.rows, args.folder)
        return
    if args.rows % PER_STATEMENT:
        parser.error(f"--rows must be a multiple of {PER_STATEMENT}")
    for name in args.variant or VARIANTS:
        cost = measured(name, "insert", args.rows) - measured(name, "none", args.rows)
        print(f"{name:<24} {cost / args.rows:>8,.0f} instructions a row", flush=True)


if __name__ == "__main__":
    main()
