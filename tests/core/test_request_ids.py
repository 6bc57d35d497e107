"""The request ids keyturn makes when no trusted proxy gave one: one shape, unique, in the
order they were made, and made without touching Python's shared ``random`` state (an
application that seeds it for its own use must see the same sequence with keyturn in it)."""

from __future__ import annotations

import random
import re

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
