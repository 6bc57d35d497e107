"""Whose key is this, and is it whole? Shape and checksum against the catalogue.

A key's shape often tells its issuer (``sk-ant-`` is Anthropic's, ``ghp_`` GitHub's) and its
kind (Stripe's ``pk_`` keys are publishable, not secret). Where the format carries a public
checksum (keyturn's own keys, GitHub's and npm's tokens) a typo or a truncation is caught
offline, before anything is sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from keyturn._providers import CHECKSUMS, KeyType, Provider, identify_type
from keyturn.doctor.report import Finding, finding
from keyturn.doctor.target import KEYTURN
from keyturn.keys import KeyDefect, KeyProblem, parse_key

_KEYTURN_PREFIXES = ("kt_live_", "kt_test_")


@dataclass(frozen=True, slots=True)
class Identity:
    """What the key is, as far as its shape tells."""

    provider: Provider | None = None
    key_type: KeyType | None = None
    jwt_header: dict[str, Any] | None = None
    keyturn_prefix: str = ""

    @property
    def label(self) -> str:
        if self.key_type is not None and self.provider is not None:
            return f"{_article(self.provider.name)} {self.provider.name} {self.key_type.name}"
        if self.keyturn_prefix:
            return f"a keyturn key (prefix {self.keyturn_prefix}_)"
        if self.jwt_header is not None:
            return f"a JSON Web Token (alg {self.jwt_header.get('alg', '?')})"
        return ""


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def jwt_parts(key: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(header, payload) of a JWT, unverified; ``None`` if ``key`` is not one."""
    pieces = key.split(".")
    if len(pieces) != 3 or not pieces[0].startswith("ey"):
        return None
    try:
        header, payload = (
            json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in pieces[:2]
        )
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or "alg" not in header or not isinstance(payload, dict):
        return None
    return header, payload


def _own_type(provider: Provider, key: str) -> KeyType | None:
    """The provider's type for ``key``: a distinctive match before a loose one."""
    distinctive = [t for t in provider.key_types if t.distinctive and t.matches(key)]
    return distinctive[0] if distinctive else provider.key_type(key)


def _near_prefix(provider: Provider, key: str) -> KeyType | None:
    """The type whose prefix ``key`` starts with, longest prefix first."""
    typed = sorted(
        (t for t in provider.key_types if t.prefix and key.startswith(t.prefix)),
        key=lambda t: len(t.prefix),
        reverse=True,
    )
    return typed[0] if typed else None


def identify_key(key: str, target: Provider | None) -> Identity:
    """Who issued ``key``: the target API if its shape fits, else any catalogued issuer."""
    if target is not None and target is not KEYTURN:
        own = _own_type(target, key)
        if own is not None:
            return Identity(target, own)
    match = identify_type(key)
    if match is not None:
        return Identity(*match)
    parsed = parse_key(key)
    if not isinstance(parsed, KeyDefect):
        return Identity(keyturn_prefix=parsed.prefix)
    parts = jwt_parts(key)
    if parts is not None:
        return Identity(jwt_header=parts[0])
    return Identity()


def check_shape(key: str, target: Provider | None, host: str) -> tuple[Identity, list[Finding]]:
    """Findings about the key's shape, for a request to ``target`` at ``host``."""
    identity = identify_key(key, target)
    found: list[Finding] = []
    provider, key_type = identity.provider, identity.key_type
    if provider is not None and key_type is not None:
        if key_type.checksum and not CHECKSUMS[key_type.checksum](key):
            found.append(
                finding(
                    "key_malformed",
                    f"this has the shape of {identity.label}, but its last six characters (a "
                    "CRC32 checksum of the rest) do not match: a character was mistyped, "
                    "changed or lost",
                )
            )
            return identity, found
        if target is not None and provider is not target:
            found.append(_mismatch(identity.label, provider, target, host))
            return identity, found
        if not key_type.usable:
            found.append(finding("key_wrong_type", f"this is {identity.label}: {key_type.note}"))
            return identity, found
        mode = _mode_mismatch(identity.label, provider, key_type, host)
        if mode is not None:
            found.append(mode)
            return identity, found
        extra = ", checksum valid" if key_type.checksum else ""
        found.append(finding("key_identified", f"{identity.label}{extra}"))
        return identity, found
    if identity.keyturn_prefix:
        if target is not None and target is not KEYTURN:
            found.append(_mismatch(identity.label, None, target, host))
        else:
            found.append(finding("key_identified", f"{identity.label}, checksum valid"))
        return identity, found
    defect = _keyturn_defect(key, target)
    if defect is not None:
        found.append(finding("key_malformed", f"this looks like a keyturn key, but {defect}"))
        return identity, found
    if target is not None and target is not KEYTURN and target.key_types:
        found.append(_not_target_shape(key, target))
        return identity, found
    if identity.jwt_header is not None:
        found.append(finding("key_identified", identity.label))
    return identity, found


def _mode_mismatch(
    label: str, provider: Provider, key_type: KeyType, host: str
) -> Finding | None:
    """A sandbox key sent to the live host, or a live key to the sandbox host, for an API
    whose two environments have hosts of their own."""
    if not provider.test_hosts or not key_type.environment or not host:
        return None
    on_test = provider.is_test_host(host)
    if (key_type.environment == "test") == on_test or not provider.serves(host):
        return None
    other = "test (sandbox)" if on_test else "live"
    return finding(
        "key_mode_mismatch",
        f"this is {label}, but {host} is {provider.name}'s {other} host",
        f"send it to {provider.name}'s {key_type.environment} host, or use the {other} key",
    )


def _keyturn_defect(key: str, target: Provider | None) -> str | None:
    """What is wrong with a would-be keyturn key, when it is clearly meant to be one."""
    parsed = parse_key(key)
    if not isinstance(parsed, KeyDefect):
        return None
    exact_shape = parsed.problem is KeyProblem.CHECKSUM_MISMATCH
    if exact_shape or target is KEYTURN or key.startswith(_KEYTURN_PREFIXES):
        return parsed.detail
    return None


def _mismatch(label: str, owner: Provider | None, target: Provider, host: str) -> Finding:
    owner_name = owner.name if owner else "a keyturn service"
    wanted = " or ".join(target.env[:2]) if target.env else "its own key"
    detail = f"this is {label}, but {host or 'the URL'} is {target.name}'s API"
    if owner is not None and owner.hosts:
        where = f"send it to {owner.hosts[0].removeprefix('*.')}"
    else:
        where = f"send it to {owner_name}"
    return finding(
        "key_provider_mismatch",
        detail,
        f"use your {target.name} key here ({wanted}), or {where}",
    )


def _not_target_shape(key: str, target: Provider) -> Finding:
    near = _near_prefix(target, key)
    if near is not None:
        detail = (
            f"it starts like {_article(target.name)} {target.name} {near.name} "
            f"('{near.prefix}…') but its length or characters do not fit that shape "
            f"({len(key)} characters in all): it was probably cut off, or a character was "
            "lost or added"
        )
    else:
        shapes = sorted({t.prefix + "…" for t in target.key_types if t.prefix})
        expected = (
            f"{target.name} keys start with {' or '.join(shapes)}"
            if shapes and all(t.prefix for t in target.key_types)
            else f"it does not have the shape of any {target.name} key"
        )
        detail = f"{expected}; this value ({len(key)} characters) does not"
        if "does not have the shape" in expected:
            detail = f"{expected} ({len(key)} characters)"
    fix = f"copy the key again from {target.keys_url}" if target.keys_url else ""
    return finding("key_malformed", detail, fix)
