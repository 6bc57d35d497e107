"""The request ids keyturn makes when no trusted proxy gave one: one shape, unique, in the
order they were made, and made without touching Python's shared ``random`` state (an
application that seeds it for its own use must see the same sequence with keyturn in it)."""

from __future__ import annotations

import os
import random
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from keyturn import KeyManager
from keyturn._verifications import VerificationFilter


def test_made_ids_are_unique_ordered_and_leave_the_shared_random_state_alone() -> None:
    manager = KeyManager("sqlite:///:memory:")
    issued = manager.create_key("ids")
    headers = [(b"authorization", f"Bearer {issued.key}".encode())]
    random.seed(7)
    expected = [random.random() for _ in range(3)]

    random.seed(7)
    for _ in range(600):  # more than two runs of 256 ids
        assert manager.verify_asgi(headers).ok
    manager.verifications.close()
    assert [random.random() for _ in range(3)] == expected

    entries = manager.store.verifications(VerificationFilter(), limit=1000)
    ids = [entry.request_id for entry in reversed(entries)]  # oldest first
    assert len(ids) == 600
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)


def test_threads_making_ids_at_once_never_share_one() -> None:
    from keyturn._request_ids import new_id

    def make(count: int) -> list[tuple[str, bytes]]:
        return [new_id() for _ in range(count)]

    with ThreadPoolExecutor(8) as pool:
        made = [pair for batch in pool.map(make, [3_000] * 8) for pair in batch]
    assert all(rid.encode() == header for rid, header in made)  # the header says the same
    ids = [rid for rid, _ in made]
    assert len(set(ids)) == len(ids) == 24_000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_worker_makes_ids_of_its_own() -> None:
    from keyturn._request_ids import new_id

    new_id()  # a run under way when the worker is forked
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the worker: its next ids, to the parent
        os.write(write, " ".join(new_id()[0] for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        theirs = pipe.read().split()
    os.waitpid(pid, 0)
    ours = [new_id()[0] for _ in range(3)]
    assert len(theirs) == 3
    assert not set(theirs) & set(ours)
    assert {rid[12:24] for rid in theirs}.isdisjoint(rid[12:24] for rid in ours)
