"""The provider catalogue: whose key is this, and how does that API want it sent?

Loaded from ``providers.toml`` (data, one file). The verifier uses it to tell a caller that
the value they sent is, say, an OpenAI key rather than one of ours; the doctor uses the rest
(hosts, conventions, required headers, key types and error bodies) to explain a 401 from
that API; the scanner reuses the distinctive key shapes.
"""

from __future__ import annotations

import re
import tomllib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from keyturn.keys import encode_base62


def github_crc32_ok(key: str) -> bool:
    """GitHub's (and npm's) public token checksum: the last six characters are the base62
    CRC32 of the random part between the prefix's ``_`` and them."""
    tail = key[key.find("_") + 1 :]
    body, given = tail[:-6], tail[-6:]
    return len(tail) > 6 and encode_base62(zlib.crc32(body.encode()), 6) == given


# The public checksum schemes a key type may name in providers.toml (`checksum = "..."`).
CHECKSUMS: Mapping[str, Callable[[str], bool]] = {"github-crc32": github_crc32_ok}


@dataclass(frozen=True, slots=True)
class KeyType:
    """One kind of credential a provider issues, e.g. Stripe's publishable test key."""

    name: str
    pattern: re.Pattern[str]
    prefix: str = ""
    secret: bool = True  # False: an identifier that is not a credential (an account id)
    usable: bool = True  # False: cannot authenticate this API's server-side calls
    environment: str = ""  # "live" / "test" where the key says which
    distinctive: bool = True  # False: the shape alone cannot name the provider
    checksum: str = ""  # a public checksum scheme, e.g. "github-crc32"
    scheme: str | None = None  # overrides the provider's scheme for this type
    note: str = ""  # for an unusable type: what to use instead

    def matches(self, key: str) -> bool:
        return self.pattern.fullmatch(key) is not None

    def checksum_ok(self, key: str) -> bool:
        """Whether ``key``'s public checksum verifies; ``True`` for a type without one."""
        return not self.checksum or CHECKSUMS[self.checksum](key)


# What a signal says: that the key is not valid ("rejected", where the API's status does not
# say so), or about a valid key ("permission", ...), each with its own doctor finding.
SIGNAL_MEANINGS = ("rejected", "permission", "not_shared", "mode", "hidden")


@dataclass(frozen=True, slots=True)
class Signal:
    """How an API says "the key is valid, but": not allowed (``permission``), the object is
    not shared with it (``not_shared``), it belongs to the other mode (``mode``: test/live,
    sandbox/production), or the API hides what the key may not see as a 404 (``hidden``).

    ``rejected`` marks an answer that means "this key is not valid" where the status does not
    say so (Vercel's 403 with ``"invalidToken": true``).

    Every condition given must hold: the status, the error code, the message (a regex), a
    header being present, a body field being true. ``needed`` (a regex whose first group is
    taken from the message), ``needed_field``/``needed_header`` and
    ``held_field``/``held_header`` say what the key lacks and holds; ``fix`` may use
    ``{needed}`` and ``{held}``."""

    means: str
    status: frozenset[int] = frozenset()
    codes: frozenset[str] = frozenset()
    message: re.Pattern[str] | None = None
    header: str = ""
    field: str = ""  # a JSON path whose value must be true
    needed: re.Pattern[str] | None = None
    needed_field: str = ""
    needed_header: str = ""
    held_field: str = ""
    held_header: str = ""
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    name: str
    hosts: tuple[str, ...]
    env: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    header: str
    scheme: str
    key_types: tuple[KeyType, ...] = ()
    basic_user: str = ""
    also_accepts: tuple[str, ...] = ()
    query_param: str = ""
    required_headers: tuple[tuple[str, str], ...] = ()
    keys_url: str = ""
    error_message: tuple[str, ...] = ()
    error_code: tuple[str, ...] = ()
    ok_field: str = ""
    rejected_codes: frozenset[str] = field(default_factory=frozenset)
    forbidden_codes: frozenset[str] = field(default_factory=frozenset)
    # codes that say the account is out of credit (the key itself is fine), whatever the status
    credit_codes: frozenset[str] = field(default_factory=frozenset)
    signals: tuple[Signal, ...] = ()
    test_hosts: tuple[str, ...] = ()  # hosts of the test/sandbox environment, if separate
    no_key: re.Pattern[str] | None = None  # its message for a request without a key
    rejected_status: frozenset[int] = field(default_factory=frozenset)  # e.g. 403 = no

    def matches(self, key: str) -> bool:
        return any(p.fullmatch(key) for p in self.patterns)

    def key_type(self, key: str) -> KeyType | None:
        """The first of this provider's key types ``key`` has, distinctive or not."""
        return next((t for t in self.key_types if t.matches(key)), None)

    def serves(self, host: str) -> bool:
        """Whether ``host`` is one of this API's hosts (``*.x`` matches any subdomain of x),
        test hosts included."""
        return _host_in(host, self.hosts + self.test_hosts)

    def is_test_host(self, host: str) -> bool:
        """Whether ``host`` serves this API's test (sandbox) environment."""
        return _host_in(host, self.test_hosts)


