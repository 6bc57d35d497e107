"""Webhook signatures as the Standard Webhooks specification defines them.

A delivery carries ``webhook-id`` (the event's id, the same on every attempt),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``:
``v1,`` and the base64 HMAC-SHA256 of ``"{id}.{timestamp}.{body}"``, keyed by the bytes
that the base64 part of the ``whsec_...`` secret encodes. Any Standard Webhooks library
verifies it; so do the dozen lines of ``verify`` below.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
TOLERANCE = 300  # seconds a receiver accepts between a timestamp and its clock


def new_secret() -> str:
    """24 random bytes, the size the specification recommends (at least 24, at most 64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    signed = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """The three headers of a delivery of ``body``."""
    moment = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(moment),
        "webhook-signature": signature(secret, msg_id, moment, body),
    }


def verify(secret: str, received: Mapping[str, str], body: str, now: float | None = None) -> bool:
    """Whether a delivery is genuine and recent: for receivers written in Python."""
    try:
        msg_id = received["webhook-id"]
        timestamp = int(received["webhook-timestamp"])
        offered = received["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > TOLERANCE:
        return False
    expected = signature(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)
