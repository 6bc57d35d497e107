"""Scan results for people (text, coloured on a terminal) and for programs (JSON).

A line per finding, ``path:line:column``, so editors and terminals turn it into a link;
under it what the key is, its mask and the fix. The JSON shape is documented in
``docs/scan.md``; neither form ever holds a secret, only its mask and fingerprint.

File names come from the scanned tree, which may be hostile: in text they are shown with
control characters and undecodable bytes escaped (``\\x1b``, ``\\xff``), so a name cannot
move the cursor, recolour the terminal or crash the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyturn._printable import printable
from keyturn.scan.exposure import Exposure
from keyturn.scan.scanner import Result

STYLES = {"error": "bold red", "warning": "yellow", "info": "cyan"}

def where(finding: Exposure) -> str:
    path = printable(finding.path)
    if not finding.line:
        return path
    return f"{path}:{finding.line}:{finding.column}"


def finding_lines(finding: Exposure) -> list[tuple[str, str]]:
    """(text, rich style) lines for one finding."""
    what = f"{finding.provider} {finding.key_type}" if finding.line else finding.title
    masked = f"  {finding.masked}" if finding.masked else ""
    verdict = f"; {finding.verified}" if finding.verified else ""
    lines = [
        (f"{where(finding)}  {finding.code}", STYLES.get(finding.severity, "")),
        (printable(f"  {what}{masked}  [{finding.confidence}{verdict}]"), ""),
    ]
    if finding.commits:
        shown = ", ".join(c[:12] for c in finding.commits[:5])
        more = f" and {len(finding.commits) - 5} more" if len(finding.commits) > 5 else ""
        lines.append((f"  added in commit {shown}{more}", "dim"))
    lines.append((printable(f"  fix: {finding.fix}"), "dim"))
    return lines


def unreadable_lines(result: Result) -> list[str]:
    """One line per file that could not be read: the scan did not see it."""
    return [f"{printable(path)}  could not be read: {why}" for path, why in result.unreadable]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def summary(result: Result, new: Sequence[Exposure], known: int) -> str:
    size = f"{result.bytes / 1e6:.1f} MB" if result.bytes >= 100_000 else f"{result.bytes} bytes"
    scanned = f"{_plural(result.files, 'file')} ({size})"
    skipped = [
        f"{count} {what}" for count, what in (
            (result.binary, "binary"), (result.too_large, "too large"),
            (result.special, "special (FIFO, socket or device)"),
        ) if count
    ]
    tail = f", skipped {' and '.join(skipped)}" if skipped else ""
    baseline = f"; {known} known from the baseline" if known else ""
    unread = (
        f"; {_plural(len(result.unreadable), 'file')} could not be read (not scanned)"
        if result.unreadable else ""
    )
    if not new:
        return f"no new secrets in {scanned}{tail}{baseline}{unread}"
    errors = sum(1 for f in new if f.severity == "error")
    counts = f"{_plural(errors, 'error')}, {_plural(len(new) - errors, 'warning')}"
    return f"{_plural(len(new), 'finding')} ({counts}) in {scanned}{tail}{baseline}{unread}"


def to_json(result: Result, new: Sequence[Exposure], known: int, mode: str) -> dict[str, Any]:
    return {
        "mode": mode,
        "ok": not new and not result.unreadable,
        "findings": [f.as_dict() for f in new],
        "baselined": known,
        "files": result.files,
        "bytes": result.bytes,
        "skipped": {
            "binary": result.binary, "too_large": result.too_large, "special": result.special,
            "unreadable": len(result.unreadable),
        },
        "unreadable": [{"path": path, "error": why} for path, why in result.unreadable],
    }
