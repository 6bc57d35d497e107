"""Where a caller stands against a limit: what the ``RateLimit-*`` headers report."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Quota:
    """One limit (a rate limit's window, or a key's credits) as seen by one request."""

    limit: int
    remaining: int
    reset: float  # seconds until the window resets or the credits refill; inf: never
    policy: str = ""  # the limit as written, e.g. "100/second"; "credits" for credits

    @property
    def retry_after(self) -> int | None:
        """Whole seconds to wait, rounded up (RFC 9110 §10.2.3); None when waiting is futile."""
        return None if math.isinf(self.reset) else max(1, math.ceil(self.reset))
