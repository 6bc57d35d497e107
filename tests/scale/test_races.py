"""Concurrent changes to one key, through two real ``keyturn serve`` processes sharing a store.

Each change is decided on the key as stored, under the store transaction's write lock, so
changes racing each other are decided one after the other: twenty rotations at once make
one successor (the other nineteen are 409 ``conflict``), and no change is made on a state
another change had already left behind (a key enabled or rotated after its revocation, a
successor with the scopes its predecessor had before a change that came first). Checked on
PostgreSQL (two instances) and SQLite (two processes on one file), with real threads.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import httpx
import pytest

from tests.scale.conftest import Cluster, two_instances


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two instances sharing one store of the engine."""
    folder = tmp_path_factory.mktemp(f"races-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'shared.db'}"
    else:
        url = request.getfixturevalue("pg_module_url")
    with two_instances(url, folder) as cluster:
        yield cluster


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run every call in its own thread, released together; their answers in call order."""
    answers: list[Any] = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i: int) -> None:
        barrier.wait()
        answers[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def clients(pair: Cluster) -> list[httpx.Client]:
    return [pair.admin(instance) for instance in pair.instances[:2]]


def test_twenty_rotations_at_once_make_one_successor(pair: Cluster) -> None:
    a, b = clients(pair)
    with a, b:
        for round_ in range(4):
            name = f"forked? {round_}"
            made = a.post("/v1/keys", json={"name": name, "credits": 5}).json()
            rotate = f"/v1/keys/{made['id']}/rotate"
            answers = at_once([partial((a, b)[i % 2].post, rotate) for i in range(20)])
            statuses = Counter(answer.status_code for answer in answers)
            assert statuses == {201: 1, 409: 19}, statuses
            assert {r.json()["code"] for r in answers if r.status_code == 409} == {"conflict"}
            winner = next(r.json() for r in answers if r.status_code == 201)
            named = b.get("/v1/keys", params={"search": name}).json()["keys"]
            assert sorted(k["id"] for k in named) == sorted([made["id"], winner["id"]])
            assert b.get(f"/v1/keys/{made['id']}").json()["replaced_by"] == winner["id"]


def replay(events: list[dict[str, Any]], scopes: list[str]) -> tuple[bool, bool, list[str]]:
    """The key's state after its audited changes, oldest first, checking that each was
    allowed on the state the ones before it left: (revoked, disabled, scopes at rotation)."""
    revoked, disabled, rotated_with = False, True, list[str]()
    for event in events:
        action = event["action"]
        assert not (revoked and action in ("key.enable", "key.disable", "key.rotate")), events
        if action == "key.revoke":
            revoked = True
        elif action in ("key.enable", "key.disable"):
            disabled = action == "key.disable"
        elif action == "key.update":
            scopes = event["details"]["scopes"]
        elif action == "key.rotate":
            rotated_with = scopes
    return revoked, disabled, rotated_with


def test_racing_state_changes_are_decided_one_after_the_other(pair: Cluster) -> None:
    """A disabled key is revoked, enabled, rotated and given new scopes at the same time,
    round after round: whatever order they land in, each is decided on the state the
    previous one left, and the answers say so (409 for a change the state forbids)."""
    a, b = clients(pair)
    with a, b:
        for round_ in range(12):
            made = a.post("/v1/keys", json={"name": f"race {round_}", "scopes": ["old"]}).json()
            key = f"/v1/keys/{made['id']}"
            assert b.post(f"{key}/disable").status_code == 200
            revoke, enable, rotate, patch = at_once([
                partial(a.post, f"{key}/revoke"),
                partial(b.post, f"{key}/enable"),
                partial(a.post, f"{key}/rotate", json={"grace_seconds": 60}),
                partial(b.patch, key, json={"scopes": ["new"]}),
            ])
            assert revoke.status_code == 200 and patch.status_code == 200
            audit = b.get("/v1/audit", params={"key_id": made["id"]}).json()["events"]
            events = sorted(audit, key=lambda e: e["id"])[2:]  # after create and disable
            revoked, disabled, rotated_with = replay(events, ["old"])
            actions = [e["action"] for e in events]
            assert enable.status_code == (200 if "key.enable" in actions else 409), actions
            assert rotate.status_code == (201 if "key.rotate" in actions else 409), actions
            stored = b.get(key).json()
            assert (stored["revoked_at"] is not None, stored["disabled"]) == (revoked, disabled)
            if rotate.status_code == 201:
                assert rotate.json()["scopes"] == rotated_with, actions
                assert stored["replaced_by"] == rotate.json()["id"]
            else:
                assert stored["replaced_by"] is None
