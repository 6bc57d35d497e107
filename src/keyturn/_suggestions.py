"""Least-privilege suggestions: the scopes a key's requests needed and where they came from.

Made from the verification log (``keyturn._verifications``), which records for every
decision of ``/auth`` and the verify API the scopes the request needed (the path rules that
matched, the scopes header, the verify request's ``scopes``) and the client's address. For
the key's accepted requests over the last N whole days (UTC):

- **scopes**: every scope some request needed, and nothing else. A key holding
  ``orders:*`` whose requests needed only ``orders:read`` is offered ``orders:read``. Scopes
  its roles grant stay with the roles: the suggestion is for the key's own scopes.
- **addresses**: the clients' addresses, grouped by ``/24`` (IPv4) and ``/48`` (IPv6): a
  group with at most ``FEW`` distinct addresses is listed address by address, a busier one
  as its whole range, and adjacent ranges are merged. A range that lies outside the key's
  current ``allowed_ips`` is listed as its addresses, so a suggestion never widens the key.

A suggestion is only offered as a narrowing when it is **complete**: every accepted request
the key's usage counters saw (``usage.py``: every face counts) over the same days was logged.
The framework integrations and the admin API do not write the verification log, entries are
dropped under overload, the log may be turned off or keep fewer days than asked; in each of
those cases some of the key's traffic is invisible here, and narrowing the key to what is
visible could cut off what is not. Requests logged before scopes were recorded, requests
the verify API decided by a permission expression (``not admin`` holds for a key that has
lost ``admin``: narrowing could widen what it is accepted for), and clients whose address
is not known make the scopes or the addresses unknown in the same way.

Pure: rows in, a ``Suggestion`` out.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from keyturn._addresses import MAX_NETWORKS, Address, Network, parse_address, within_networks
from keyturn.scopes import missing_scopes

FEW = 4  # at most this many addresses of one /24 or /48 are listed one by one
GROUP_V4 = 24
GROUP_V6 = 48
MAX_DAYS = 90


@dataclass(frozen=True, slots=True)
class Need:
    """Accepted requests of one key with one set of needed scopes from one client, as the
    verification log groups them (``scopes`` ``None``: logged before scopes were)."""

    scopes: tuple[str, ...] | None
    client: str | None
    requests: int


@dataclass(frozen=True, slots=True)
class Suggestion:
    key_id: str
    days: int
    since: datetime
    logged: int  # accepted requests in the verification log
    counted: int  # accepted requests the usage counters saw (every face)
    scopes: tuple[str, ...] | None  # None: not known
    allowed_ips: tuple[str, ...] | None  # None: not known
    unused: tuple[str, ...]  # scopes the key holds that would go
    reasons: tuple[str, ...]  # why a part is not known, or the whole not complete

    @property
    def complete(self) -> bool:
        """Every accepted request the counters saw was logged, with what it needed."""
        return not self.reasons

    def narrows(self, held: frozenset[str], allowed: tuple[str, ...]) -> bool:
        """Whether applying it to a key holding ``held`` and confined to ``allowed`` is a
        narrowing that changes something: complete, every scope held now (a request may
        have needed one the key has lost since), every range inside ``allowed``."""
        if not self.complete or self.scopes is None or self.allowed_ips is None:
            return False
        if missing_scopes(held, self.scopes) or not within_networks(self.allowed_ips, allowed):
            return False
        return frozenset(self.scopes) != held or set(self.allowed_ips) != set(allowed)

    def public(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "days": self.days,
            "since": self.since.isoformat(),
            "requests": {"logged": self.logged, "counted": self.counted},
            "complete": self.complete,
            "scopes": None if self.scopes is None else list(self.scopes),
            "unused_scopes": list(self.unused),
            "allowed_ips": None if self.allowed_ips is None else list(self.allowed_ips),
            "reasons": list(self.reasons),
        }


def suggest(
    key_id: str,
    held: frozenset[str],
    allowed: tuple[str, ...],
    needs: Iterable[Need],
    counted: int,
    *,
    days: int,
    since: datetime,
    by_roles: frozenset[str] = frozenset(),
) -> Suggestion:
    """The suggestion for a key holding ``held`` (its own scopes) and restricted to
    ``allowed`` (empty: anywhere), from its logged accepted requests (``needs``) and the
    accepted requests its usage counters saw over the same days (``counted``). A scope its
    roles grant (``by_roles``) is left to them: the suggestion is for its own scopes."""
    needs = list(needs)
    logged = sum(n.requests for n in needs)
    reasons: list[str] = []
    if logged == 0:
        reasons.append("no accepted request of this key was logged in these days")
    elif logged < counted:
        reasons.append(
            f"only {logged} of the {counted} requests this key had accepted were logged: "
            "the rest went through a face that does not write the verification log (a "
            "framework integration, the admin API) or were dropped"
        )
    scopes: tuple[str, ...] | None = None
    if logged and all(n.scopes is not None for n in needs):
        needed = {s for n in needs for s in n.scopes or ()}
        scopes = tuple(sorted(s for s in needed if missing_scopes(by_roles, (s,))))
    elif logged:
        reasons.append(
            "some requests were logged without a set of scopes they needed: before keyturn "
            "recorded them, or decided by a permission expression (whose 'not' could turn "
            "a narrowed key's refusals into acceptances)"
        )
    ips: tuple[str, ...] | None = None
    addresses = [parse_address(n.client) if n.client else None for n in needs]
    if logged and all(a is not None for a in addresses):
        ips = address_ranges([a for a in addresses if a is not None], allowed)
        if len(ips) > MAX_NETWORKS:
            ips = None
            reasons.append(f"the clients' addresses make more than {MAX_NETWORKS} ranges")
    elif logged:
        reasons.append(
            "some requests came from a client whose address is not known: verify API "
            "requests that gave no 'ip' (send the client's address as 'ip'), or requests "
            "without a peer address"
        )
    unused = tuple(sorted(held - set(scopes))) if scopes is not None else ()
    return Suggestion(
        key_id, days, since, logged, counted, scopes, ips, unused, tuple(reasons)
    )


def address_ranges(addresses: Iterable[Address], allowed: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Addresses grouped as the module says: ``/24`` and ``/48`` groups, a group of at most
    ``FEW`` addresses listed one by one, adjacent ranges merged, and nothing outside
    ``allowed`` (when given) beyond the addresses themselves."""
    groups: dict[Network, set[Address]] = defaultdict(set)
    for address in addresses:
        prefix = GROUP_V4 if address.version == 4 else GROUP_V6
        groups[ipaddress.ip_network(f"{address}/{prefix}", strict=False)].add(address)
    found: list[Network] = []
    for group, members in groups.items():
        if len(members) > FEW and within_networks([str(group)], allowed):
            found.append(group)
        else:
            found.extend(ipaddress.ip_network(a) for a in members)
    v4 = [n for n in found if isinstance(n, IPv4Network)]
    v6 = [n for n in found if isinstance(n, IPv6Network)]
    merged = [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]
    return tuple(str(n) for n in merged)
