"""Scan results for people (text, coloured on a terminal) and for programs (JSON).

A line per finding, ``path:line:column``, so editors and terminals turn it into a link;
under it what the key is, its mask and the fix. The JSON shape is documented in
``docs/scan.md``; neither form ever holds a secret, only its mask and fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyturn.scan.finding import Finding
from keyturn.scan.scanner import Result

STYLES = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def where(finding: Finding) -> str:
    if not finding.line:
        return finding.path
    return f"{finding.path}:{finding.line}:{finding.column}"


def finding_lines(finding: Finding) -> list[tuple[str, str]]:
    """(text, rich style) lines for one finding."""
    what = f"{finding.provider} {finding.key_type}" if finding.line else finding.title
    masked = f"  {finding.masked}" if finding.masked else ""
    lines = [
        (f"{where(finding)}  {finding.code}", STYLES.get(finding.severity, "")),
        (f"  {what}{masked}  [{finding.confidence}]", ""),
    ]
    if finding.commits:
        shown = ", ".join(c[:12] for c in finding.commits[:5])
        more = f" and {len(finding.commits) - 5} more" if len(finding.commits) > 5 else ""
        lines.append((f"  added in commit {shown}{more}", "dim"))
    lines.append((f"  fix: {finding.fix}", "dim"))
    return lines


def summary(result: Result, new: Sequence[Finding], known: int) -> str:
    size = f"{result.bytes / 1e6:.1f} MB" if result.bytes >= 100_000 else f"{result.bytes} bytes"
    scanned = f"{result.files} file{'s' if result.files != 1 else ''} ({size})"
    skipped = []
    if result.binary:
        skipped.append(f"{result.binary} binary")
    if result.too_large:
        skipped.append(f"{result.too_large} too large")
    tail = f", skipped {' and '.join(skipped)}" if skipped else ""
    baseline = f"; {known} known from the baseline" if known else ""
    if not new:
        return f"no new secrets in {scanned}{tail}{baseline}"
    errors = sum(1 for f in new if f.severity == "error")
    counts = f"{errors} error{'s' if errors != 1 else ''}, {len(new) - errors} warning" + (
        "s" if len(new) - errors != 1 else ""
    )
    return f"{len(new)} finding{'s' if len(new) != 1 else ''} ({counts}) in {scanned}{tail}" + (
        baseline
    )


def to_json(result: Result, new: Sequence[Finding], known: int, mode: str) -> dict[str, Any]:
    return {
        "mode": mode,
        "ok": not new,
        "findings": [f.as_dict() for f in new],
        "baselined": known,
        "files": result.files,
        "bytes": result.bytes,
        "skipped": {"binary": result.binary, "too_large": result.too_large},
    }
