"""Client addresses: a key's allow-list of networks, and who the client is behind proxies.

Two questions, asked only of keys restricted by address (``allowed_ips``):

- **Who is asking?** The connection's peer, unless the peer is one of the deployment's
  ``trusted_proxies``: then ``X-Forwarded-For`` is read from the right, skipping trusted
  hops, and the first address that is not a trusted proxy is the client (what nginx's
  ``real_ip_recursive`` does); ``X-Real-IP`` names the client when no such header came,
  and when both came they must agree, as must RFC 7239's ``Forwarded`` when it came (a
  proxy that sets only one passes a client's own others on: disagreeing, the client
  cannot be told). A peer
  that is not trusted cannot name another client: its forwarding headers are ignored, so
  a spoofed ``X-Forwarded-For`` changes nothing.
- **Is it allowed?** An ``AddressSet`` holds the networks as merged integer ranges per IP
  version and answers by bisection: the cost does not grow with the list. An IPv4 address
  written as IPv4-mapped IPv6 (``::ffff:10.0.0.1``, how a dual-stack socket shows an IPv4
  peer) is the IPv4 address.

Sans-I/O: plain strings and header pairs in, answers out.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from keyturn.credentials import HeaderPairs
from keyturn.errors import InvalidValue

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

MAX_NETWORKS = 100
_MAPPED = IPv6Network("::ffff:0:0/96")
_FORWARDED_FOR = "x-forwarded-for"
_REAL_IP = "x-real-ip"
_FORWARDED = "forwarded"


_SEEN: dict[str, Address | None] = {}
_SEEN_LIMIT = 4096
_LONGEST = 128  # an address, with a port and the spaces around a hop, is never longer


def parse_address(text: str) -> Address | None:
    """An address as peers and proxies write it (``203.0.113.9``, ``2001:db8::1``,
    ``[2001:db8::1]:443``, ``203.0.113.9:5000``), IPv4-mapped IPv6 as IPv4; ``None`` if
    it is none. Peers repeat, and ``ipaddress`` takes microseconds to parse, so the last
    few thousand answers are kept (addresses are immutable); text too long to be an address
    is not, so a forwarded header's garbage cannot fill the memo with header-sized keys."""
    try:
        return _SEEN[text]
    except KeyError:
        pass
    if len(text) > _LONGEST:
        return None
    address = _parse(text)
    if len(_SEEN) >= _SEEN_LIMIT:
        _SEEN.clear()
    _SEEN[text] = address
    return address


def address_text(text: str) -> str | None:
    """An address as stored and shown: ``parse_address``'s, written out (``None`` if it
    is none). An IPv4 peer as a server gives it (dotted decimal, no leading zeros, no
    port) is that text already, so it is recognised by one regular expression and given
    back as it is, without ``ipaddress``'s parse and format: together some microseconds,
    most of what the verification log's writer spent on an entry from a new client."""
    if _CANONICAL_V4.fullmatch(text) is not None:
        return text
    address = parse_address(text)
    return None if address is None else str(address)


def _parse(text: str) -> Address | None:
    text = text.strip()
    if not text or len(text) > 64:  # the longest: [IPv6 with an IPv4 tail%zone]:port
        return None
    try:
        address: Address = ipaddress.ip_address(text)
    except ValueError:
        if text.startswith("["):
            host, bracket, _port = text[1:].partition("]")
        else:
            host, bracket, _port = text.partition(":")
            if ":" in _port:  # more than one colon: an IPv6 address that did not parse
                return None
        if not bracket:
            return None
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_network(text: object, field: str = "allowed_ips") -> Network:
    """One allow-list entry: an address or a CIDR block, as its canonical block: host bits
    below the prefix are dropped (``10.0.0.7/24`` is ``10.0.0.0/24``, as nginx reads it;
    the stored, shown form says so), and IPv4-mapped IPv6 is IPv4, as clients are. An IPv6
    zone (``fe80::1%eth0``) is refused: the list compares addresses, not interfaces, so the
    entry would admit the address from any of them."""
    if not isinstance(text, str) or not text.strip() or len(text) > 64:
        raise InvalidValue("expected an IP address or a CIDR block such as 10.0.0.0/8", field)
    value = text.strip()
    if "%" in value:
        raise InvalidValue(
            f"{value[:64]!r} has an IPv6 zone (after '%'): a zone names an interface of the "
            "host that wrote it, which an allow-list cannot check; give the address or block "
            "without it",
            field,
        )
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise InvalidValue(
            f"{value[:64]!r} is not an IP address or a CIDR block such as 10.0.0.0/8 or "
            "2001:db8::/32",
            field,
        ) from None
    if isinstance(network, IPv6Network) and network.subnet_of(_MAPPED):
        low = int(network.network_address) & 0xFFFFFFFF
        return IPv4Network((low, network.prefixlen - 96))
    return network


