"""A baseline: the findings a team has looked at and accepted, by fingerprint only.

The file is JSON meant to be committed. It holds each finding's fingerprint (a hash of
provider and value salted with the baseline's own random salt), with the code, path and
mask to help a reviewer: never a secret, and a dictionary of likely passwords cannot be
checked against it without redoing the work per baseline. Fingerprints leave out the line,
so a known value that moves stays known.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keyturn.scan.exposure import Exposure

FORMAT = 1


class BaselineError(ValueError):
    """The baseline file is missing or not one keyturn wrote."""


@dataclass(frozen=True, slots=True)
class Baseline:
    salt: str
    fingerprints: frozenset[str] = field(default_factory=frozenset)

    def __contains__(self, finding: object) -> bool:
        return isinstance(finding, Exposure) and finding.fingerprint in self.fingerprints


def new_salt() -> str:
    return secrets.token_hex(16)


def load(path: Path) -> Baseline:
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"baseline {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"baseline {path} is not readable JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("keyturn_baseline") != FORMAT:
        raise BaselineError(f"{path} is not a keyturn baseline (format {FORMAT})")
    salt, entries = data.get("salt"), data.get("findings")
    if not isinstance(salt, str) or not isinstance(entries, list):
        raise BaselineError(f"baseline {path} lacks a salt or a findings list")
    prints = frozenset(e["fingerprint"] for e in entries if isinstance(e, dict) and
                       isinstance(e.get("fingerprint"), str))
    return Baseline(salt, prints)


def dump(findings: Iterable[Exposure], salt: str) -> dict[str, Any]:
    entries = {
        f.fingerprint: {
            "fingerprint": f.fingerprint, "code": f.code, "provider": f.provider,
            "path": f.path, "masked": f.masked,
        }
        for f in findings
    }
    return {
        "keyturn_baseline": FORMAT,
        "salt": salt,
        "findings": [entries[k] for k in sorted(entries)],
    }


def save(path: Path, findings: Iterable[Exposure], salt: str) -> int:
    data = dump(findings, salt)
    path.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    return len(data["findings"])
