"""Secrets in file names: found like secrets in content, and never shown.

A folder or file named after a key (``cfg-kt_live_.../``, a cache file named by its token)
lands in git's tree objects as content does, and a report that prints the name prints the
key. So each name is run through the same detectors as content (each secret in it is a
finding about the whole file, line 0), and every name a result shows, in a finding, its fix
or the list of unreadable files, has its secrets replaced by their masks (``masked``).

Every name is read by the detectors, with no shortcut in front: some secrets are short
(Slack's legacy ``xoxa-`` tokens) or look like words (a ``sk_live_`` key of letters alone),
so a test of "looks random" lost findings; reading every name costs a whole tree's names
about 10 µs each, next to which reading the files' contents is everything.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from keyturn.scan.codes import CONFIDENCES, Confidence
from keyturn.scan.detect import Hit, Verifier, exposure, find_hits
from keyturn.scan.exposure import Exposure

if TYPE_CHECKING:
    from keyturn.scan.scanner import Result

def _hits(path: str) -> list[Hit]:
    return find_hits(path.encode("utf-8", "surrogateescape"))


def masked(path: str) -> str:
    """``path`` with every secret in it replaced by its mask."""
    hits = _hits(path)
    if not hits:
        return path
    raw = path.encode("utf-8", "surrogateescape")
    pieces, at = [], 0
    for hit in hits:
        pieces += [raw[at : hit.start], hit.masked.encode()]
        at = hit.end
    pieces.append(raw[at:])
    return b"".join(pieces).decode("utf-8", "surrogateescape")


def name_findings(
    path: str,
    salt: str,
    min_confidence: Confidence,
    verifier: Verifier | None = None,
    commits: tuple[str, ...] = (),
) -> list[Exposure]:
    """A finding for each secret in ``path`` at least ``min_confidence`` sure (its path
    is still the name as given: ``mask_result`` masks every name at the end)."""
    floor = CONFIDENCES.index(min_confidence)
    return [
        exposure(hit, path, 0, 0, salt, verifier, commits)
        for hit in _hits(path)
        if CONFIDENCES.index(hit.confidence) <= floor
    ]


def mask_result(result: Result) -> Result:
    """``result`` with every name it shows masked (findings' paths and fixes, unreadable
    files)."""
    shown: dict[str, str] = {}

    def name(path: str) -> str:
        if path not in shown:
            shown[path] = masked(path)
        return shown[path]

    findings = []
    for found in result.findings:
        path = name(found.path)
        if path != found.path:
            found = replace(found, path=path, fix=found.fix.replace(found.path, path))
        findings.append(found)
    result.findings = findings
    result.unreadable = [(name(path), why) for path, why in result.unreadable]
    return result
