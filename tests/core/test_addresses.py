"""Address allow-lists and trusted proxies (``keyturn._addresses``), against ``ipaddress``."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyturn._addresses import (
    ADDRESS_PATTERN,
    NETWORK_PATTERN,
    AddressSet,
    TrustedProxies,
    address_text,
    checked_networks,
    parse_address,
    parse_network,
)
from keyturn.errors import InvalidValue

v4_networks = st.builds(
    lambda n, p: ipaddress.IPv4Network((n, p), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(0, 32),
)
v6_networks = st.builds(
    lambda n, p: ipaddress.IPv6Network((n, p), strict=False),
    st.integers(0, 2**128 - 1),
    st.integers(0, 128),
).filter(lambda n: not n.subnet_of(ipaddress.IPv6Network("::ffff:0:0/96")))
networks = st.lists(st.one_of(v4_networks, v6_networks), max_size=12)
# Addresses near the networks' edges matter most, so some are drawn from them.
v4_addresses = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
v6_addresses = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)


def oracle(nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network], address: object) -> bool:
    """What ``ipaddress`` says, with IPv4-mapped IPv6 read as IPv4 (as documented)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in net for net in nets)


@settings(max_examples=400, deadline=None)
@given(networks, st.data())
def test_membership_agrees_with_ipaddress(nets: list, data: st.DataObject) -> None:
    edges = [n.network_address for n in nets] + [n.broadcast_address for n in nets]
    near = [
        type(a)(int(a) + d)
        for a in edges
        for d in (-1, 0, 1)
        if 0 <= int(a) + d < (2**32 if a.version == 4 else 2**128)
    ]
    choices = st.one_of(v4_addresses, v6_addresses, *([st.sampled_from(near)] if near else []))
    allowed = AddressSet(checked_networks([str(n) for n in nets]))
    for address in data.draw(st.lists(choices, min_size=1, max_size=20)):
        assert (address in allowed) == oracle(nets, address), (nets, address)
        text = str(address)
        assert (parse_address(text) in allowed) == oracle(nets, address)


@given(networks, st.one_of(v4_networks, v6_networks))
def test_covers_agrees_with_subnet_of(nets: list, candidate: object) -> None:
    allowed = AddressSet(checked_networks([str(n) for n in nets]))
    merged = list(ipaddress.collapse_addresses([n for n in nets if n.version == 4])) + list(
        ipaddress.collapse_addresses([n for n in nets if n.version == 6])
    )
    expected = any(
        candidate.version == n.version and candidate.subnet_of(n)  # type: ignore[attr-defined]
        for n in merged
    )
    assert allowed.covers(str(candidate)) == expected


def test_ipv4_mapped_peer_is_its_ipv4_address() -> None:
    allowed = AddressSet(["10.0.0.0/8"])
    assert parse_address("::ffff:10.1.2.3") in allowed
    assert ipaddress.ip_address("::ffff:10.1.2.3") in allowed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),
        (" 203.0.113.9 ", "203.0.113.9"),
        ("203.0.113.9:5000", "203.0.113.9"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("unknown", None),
        ("", None),
        ("1.2.3.4:5:6", None),
        ("[2001:db8::1", None),
        ("x" * 100, None),
        ("010.0.0.1", None),
        ("::ffff:10.0.0.1", "10.0.0.1"),
    ],
)
def test_parse_address(text: str, expected: str | None) -> None:
    found = parse_address(text)
    assert (None if found is None else str(found)) == expected
    assert address_text(text) == expected  # as the verification log stores it


# Dotted quads of all kinds: octets past 255, leading zeros, a port, spaces around.
dotted = st.builds(
    lambda octets, port, pad: f"{pad}{'.'.join(octets)}{port}{pad}",
    st.lists(st.integers(0, 999).map(str) | st.from_regex(r"0[0-9]{1,2}", fullmatch=True),
             min_size=3, max_size=5),
    st.sampled_from(["", ":80", ":"]),
    st.sampled_from(["", " "]),
)