def _host_in(host: str, patterns: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def _key_type(entry: Mapping[str, Any]) -> KeyType:
    return KeyType(
        name=entry["name"],
        pattern=re.compile(entry["pattern"]),
        prefix=entry.get("prefix", ""),
        secret=entry.get("secret", True),
        usable=entry.get("usable", True),
        environment=entry.get("environment", ""),
        distinctive=entry.get("distinctive", True),
        checksum=entry.get("checksum", ""),
        scheme=entry.get("scheme"),
        note=" ".join(entry.get("note", "").split()),
    )


def _pattern(text: str | None) -> re.Pattern[str] | None:
    return re.compile(text, re.IGNORECASE) if text else None


def _signal(entry: Mapping[str, Any]) -> Signal:
    if entry["means"] not in SIGNAL_MEANINGS:
        raise ValueError(f"providers.toml: a signal means one of {SIGNAL_MEANINGS}")
    return Signal(
        means=entry["means"],
        status=frozenset(entry.get("status", ())),
        codes=frozenset(entry.get("code", ())),
        message=_pattern(entry.get("message")),
        header=entry.get("header", ""),
        field=entry.get("field", ""),
        needed=_pattern(entry.get("needed")),
        needed_field=entry.get("needed_field", ""),
        needed_header=entry.get("needed_header", ""),
        held_field=entry.get("held_field", ""),
        held_header=entry.get("held_header", ""),
        fix=" ".join(entry.get("fix", "").split()),
    )


def _provider(entry: Mapping[str, Any]) -> Provider:
    key_types = tuple(_key_type(t) for t in entry.get("key_type", ()))
    # Only distinctive shapes identify a provider: "32 hex characters" names nobody.
    patterns = tuple(re.compile(p) for p in entry.get("key_patterns", ())) + tuple(
        t.pattern for t in key_types if t.distinctive
    )
    return Provider(
        id=entry["id"],
        name=entry["name"],
        hosts=tuple(entry.get("hosts", ())),
        env=tuple(entry.get("env", ())),
        patterns=patterns,
        header=entry.get("header", "Authorization"),
        scheme=entry.get("scheme", "Bearer"),
        key_types=key_types,
        basic_user=entry.get("basic_user", ""),
        also_accepts=tuple(entry.get("also_accepts", ())),
        query_param=entry.get("query_param", ""),
        required_headers=tuple(entry.get("required_headers", {}).items()),
        keys_url=entry.get("keys_url", ""),
        error_message=tuple(entry.get("error_message", ())),
        error_code=tuple(entry.get("error_code", ())),
        ok_field=entry.get("ok_field", ""),
        rejected_codes=frozenset(entry.get("rejected_codes", ())),
        forbidden_codes=frozenset(entry.get("forbidden_codes", ())),
        credit_codes=frozenset(entry.get("credit_codes", ())),
        signals=tuple(_signal(s) for s in entry.get("signal", ())),
        test_hosts=tuple(entry.get("test_hosts", ())),
        no_key=_pattern(entry.get("no_key")),
        rejected_status=frozenset(entry.get("rejected_status", ())),
    )


def entries() -> list[dict[str, Any]]:
    """``providers.toml`` as parsed TOML: every field, the documented answers too (the
    tests' emulators and the docs' table read those)."""
    text = resources.files(__package__).joinpath("providers.toml").read_text("utf-8")
    entries: list[dict[str, Any]] = tomllib.loads(text)["provider"]
    return entries


def _load() -> tuple[Provider, ...]:
    return tuple(_provider(entry) for entry in entries())


PROVIDERS: tuple[Provider, ...] = _load()
_BY_ID = {p.id: p for p in PROVIDERS}


def identify(key: str) -> Provider | None:
    """The first catalogued provider whose key shape ``key`` has, if any."""
    for provider in PROVIDERS:
        if provider.matches(key):
            return provider
    return None


def identify_type(key: str) -> tuple[Provider, KeyType] | None:
    """The provider and key type ``key`` distinctively has, if any."""
    for provider in PROVIDERS:
        for key_type in provider.key_types:
            if key_type.distinctive and key_type.matches(key):
                return provider, key_type
    return None


def by_id(provider_id: str) -> Provider | None:
    return _BY_ID.get(provider_id)


def for_host(host: str) -> Provider | None:
    """The catalogued API served at ``host``, if any."""
    return next((p for p in PROVIDERS if p.serves(host)), None)
