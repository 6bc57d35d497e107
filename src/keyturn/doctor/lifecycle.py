"""What an accepting server says about the key's future, read from its answer's headers.

A keyturn deployment tells the holder of a key it accepted when the key expires
(``Keyturn-Key-Expires``) and, after a rotation, until when this key still works
(``Keyturn-Key-Rotated-Until``; ``keyturn.lifecycle_headers``). A program that ignores them
breaks on the day; the doctor turns them into findings the user reads today:
"this key expires in 5 days (2026-12-07)", "this key was rotated: switch to its successor
before ...". A value that is not an HTTP-date is named as such, never guessed at.
"""

from __future__ import annotations

from datetime import datetime

from keyturn.doctor.interpret import Answer
from keyturn.doctor.report import Finding, finding
from keyturn.doctor.validity import span
from keyturn.lifecycle_headers import EXPIRES_HEADER, ROTATED_HEADER, WARNING, read_http_date


def _day(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d}"


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def lifecycle_findings(answer: Answer, now: datetime) -> list[Finding]:
    """Findings for the lifecycle headers of an accepted ``answer``, judged at ``now``."""
    found: list[Finding] = []
    expires_text = answer.header(EXPIRES_HEADER)
    rotated_text = answer.header(ROTATED_HEADER)
    for name, text in ((EXPIRES_HEADER, expires_text), (ROTATED_HEADER, rotated_text)):
        if text is not None and text.strip() and read_http_date(text) is None:
            found.append(finding(
                "lifecycle_header_unreadable",
                f"{name}: {text[:80]!r} is not an HTTP-date (e.g. Mon, 07 Dec 2026 00:00:00 GMT)",
            ))
    expires = read_http_date(expires_text) if expires_text else None
    rotated = read_http_date(rotated_text) if rotated_text else None
    if rotated is not None:
        end = min(rotated, expires) if expires is not None else rotated
        found.append(finding(
            "key_successor_exists",
            f"the server says this key was rotated: switch to its successor before "
            f"{_when(end)} (in {span(end - now)}); after that this key is refused",
        ))
    if expires is not None and (rotated is None or expires < rotated):
        left = expires - now
        said = f"the server says this key expires in {span(left)} ({_day(expires)}, " \
            f"{_when(expires)})"
        # Within ``WARNING`` (30 days: when a keyturn server starts announcing the expiry, and
        # its first ``key.expiring`` reminder to the provider) a warning; further off,
        # information: other servers may announce earlier.
        if left <= WARNING:
            found.append(finding("key_expiry_near", said))
        else:
            found.append(finding("key_expiry_announced", said))
    return found
