"""GitHub's secret scanning partner program: is a report really from GitHub, and what
does it say?

GitHub posts a JSON array of ``{"token", "type", "url", "source"}`` when it finds one of
a partner's tokens in a public place, signed with ECDSA (NIST P-256, SHA-256) over the raw
body: ``Github-Public-Key-Signature`` is the base64 DER signature and
``Github-Public-Key-Identifier`` names the key, one of those GitHub publishes at its meta
endpoint (``{"public_keys": [{"key_identifier", "key", "is_current"}]}``).

``GitHubKeys`` keeps the published keys: fetched on first use, refreshed when a report
names a key it does not have (GitHub rotated its keys) - one refresh at a time, and at most
one every ``refresh_interval`` seconds, so a flood of made-up identifiers cannot turn
keyturn into a client hammering GitHub - and the last good set kept when a refresh fails.
"""

from __future__ import annotations

from keyturn._extras import require

require("serve", "keyturn._github_scanning", "httpx", "cryptography")

import asyncio
import base64
import binascii
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

_log = logging.getLogger("keyturn.leaks")
REFRESH_INTERVAL = 60.0
RETRY_FIRST_LOAD = 5.0
FETCH_TIMEOUT = 10.0
MAX_TOKENS = 1000  # GitHub sends small batches; a larger array is not GitHub's


@dataclass(frozen=True, slots=True)
class ReportedToken:
    """One token GitHub found, where, and its type as GitHub names it."""

    token: str
    type: str
    url: str | None
    source: str | None

    def __repr__(self) -> str:
        return f"ReportedToken(type={self.type!r}, url={self.url!r}, source={self.source!r})"


def parse_report(body: bytes) -> list[ReportedToken] | None:
    """The findings of a report, or ``None`` when the body is not one."""
    try:
        items = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(items, list) or len(items) > MAX_TOKENS:
        return None
    findings = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("token"), str):
            return None
        url, source, kind = item.get("url"), item.get("source"), item.get("type", "")
        findings.append(
            ReportedToken(
                item["token"],
                kind if isinstance(kind, str) else "",
                url if isinstance(url, str) else None,
                source if isinstance(source, str) else None,
            )
        )
    return findings


class GitHubKeys:
    """The public keys GitHub signs reports with, as published at ``url``."""

    def __init__(self, url: str, *, refresh_interval: float = REFRESH_INTERVAL) -> None:
        self.url = url
        self.refresh_interval = refresh_interval
        self._keys: dict[str, Any] = {}
        self._loaded = False
        self._refreshed_at = -float("inf")
        self._attempted_at = -float("inf")
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def verify(self, identifier: str, signature: str, body: bytes) -> bool:
        """Whether ``body`` was signed by GitHub's key ``identifier``."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            der = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            return False
        key = await self._key(identifier)
        if key is None:
            return False
        try:
            key.verify(der, body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True

    async def _key(self, identifier: str) -> Any:
        key = self._keys.get(identifier)
        if key is not None:
            return key
        async with self._lock:  # one refresh at a time; the others wait for its keys
            key = self._keys.get(identifier)
            if key is None and self._may_refresh():
                await self._refresh()
                key = self._keys.get(identifier)
        return key

    def _may_refresh(self) -> bool:
        """The first load may be retried every few seconds until it works; once keys are
        loaded, a report naming an unknown key refreshes them at most once an interval."""
        now = time.monotonic()
        if not self._loaded:
            return now - self._attempted_at >= RETRY_FIRST_LOAD
        return now - self._refreshed_at >= self.refresh_interval

    async def _refresh(self) -> None:
        self._attempted_at = time.monotonic()
        if self._loaded:
            self._refreshed_at = self._attempted_at
        self.fetches += 1
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT) as client:
                answer = await client.get(self.url, headers={"accept": "application/json"})
            answer.raise_for_status()
            keys = _load_keys(answer.json())
        except (httpx.HTTPError, ValueError) as exc:
            _log.warning("cannot fetch GitHub's secret scanning keys from %s: %s", self.url, exc)
            return  # the last good set stays
        self._keys = keys
        self._loaded = True


def _load_keys(document: Any) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if not isinstance(document, dict) or not isinstance(document.get("public_keys"), list):
        raise ValueError("expected {\"public_keys\": [...]}")
    keys: dict[str, Any] = {}
    for entry in document["public_keys"]:
        if not isinstance(entry, dict):
            continue
        identifier, pem = entry.get("key_identifier"), entry.get("key")
        if not isinstance(identifier, str) or not isinstance(pem, str):
            continue
        try:
            key = load_pem_public_key(pem.encode())
        except (ValueError, TypeError):
            continue
        if isinstance(key, ec.EllipticCurvePublicKey):
            keys[identifier] = key
    if not keys:
        raise ValueError("no usable ECDSA key in the document")
    return keys
