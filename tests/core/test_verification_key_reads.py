"""Who used a key and what its requests needed (``key_callers``, ``key_needs``: the key's
page, ``GET /v1/keys/{id}/callers`` and ``/suggestions``) over a busy key's log in blocks,
on both engines: the answer is a few groups however many blocks are read, and reading
them holds no more than a few of them at once (a month of a busy key's traffic is
millions of blocks, which held in a list cost hundreds of bytes each)."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from keyturn import KeyManager

from .test_verification_shapes import raw

BLOCKS = 100_000


def _busy_key(m: KeyManager, store_url: str) -> str:
    """A key with ``BLOCKS`` blocks of one entry over the last day, from 50 clients, to 7
    paths, all accepted (written by SQL: the writer would take minutes)."""
    key_id = m.create_key("k", owner="acme").record.id
    now = time.time()
    if store_url.startswith("sqlite"):
        raw(store_url, "INSERT INTO verification_shapes (id, created, outcome, masked, method, "
            "user_agent, scopes) VALUES (1, ?, 'valid', NULL, 'GET', 'curl', 'read')",
            (now,))  # fmt: skip
        raw(store_url, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            f"WHERE i < {BLOCKS}) INSERT INTO verifications (id, at, count, key_id, shape, "
            "head, tails, times, paths, clients) SELECT i, ? - 80000 + i * 0.5, 1, ?, 1, "
            "'head' || i, '[\"00\"]', NULL, '[\"/orders/' || (i % 7) || '\"]', "
            "'[\"203.0.113.' || (i % 50) || '\"]' FROM n", (now, key_id))  # fmt: skip
        return key_id
    raw(store_url, "INSERT INTO verification_shapes (id, created, outcome, masked, method, "
        "user_agent, scopes) VALUES (1, now(), 'valid', NULL, 'GET', 'curl', 'read')")
    raw(store_url, "INSERT INTO verifications (id, at, count, key_id, shape, head, tails, "
        "times, paths, clients) SELECT i, to_timestamp(?) + make_interval(secs => i * 0.5), "
        "1, ?, 1, 'head' || i, '[\"00\"]', NULL, '[\"/orders/' || (i %% 7) || '\"]', "
        f"'[\"203.0.113.' || (i %% 50) || '\"]' FROM generate_series(1, {BLOCKS}) i",
        (now - 80_000, key_id))  # fmt: skip
    return key_id


def test_a_busy_keys_callers_and_needs_are_read_without_holding_its_blocks(
    store_url: str,
) -> None:
    with KeyManager(store_url, verification_log=False) as m:
        key_id = _busy_key(m, store_url)
        since = datetime.now(UTC) - timedelta(days=2)
        tracemalloc.start()
        try:
            callers = m.store.key_callers(key_id, since, limit=1000)
            needs = m.store.key_needs(key_id, since)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert sum(c.requests for c in callers) == BLOCKS and len(callers) == 350
        assert sum(n.requests for n in needs) == BLOCKS and len(needs) == 50
        assert peak < 5_000_000, f"{peak / 1e6:.1f} MB held to read {BLOCKS} blocks"
