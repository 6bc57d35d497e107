"""An exposure: where a secret is, whose it is, and how sure the scanner is, never the secret.

The secret itself lives only in the detector's memory. What leaves it is the mask
(``ghp_4fQz…9aB1``, as ``keyturn.keys.mask`` shows keys) and a fingerprint: a salted hash
of provider and value, which is what a baseline records. The fingerprint leaves out file and
line, so a key that moves stays known, and the salt keeps a dictionary of likely passwords
from being checked against a baseline.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from keyturn.keys import mask_after
from keyturn.outcomes import lookup
from keyturn.scan.codes import Confidence

DEFAULT_SALT = "keyturn-scan-v1"


def fingerprint(provider_id: str, secret: str, salt: str = DEFAULT_SALT) -> str:
    """A stable id for (provider, secret) that does not reveal the secret."""
    material = "\0".join((salt, provider_id, secret)).encode()
    return hashlib.sha256(material).hexdigest()[:32]


def mask_value(value: str, prefix: str = "") -> str:
    """``prefix`` shown, then 4 + 4 characters of the rest if at least 8 stay hidden."""
    if value.startswith(prefix):
        return mask_after(prefix, value[len(prefix) :])
    return mask_after("", value)


@dataclass(frozen=True, slots=True)
class Exposure:
    """One thing the scan reports: a secret exposed at a place in a file (or a ``.env`` file
    exposed to git), by mask and fingerprint, never by value. Each is one entry of
    ``findings`` in the JSON report, whose shape ``docs/scan.md`` documents."""

    code: str
    path: str
    line: int  # 1-based; 0 for a finding about a whole file
    column: int  # 1-based, in characters; 0 for a whole file
    provider_id: str
    provider: str
    key_type: str
    masked: str
    confidence: Confidence
    fingerprint: str
    fix: str
    commits: tuple[str, ...] = field(default=())  # --history: the commits that add it
    verified: str = ""  # --verify: "live", "revoked" or "unknown"; "" when not asked

    @property
    def severity(self) -> str:
        return lookup(self.code).severity

    @property
    def title(self) -> str:
        return lookup(self.code).title

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "title": self.title,
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "provider": self.provider,
            "provider_id": self.provider_id,
            "key_type": self.key_type,
            "masked": self.masked,
            "confidence": self.confidence,
            "fingerprint": self.fingerprint,
            "fix": self.fix,
            "commits": list(self.commits),
            "verified": self.verified or None,
        }