@settings(max_examples=500)
@given(st.one_of(dotted, st.from_regex(ADDRESS_PATTERN, fullmatch=True), st.text(max_size=20)))
def test_address_text_is_the_parsed_address_written_out(text: str) -> None:
    found = parse_address(text)
    assert address_text(text) == (None if found is None else str(found))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("10.0.0.0/33", "not an IP address or a CIDR block"),
        ("010.0.0.1", "not an IP address or a CIDR block"),
        ("example.com", "not an IP address or a CIDR block"),
        ("", "expected an IP address"),
    ],
)
def test_bad_entries_say_why(entry: str, message: str) -> None:
    with pytest.raises(InvalidValue, match=message) as caught:
        checked_networks([entry])
    assert caught.value.field == "allowed_ips"


def test_entries_are_canonical_and_deduplicated() -> None:
    assert checked_networks(["10.0.0.1", "10.0.0.1/32", "2001:DB8::/32"]) == (
        "10.0.0.1/32",
        "2001:db8::/32",
    )
    # Host bits below the prefix are dropped, as nginx reads them; mapped IPv6 is IPv4.
    assert checked_networks(["10.0.0.7/24", "::ffff:10.0.0.0/104"]) == (
        "10.0.0.0/24",
        "10.0.0.0/8",
    )
    with pytest.raises(InvalidValue, match="at most 100"):
        checked_networks([f"10.0.{i // 256}.{i % 256}" for i in range(101)])
    with pytest.raises(InvalidValue, match="a list"):
        checked_networks("10.0.0.0/8")


PROXY = "10.9.0.1"
PROXY_OK = "203.0.113.1"


@pytest.mark.parametrize(
    ("peer", "headers", "client"),
    [
        # No trusted peer: the forwarding headers are not believed.
        ("198.51.100.7", [("X-Forwarded-For", "203.0.113.1")], "198.51.100.7"),
        ("198.51.100.7", [("X-Real-IP", "203.0.113.1")], "198.51.100.7"),
        # A trusted proxy: the right-most hop that is not a trusted proxy.
        (PROXY, [("X-Forwarded-For", "203.0.113.1")], "203.0.113.1"),
        (PROXY, [("x-forwarded-for", "6.6.6.6, 203.0.113.1")], "203.0.113.1"),
        (PROXY, [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.1, 10.9.0.2")], "203.0.113.1"),
        (PROXY, [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.1")], PROXY_OK),
        (PROXY, [("X-Real-IP", "203.0.113.1")], "203.0.113.1"),
        # Both, disagreeing: one of them is a client's own, passed on (cannot be told).
        (PROXY, [("X-Forwarded-For", "203.0.113.1"), ("X-Real-IP", "6.6.6.6")], None),
        (PROXY, [("X-Forwarded-For", "203.0.113.1"), ("X-Real-IP", "203.0.113.1")], PROXY_OK),
        (PROXY, [("X-Forwarded-For", f"{PROXY_OK},10.9.0.2"), ("X-Real-IP", "10.9.0.2")], PROXY_OK),
        (PROXY, [], PROXY),  # the proxy itself asks
        (PROXY, [("X-Forwarded-For", "10.9.0.2")], "10.9.0.2"),  # only proxies: the first
        (PROXY, [("X-Forwarded-For", "garbage, 203.0.113.1")], "203.0.113.1"),
        (PROXY, [("X-Forwarded-For", "203.0.113.1, garbage")], None),  # cannot be told
        (PROXY, [("X-Real-IP", "1.1.1.1"), ("X-Real-IP", "2.2.2.2")], None),
        (None, [("X-Forwarded-For", "203.0.113.1")], None),
        ("not an address", [], None),
    ],
)
def test_client_behind_trusted_proxies(
    peer: str | None, headers: list[tuple[str, str]], client: str | None
) -> None:
    proxies = TrustedProxies(["10.9.0.0/24"])
    found = proxies.client(peer, headers)
    assert (None if found is None else str(found)) == client


def test_no_trusted_proxies_by_default() -> None:
    proxies = TrustedProxies()
    found = proxies.client("127.0.0.1", [("X-Forwarded-For", "203.0.113.1")])
    assert str(found) == "127.0.0.1"


@settings(max_examples=300)
@given(st.from_regex(NETWORK_PATTERN, fullmatch=True))
def test_every_entry_the_api_document_allows_is_accepted(text: str) -> None:
    parse_network(text)


@settings(max_examples=300)
@given(st.from_regex(ADDRESS_PATTERN, fullmatch=True))
def test_every_address_the_api_document_allows_is_read(text: str) -> None:
    assert parse_address(text) is not None
