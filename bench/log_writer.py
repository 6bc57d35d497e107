"""The verification log writer's instructions per entry, counted by callgrind.

Wall and CPU time of a flush move with a shared machine's load; instruction counts do
not, so an A/B of the writer reads from one run. Each kind of batch is run twice under
callgrind in a process of its own: queueing ``--entries`` entries as the ASGI middleware
queues them (after a first flush that stores the batch's shape, as a running writer has),
then flushing them, or not; the difference over the entries is the writer's cost per
entry, on SQLite (a file in a temporary folder).

Kinds: ``one shape`` (one key, client, path and user agent), ``new paths`` (a new path
each), ``50 clients`` (interleaved), ``new clients`` (a new client address each), ``proxy
ids`` (one key, client and path, each request id a random 32 hex digits a trusted proxy
passed on, as nginx's ``$request_id``: the same ids on both sides of a kind).

Run: ``.venv/bin/python bench/log_writer.py [--entries N] [--kind KIND ...]`` (needs
valgrind); ``--run KIND flush|queue``: one side, what each callgrind process runs.
"""

from __future__ import annotations

import argparse
import random
import time

from _callgrind import instructions

KINDS = ("one shape", "new paths", "50 clients", "new clients", "proxy ids")


def queue(log: object, key_id: str, kind: str, entries: int, tag: str) -> None:
    from keyturn._request_ids import new_id
    from keyturn._verifications import Seen

    extend = log.queue.extend  # type: ignore[attr-defined]
    proxy = random.Random(tag)  # the same ids in the flushing and the queueing process
    for n in range(entries):
        path = f"/orders/{tag}-{n}" if kind == "new paths" else "/orders/7"
        peer = (f"198.51.100.{n % 50}" if kind == "50 clients" else
                f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" if kind == "new clients"
                else "203.0.113.9")  # fmt: skip
        rid = f"{proxy.getrandbits(128):032x}" if kind == "proxy ids" else new_id()[0]
        # The user agent left to the core, which queues the header as sent: a new bytes
        # object each, as an ASGI server's.
        extend((time.time(), "valid", key_id, peer, (), "python-httpx/0.28".encode("latin-1"),
                *Seen("GET", path, rid)))


def run(kind: str, side: str, entries: int, folder: str) -> None:
    """One side of one kind, in this process (under callgrind)."""
    from keyturn import KeyManager
    from keyturn._verifications import VerificationLog

    with KeyManager(f"sqlite:///{folder}/log.db", verification_log=False) as manager:
        key = manager.create_key("bench-writer", scopes=["read"])
        log = VerificationLog(manager.store, manager.verifier.proxies, interval=3600)
        log.note_mask(key.record.id, key.record.masked)
        queue(log, key.record.id, kind, entries, "warm")  # the shape stored, the memos made
        log.flush()
        log._purged = float("inf")  # no purge in the measured flush
        queue(log, key.record.id, kind, entries, "measured")
        if side == "flush":
            assert log.flush() == entries
        log.queue.clear()


def measured(kind: str, side: str, entries: int) -> int:
    return instructions(__file__, "--run", kind, side, "--entries", str(entries))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--kind", action="append", choices=KINDS)
    parser.add_argument("--run", nargs=2, metavar=("KIND", "SIDE"))
    parser.add_argument("--folder")
    args = parser.parse_args()
    if args.run:
        run(args.run[0], args.run[1], args.entries, args.folder)
        return
    for kind in args.kind or KINDS:
        flushed = measured(kind, "flush", args.entries)
        queued = measured(kind, "queue", args.entries)
        print(f"{kind:12} {(flushed - queued) / args.entries:9,.0f} writer instructions "
              "per entry")  # fmt: skip


if __name__ == "__main__":
    main()
