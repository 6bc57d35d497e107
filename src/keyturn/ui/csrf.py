"""CSRF protection: a synchronizer token bound to the session, on every form.

``SameSite=Strict`` already keeps the session cookie off cross-site requests in current
browsers; the token is the second lock, for older browsers and same-site attackers (another
app on a sibling subdomain). Every state-changing request — sign-in included, against login
CSRF — must echo the session's token in the ``csrf`` form field or the ``X-CSRF-Token``
header, compared in constant time.
"""

from __future__ import annotations

import hmac

FIELD = "csrf"
HEADER = "x-csrf-token"


def token_matches(expected: str, given: str | None) -> bool:
    """``given`` is the session's token; constant time, so timing leaks nothing about it."""
    if not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))