def checked_networks(values: object, field: str = "allowed_ips") -> tuple[str, ...]:
    """An allow-list as stored: canonical networks, duplicates dropped, in the order given."""
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidValue("expected a list of IP addresses or CIDR blocks", field)
    networks = tuple(dict.fromkeys(str(parse_network(v, field)) for v in values))
    if len(networks) > MAX_NETWORKS:
        raise InvalidValue(f"an allow-list holds at most {MAX_NETWORKS} entries", field)
    return networks


def within_networks(networks: Iterable[str], bounds: Iterable[str]) -> bool:
    """Whether every network of ``networks`` lies inside one of ``bounds`` (no bounds:
    anywhere, so always)."""
    outer = [parse_network(b) for b in bounds]
    if not outer:
        return True
    return all(
        any(inner.version == o.version and inner.subnet_of(o) for o in outer)  # type: ignore[arg-type]
        for inner in (parse_network(n) for n in networks)
    )


def _merged(ranges: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Sorted, non-overlapping (start, end) pairs, as two lists for bisection."""
    starts: list[int] = []
    ends: list[int] = []
    for start, end in sorted(ranges):
        if ends and start <= ends[-1] + 1:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return starts, ends


class _Verdicts(dict[str, bool]):
    """Answers by address text, bounded; an address not seen yet is judged on lookup
    (``__missing__``), so a repeated one costs a C dict lookup and no Python frame."""

    __slots__ = ("_judge",)

    def __init__(self, judge: Callable[[str], bool]) -> None:
        super().__init__()
        self._judge = judge

    def __missing__(self, text: str) -> bool:
        if len(self) >= _SEEN_LIMIT:
            self.clear()
        verdict = self[text] = self._judge(text)
        return verdict


class AddressSet:
    """Networks (address or CIDR strings, as ``checked_networks`` leaves them) to test
    addresses against, compiled once (a record builds its set when it is read, and the
    cache keeps it): merged integer ranges per IP version, searched by bisection. Empty:
    contains nothing."""

    __slots__ = ("_v4", "_v6", "allows", "networks", "verdicts")

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = tuple(networks)
        ranges: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for text in self.networks:
            network = ipaddress.ip_network(text)
            start = int(network.network_address)
            ranges[network.version].append((start, start + network.num_addresses - 1))
        self._v4 = _merged(ranges[4])
        self._v6 = _merged(ranges[6])
        # ``allows(text)``, or ``verdicts[text]``: whether the address written ``text`` (a
        # peer, as a server gives it) is in the set. A key's clients repeat, so answers are
        # kept per set (bounded) and a repeated address is one dict lookup, what the fast
        # path can afford (``verdicts[text]``: with no call at all, as ``KeyManager`` reads
        # it).
        self.verdicts: dict[str, bool] = _Verdicts(self._judge)
        self.allows: Callable[[str], bool] = self.verdicts.__getitem__

    def _judge(self, text: str) -> bool:
        return parse_address(text) in self

    def __contains__(self, address: object) -> bool:
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if isinstance(address, IPv4Address):
            starts, ends = self._v4
        elif isinstance(address, IPv6Address):
            starts, ends = self._v6
        else:
            return False
        number = int(address)
        at = bisect_right(starts, number) - 1
        return at >= 0 and number <= ends[at]

    def covers(self, text: str) -> bool:
        """Whether every address of network ``text`` is in the set."""
        network = ipaddress.ip_network(text)
        starts, ends = self._v4 if network.version == 4 else self._v6
        first = int(network.network_address)
        at = bisect_right(starts, first) - 1
        return at >= 0 and first + network.num_addresses - 1 <= ends[at]

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __repr__(self) -> str:
        return f"AddressSet({list(self.networks)!r})"


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def _forwarded_for(value: str) -> list[str]:
    """The ``for=`` node of each element of an RFC 7239 ``Forwarded`` header, left to
    right (``for="[2001:db8::1]:4711"`` as ``[2001:db8::1]:4711``); an element without one
    names no client and is left out."""
    nodes = []
    for element in value.split(","):
        for pair in element.split(";"):
            name, equals, node = pair.partition("=")
            if equals and name.strip().lower() == "for":
                nodes.append(node.strip().strip('"'))
    return nodes


class TrustedProxies:
    """The ``trusted_proxies`` setting: whose forwarding headers are believed."""

    __slots__ = ("set",)

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self.set = AddressSet(checked_networks(tuple(networks), "trusted_proxies"))

    def client(self, peer: str | None, headers: HeaderPairs = ()) -> Address | None:
        """The client's address for a request from ``peer`` with ``headers``; ``None`` when
        it cannot be told (no peer, or a trusted proxy forwarded something unreadable)."""
        address = parse_address(peer) if peer else None
        if address is None or not self.set or address not in self.set:
            return address  # an untrusted peer's forwarding headers are not believed
        hops: list[str] = []
        real: list[str] = []
        standard: list[str] = []
        for name, value in headers:
            lowered = _text(name).lower()
            if lowered == _FORWARDED_FOR:
                hops.extend(_text(value).split(","))
            elif lowered == _REAL_IP:
                real.append(_text(value))
            elif lowered == _FORWARDED:
                standard.extend(_forwarded_for(_text(value)))
        if not hops:
            if not real:
                return address  # the proxy itself asks
            if len(real) > 1:
                return None
            client = parse_address(real[0])
        else:
            client = self._forwarded(hops)
        if client is None:
            return None
        # A proxy that sets only one of these passes a client's own others on: where they
        # disagree (and the other names no trusted hop of a chain), nobody can tell which
        # header the proxy wrote. RFC 7239's ``Forwarded`` is one of them: a proxy that
        # sends only it leaves a client's X-Forwarded-For or X-Real-IP as the client sent it.
        for named in (
            *(parse_address(text) for text in real),
            *((self._forwarded(standard),) if standard else ()),
        ):
            if named is None or (named != client and named not in self.set):
                return None
        return client

    def _forwarded(self, hops: list[str]) -> Address | None:
        """The client ``X-Forwarded-For`` names, read from the right past trusted hops."""
        for hop in reversed(hops):
            hop_address = parse_address(hop)
            if hop_address is None:
                return None
            if hop_address not in self.set:
                return hop_address
        return parse_address(hops[0])  # every hop is a trusted proxy: the first is the client


# What the OpenAPI document says an address and an allow-list entry look like: every string
# these match is read by ``parse_address`` / ``parse_network`` (IPv4 without leading zeros,
# IPv6 in its usual forms, optionally with a prefix length, and an address IPv4-mapped); a
# few forms the readers also take (other IPv4 tails in IPv6, a port) are left out rather
# than described loosely.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_V4 = rf"{_OCTET}(\.{_OCTET}){{3}}"
_H = "[0-9a-fA-F]{1,4}"
_V6 = (
    f"(({_H}:){{7}}{_H}|({_H}:){{1,7}}:|({_H}:){{1,6}}:{_H}|({_H}:){{1,5}}(:{_H}){{1,2}}"
    f"|({_H}:){{1,4}}(:{_H}){{1,3}}|({_H}:){{1,3}}(:{_H}){{1,4}}|({_H}:){{1,2}}(:{_H}){{1,5}}"
    f"|{_H}:(:{_H}){{1,6}}|:((:{_H}){{1,7}}|:))"
)
# IPv4-mapped IPv6 (``::ffff:10.0.0.1``): how a dual-stack socket shows an IPv4 client, so
# what a service passes the verify API as ``ip``; every face reads it as the IPv4 address.
_MAPPED_V4 = rf"(::|(0{{1,4}}:){{5}})[fF]{{4}}:{_V4}"
ADDRESS_PATTERN = f"^({_V4}|{_V6}|{_MAPPED_V4})$"
_CANONICAL_V4 = re.compile(_V4)  # an IPv4 address as ``str(IPv4Address)`` writes it
NETWORK_PATTERN = f"^({_V4}(/(3[0-2]|[12]?[0-9]))?|{_V6}(/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))?)$"
