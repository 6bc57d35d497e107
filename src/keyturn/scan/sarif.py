"""SARIF 2.1.0, the format code-scanning services (GitHub, GitLab, Azure DevOps) read.

One rule per finding code, its texts taken from the outcome catalogue; one result per
finding, with the masked value and a partial fingerprint (the salted hash, never the key)
so a service can follow an alert across runs. ``tests/scan`` validates the output against
the official schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from keyturn import __version__
from keyturn._printable import printable
from keyturn.outcomes import lookup
from keyturn.scan.codes import CODES
from keyturn.scan.exposure import Exposure

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS = {"error": "error", "warning": "warning", "info": "note"}


def _rule(code: str) -> dict[str, Any]:
    entry = lookup(code)
    return {
        "id": code,
        "name": "".join(w.capitalize() for w in code.split("_")),
        "shortDescription": {"text": entry.title},
        "fullDescription": {"text": entry.explanation},
        "help": {"text": f"{entry.explanation}\n\nFix: {entry.fix}", "markdown": entry.fix},
        "defaultConfiguration": {"level": _LEVELS.get(entry.severity, "warning")},
        "properties": {"tags": ["security", "secrets"]},
    }


def _result(finding: Exposure, rule_index: int, baselined: bool | None) -> dict[str, Any]:
    # A URI holds bytes, percent-encoded: a name that is not UTF-8 keeps its exact bytes.
    uri = quote(finding.path.encode("utf-8", "surrogateescape"))
    location: dict[str, Any] = {"artifactLocation": {"uri": uri}}
    if finding.line:
        location["region"] = {"startLine": finding.line, "startColumn": finding.column}
    what = f"{finding.provider} {finding.key_type}".strip()
    shown = f" ({finding.masked})" if finding.masked else ""
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "ruleIndex": rule_index,
        "level": _LEVELS.get(finding.severity, "warning"),
        "message": {"text": printable(f"{finding.title}: {what}{shown}. Fix: {finding.fix}")},
        "locations": [{"physicalLocation": location}],
        "partialFingerprints": {"keyturnSecret/v1": finding.fingerprint},
        "properties": {
            "provider": finding.provider_id,
            "keyType": finding.key_type,
            "masked": finding.masked,
            "confidence": finding.confidence,
            "commits": list(finding.commits),
            "verified": finding.verified or None,
        },
    }
    if baselined is not None:
        result["baselineState"] = "unchanged" if baselined else "new"
    return result


def to_sarif(
    findings: Iterable[Exposure], known: Iterable[Exposure] = (), with_baseline: bool = False
) -> dict[str, Any]:
    """The SARIF log: new ``findings``, then ``known`` ones marked unchanged under a baseline."""
    index = {code: i for i, code in enumerate(CODES)}
    results = [_result(f, index[f.code], False if with_baseline else None) for f in findings]
    results += [_result(f, index[f.code], True) for f in known]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "keyturn",
                        "version": __version__,
                        "rules": [_rule(code) for code in CODES],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
