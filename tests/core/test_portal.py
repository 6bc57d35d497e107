"""An owner acting under a portal policy, and portal links, through the library on each engine.

The customer portal and the embeddable routers are translators; the rules they rely on live
in the admin layer and are held here: an owner sees and changes its own keys only (another
owner's key does not exist for it), grants only the policy's scopes, cannot make a key that
never expires or lives past ``max_lifetime``, holds at most ``max_keys`` working keys, and a
link opens a portal once, before its ttl ends, however many try at once.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from keyturn import (
    InvalidValue,
    KeyChange,
    KeyManager,
    KeyNotFound,
    NewKey,
    NotPermitted,
    ScopeNotHeld,
)
from keyturn.actor import Actor
from keyturn.portal import OwnerPolicy, PortalLinks, checked_ttl, link_hash
from keyturn.store import KeyFilter

POLICY = OwnerPolicy.of({"scopes": ["orders:read", "orders:write"], "max_keys": 2})


def acme() -> Actor:
    return POLICY.actor("acme")


def test_an_owner_sees_and_changes_only_its_own_keys(manager: KeyManager) -> None:
    admin = manager.admin
    theirs = manager.create_key("globex key", scopes=["orders:read"], owner="globex")
    unowned = manager.create_key("operator key", scopes=["orders:read"])
    mine = admin.create(acme(), NewKey("mine", ["orders:read"], timedelta(days=1)))
    assert mine.record.owner == "acme"
    listed = admin.list_keys(acme())
    assert [r.id for r in listed] == [mine.record.id]
    assert admin.list_keys(acme(), KeyFilter(owner="globex")) == []
    assert admin.get(acme(), mine.record.id).id == mine.record.id
    for other in (theirs.record.id, unowned.record.id, "key_0000000000000000"):
        for attempt in (
            lambda k=other: admin.get(acme(), k),
            lambda k=other: admin.usage(acme(), k),
            lambda k=other: admin.revoke(acme(), k),
            lambda k=other: admin.disable(acme(), k),
            lambda k=other: admin.rotate(acme(), k),
            lambda k=other: admin.update(acme(), k, KeyChange(name="taken")),
        ):
            with pytest.raises(KeyNotFound):
                attempt()
    assert manager.get(theirs.record.id).usable()
    assert manager.get(theirs.record.id).name == "globex key"
    assert manager.get(unowned.record.id).usable()


def test_an_owner_revokes_its_own_key_whatever_its_scopes(manager: KeyManager) -> None:
    wide = manager.create_key("operator-made", scopes=["admin:all"], owner="acme")
    with pytest.raises(ScopeNotHeld):
        manager.admin.rotate(acme(), wide.record.id)  # a successor would grant admin:all
    assert manager.admin.revoke(acme(), wide.record.id).revoked_at is not None


def test_an_owner_cannot_give_a_key_away_or_make_one_for_another_owner(
    manager: KeyManager,
) -> None:
    admin = manager.admin
    with pytest.raises(NotPermitted):
        admin.create(acme(), NewKey("x", ["orders:read"], timedelta(days=1), owner="globex"))
    mine = admin.create(acme(), NewKey("mine", ["orders:read"], timedelta(days=1)))
    with pytest.raises(NotPermitted):
        admin.update(acme(), mine.record.id, KeyChange(owner="globex"))
    assert admin.update(acme(), mine.record.id, KeyChange(owner=None)).owner == "acme"


def test_an_owner_grants_only_the_policys_scopes_never_its_own_operations(
    manager: KeyManager,
) -> None:
    admin = manager.admin
    for scopes in (["admin:all"], ["keys:write"], ["keys:read"], ["*"], ["portal:write"]):
        with pytest.raises(ScopeNotHeld):
            admin.create(acme(), NewKey("x", scopes, timedelta(days=1)))
    mine = admin.create(acme(), NewKey("mine", ["orders:read"], timedelta(days=1)))
    with pytest.raises(ScopeNotHeld):
        admin.update(acme(), mine.record.id, KeyChange(scopes=["orders:read", "keys:write"]))
    # Reading the audit log is not a portal operation.
    with pytest.raises(ScopeNotHeld):
        admin.audit(acme())
    assert manager.list_keys(KeyFilter(owner="acme"))[0].scopes == {"orders:read"}


def test_every_key_expires_within_the_policys_lifetime(manager: KeyManager) -> None:
    admin = manager.admin
    with pytest.raises(NotPermitted, match="must expire by"):
        admin.create(acme(), NewKey("forever", ["orders:read"], None))
    with pytest.raises(NotPermitted):
        admin.create(acme(), NewKey("long", ["orders:read"], timedelta(days=91)))
    # Exactly the longest lifetime is allowed; a second more is not.
    longest = admin.create(acme(), NewKey("longest", ["orders:read"], timedelta(days=90)))
    assert longest.record.expires_at is not None
    assert longest.record.expires_at - longest.record.created_at == timedelta(days=90)
    with pytest.raises(NotPermitted):
        admin.create(acme(), NewKey("x", ["orders:read"], timedelta(days=90, seconds=1)))
    admin.revoke(acme(), longest.record.id)
    made = admin.create(acme(), NewKey("default", ["orders:read"]))  # the default: 90 days
    assert made.record.expires_at is not None
    assert made.record.expires_at <= datetime.now(UTC) + timedelta(days=90)
    with pytest.raises(NotPermitted):
        admin.update(acme(), made.record.id, KeyChange(expires_at=None))
    later = datetime.now(UTC) + timedelta(days=200)
    with pytest.raises(NotPermitted):
        admin.update(acme(), made.record.id, KeyChange(expires_at=later))
    # An operator's key of this owner that never expires: its successor does.
    forever = manager.create_key("legacy", scopes=["orders:read"], owner="acme", expires_in=None)
    successor = admin.rotate(acme(), forever.record.id)
    assert successor.record.expires_at is not None
    assert successor.record.owner == "acme"


def test_an_owner_holds_at_most_max_keys_working_keys(manager: KeyManager) -> None:
    admin = manager.admin
    first = admin.create(acme(), NewKey("one", ["orders:read"], timedelta(days=1)))
    admin.create(acme(), NewKey("two", ["orders:read"], timedelta(days=1)))
    with pytest.raises(NotPermitted, match="most allowed is 2"):
        admin.create(acme(), NewKey("three", ["orders:read"], timedelta(days=1)))
    assert admin.working_keys(acme()) == 2
    with pytest.raises(InvalidValue):
        admin.working_keys(Actor.operator())
    with pytest.raises(NotPermitted):
        admin.create_many(acme(), [NewKey("bulk", ["orders:read"], timedelta(days=1))])
    # A rotation replaces a key: the count stays; revoking one makes room.
    admin.rotate(acme(), first.record.id)
    admin.revoke(acme(), first.record.id)
    with pytest.raises(NotPermitted):
        admin.create(acme(), NewKey("three", ["orders:read"], timedelta(days=1)))
    working = manager.list_keys(KeyFilter(owner="acme", status="active"))
    admin.revoke(acme(), working[0].id)
    admin.create(acme(), NewKey("three", ["orders:read"], timedelta(days=1)))


def test_max_keys_holds_under_concurrent_creates(manager: KeyManager) -> None:
    admin = manager.admin
    outcomes: list[str] = []

    def create(i: int) -> None:
        try:
            admin.create(acme(), NewKey(f"k{i}", ["orders:read"], timedelta(days=1)))
            outcomes.append("made")
        except NotPermitted:
            outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("made") == 2
    assert len(manager.list_keys(KeyFilter(owner="acme"))) == 2


def test_changes_are_audited_with_the_owner_as_actor(manager: KeyManager) -> None:
    made = manager.admin.create(acme(), NewKey("mine", ["orders:read"], timedelta(days=1)))
    manager.admin.revoke(acme(), made.record.id)
    events = manager.audit(key_id=made.record.id)
    assert {e.actor for e in events} == {"owner:acme"}
    assert {e.action for e in events} == {"key.create", "key.revoke"}


# -- policies -------------------------------------------------------------------------------


def test_a_policy_is_checked_field_by_field() -> None:
    assert OwnerPolicy.of(None).max_lifetime == timedelta(days=90)
    assert OwnerPolicy.of({"max_lifetime": "12h"}).max_lifetime == timedelta(hours=12)
    assert OwnerPolicy.of({"max_lifetime": 60}).max_lifetime == timedelta(seconds=60)
    assert OwnerPolicy.of({"require_expiry": False}).max_lifetime is None
    assert OwnerPolicy.of({"require_expiry": False}).actor("a").max_lifetime is None
    assert OwnerPolicy.of({}).actor("a").max_lifetime == timedelta(days=90)
    bounded = OwnerPolicy.of({"require_expiry": False, "max_lifetime": "1d"})
    assert bounded.max_lifetime == timedelta(days=1)
    for bad in (
        {"scopes": "orders:read"},
        {"scopes": ["has space"]},
        {"max_keys": -1},
        {"max_keys": True},
        {"max_keys": 10_000},
        {"max_lifetime": "forever"},
        {"max_lifetime": 0},
        {"max_lifetime": 10**30},
        {"require_expiry": "yes"},
        {"colour": "red"},
    ):
        with pytest.raises(InvalidValue):
            OwnerPolicy.of(bad)
    policy = OwnerPolicy.of({"scopes": ["b", "a"], "max_keys": 3, "max_lifetime": "1d"})
    assert OwnerPolicy.of(policy.public()) == policy


# -- links ----------------------------------------------------------------------------------


def test_a_link_opens_once_and_only_its_hash_is_stored(manager: KeyManager) -> None:
    links = PortalLinks(manager.store)
    token, link = links.open(Actor.operator(), "acme", POLICY, return_url="https://app.test/")
    assert token.startswith("ktp_") and len(token) == 47
    assert link.owner == "acme"
    rows = manager.audit(action="portal.link")
    assert rows and rows[0].details["owner"] == "acme"
    opened = links.redeem(token)
    assert opened is not None and opened.owner == "acme" and opened.policy == POLICY
    assert opened.return_url == "https://app.test/"
    assert links.redeem(token) is None
    assert links.redeem(token[:-1] + ("a" if token[-1] != "a" else "b")) is None
    assert links.redeem("not a token") is None
    assert manager.audit(action="portal.open")[0].actor == "owner:acme"
    assert len(link_hash(token)) == 64


def test_a_link_expires_after_its_ttl(manager: KeyManager) -> None:
    now = [datetime.now(UTC)]
    links = PortalLinks(manager.store, clock=lambda: now[0])
    token, _ = links.open(Actor.operator(), "acme", POLICY, ttl=timedelta(minutes=1))
    now[0] += timedelta(minutes=2)
    assert links.redeem(token) is None
    with pytest.raises(InvalidValue):
        links.open(Actor.operator(), "acme", POLICY, ttl=timedelta(days=2))
    for ttl in (10**30, -1, "1y", 5):
        with pytest.raises(InvalidValue):
            checked_ttl(ttl)
    with pytest.raises(InvalidValue):
        links.open(Actor.operator(), "acme", POLICY, return_url="javascript:alert(1)")
    with pytest.raises(InvalidValue):
        links.open(Actor.operator(), "bad\nowner", POLICY)


def test_of_many_visitors_racing_with_one_link_one_gets_in(manager: KeyManager) -> None:
    links = PortalLinks(manager.store)
    token, _ = links.open(Actor.operator(), "acme", POLICY)
    opened: list[object] = []
    barrier = threading.Barrier(8)

    def redeem() -> None:
        barrier.wait()
        opened.append(links.redeem(token))

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(o is not None for o in opened) == 1


def test_a_link_maker_puts_only_scopes_it_holds_into_the_policy(manager: KeyManager) -> None:
    opener = manager.create_key("opener", scopes=["portal:write", "orders:read"])
    actor = Actor.of_key(opener.record)
    links = PortalLinks(manager.store)
    links.open(actor, "acme", OwnerPolicy.of({"scopes": ["orders:read"]}))
    with pytest.raises(ScopeNotHeld):
        links.open(actor, "acme", OwnerPolicy.of({"scopes": ["orders:write"]}))
    writer = manager.create_key("writer", scopes=["keys:write", "orders:read"])
    with pytest.raises(ScopeNotHeld):
        links.open(Actor.of_key(writer.record), "acme", OwnerPolicy.of({}))
