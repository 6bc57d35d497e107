"""``keyturn scan --report URL``: a keyturn key found is reported to its deployment at once.

A pre-commit hook that finds a key about to be committed can do more than refuse the
commit: it sends the key to the deployment's ``POST /v1/leaks``, which applies its leak
action (revoked, by default) before the developer has read the hook's message, let alone
pushed. Only keyturn keys whose checksum verifies are sent (the scanner reports nothing
else as a keyturn key), each once, over HTTPS or to a loopback address; the deployment
answers 202 whatever the key, so the scan learns nothing about it. The key goes to that
URL and nowhere else (no proxy from the environment), and is never printed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from keyturn.errors import InvalidValue

if TYPE_CHECKING:  # httpx is imported when a key is found, not by every hook's scan
    import httpx

REPORT_TIMEOUT = 10.0


def checked_report_url(url: str) -> str:
    """The deployment's base URL: https, or http to loopback (a local test deployment)."""
    parts = urlsplit(url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise InvalidValue(
            "--report needs an https URL (http only to 127.0.0.1 or localhost): the keys "
            "found travel in it",
            "report",
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise InvalidValue("--report takes the deployment's base URL, e.g. https://keys.example")
    return url.rstrip("/")


@dataclass
class LeakReporter:
    """Called with each finding's provider and value; reports keyturn keys, once each."""

    url: str
    transport: httpx.BaseTransport | None = None
    sent: int = 0
    failed: list[str] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False)
    _client: httpx.Client | None = field(default=None, repr=False)

    def __call__(self, provider_id: str, secret: str) -> None:
        if provider_id != "keyturn" or secret in self._seen:
            return
        self._seen.add(secret)
        import httpx

        if self._client is None:
            # No proxy or ~/.netrc from the environment (``trust_env``), as the doctor: the
            # key goes to the URL alone, never in clear to an HTTP_PROXY on the way.
            self._client = httpx.Client(
                timeout=REPORT_TIMEOUT,
                transport=self.transport,
                follow_redirects=False,
                trust_env=False,
            )
        try:
            answer = self._client.post(f"{self.url}/v1/leaks", json={"key": secret})
        except httpx.HTTPError as exc:
            self.failed.append(type(exc).__name__)
            return
        if answer.status_code == 202:
            self.sent += 1
        else:
            self.failed.append(f"HTTP {answer.status_code}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
