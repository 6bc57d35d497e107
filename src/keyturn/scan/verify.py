"""``keyturn scan --verify``: is a found key live? Asked of its provider, by the doctor.

Opt-in and online: for a finding whose provider the catalogue knows and ``rules.toml``'s
``[verify]`` names a harmless GET for (a read of the caller's own account or of a public
list), the doctor sends the key to that URL, on one of the provider's own hosts, the way the
catalogue says the provider wants it (header, scheme, required headers), and reads the
answer: 2xx is **live**, 401 or 403 is **revoked** (or never valid), anything else (no
answer, a 429, a 5xx) is **unknown**. The key goes nowhere else, is never printed, and the
doctor scrubs it from everything it keeps.
"""

from __future__ import annotations

from keyturn._extras import require

require("doctor", "keyturn.scan.verify")

from typing import Literal

import httpx

from keyturn.doctor import diagnose
from keyturn.scan.rules import RULES

Verdict = Literal["live", "revoked", "unknown"]
VERIFY_TIMEOUT = 10.0


def verify_url(provider_id: str) -> str | None:
    return RULES.verify.get(provider_id)


def verify_key(
    provider_id: str, secret: str, transport: httpx.BaseTransport | None = None,
    timeout: float = VERIFY_TIMEOUT,
) -> Verdict | None:
    """The provider's word on ``secret``; ``None`` where there is no one to ask."""
    url = verify_url(provider_id)
    if url is None:
        return None
    report = diagnose(
        url, key=secret, provider=provider_id, timeout=timeout, transport=transport,
        use_keyring=False, environ={}, try_other_ways=False,
    )
    status = report.probe.status if report.probe else None
    if status is not None and 200 <= status < 300:
        return "live"
    if status in (401, 403):
        return "revoked"
    return "unknown"
