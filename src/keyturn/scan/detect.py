"""Find secrets in one file's bytes: catalogued shapes, keyturn keys, then generic values.

The detectors run on bytes, not text: keys are ASCII, so a file need not be decoded (or be
valid UTF-8) to be scanned, and ``bytes.find`` keeps the prefilter at memory speed. Order
matters where matches overlap: a keyturn key whose checksum verifies first, then a
catalogued shape (in catalogue order, as ``providers.identify_type`` decides), then a
generic value.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from keyturn import keys
from keyturn._providers import identify_type
from keyturn.scan import codes, generic
from keyturn.scan.codes import CONFIDENCES, Confidence
from keyturn.scan.exposure import DEFAULT_SALT, Exposure, fingerprint, mask_value
from keyturn.scan.gates import (
    looks_patterned,
    password_stand_in,
    plausible_secret,
    random_enough,
    stand_in,
    structured_stand_in,
    typed_look,
)
from keyturn.scan.prefilter import keyword_lines, shapes_present
from keyturn.scan.rules import rule_matches, shapes_named
from keyturn.scan.shapes import (
    DECIDING_PREFIXES,
    KEYTURN_TAIL,
    LEFT_STOP,
    PREFIX_CHARS,
    near_miss_of_a_shape,
)

BASE62_CHARS = frozenset(keys.BASE62)

ALLOW = re.compile(rb"keyturn:[ \t]*allow")
_LONE_CR = re.compile(rb"\r(?!\n)")
# Said of a key of a provider's exact shape whose characters count up or repeat (``low``).
TYPED = ", exact shape but looks hand-typed"
IDENTIFIER = "its secret is usually beside it"
WEAK = ", a weak one"


@dataclass(frozen=True, slots=True)
class Hit:
    """A secret found at ``data[start:end]``: the only object that holds the secret."""

    code: str
    start: int
    end: int
    secret: str
    provider_id: str
    provider: str
    key_type: str
    confidence: Confidence
    masked: str
    fix: str


@dataclass(slots=True)
class Claims:
    """Spans of ``data`` a detector has reported, disjoint and sorted: the first detector to
    claim a span names it. A lookup is a binary search, so a file of many keys costs
    n log n, not n squared."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    def overlaps(self, start: int, end: int) -> bool:
        # Disjoint spans: only the last one starting before ``end`` can reach past ``start``.
        at = bisect.bisect_left(self.starts, end) - 1
        return at >= 0 and self.ends[at] > start

    def add(self, start: int, end: int) -> None:
        at = bisect.bisect_left(self.starts, start)
        self.starts.insert(at, start)
        self.ends.insert(at, end)


def _provider_hits(data: bytes, claimed: Claims) -> list[Hit]:
    spans = sorted(
        (m.start(), m.end(), shape.rank)
        for shape in shapes_present(data)
        for m in shape.regex.finditer(data)
    )
    hits = []
    for start, end, _rank in spans:
        if (start and data[start - 1] in LEFT_STOP) or claimed.overlaps(start, end):
            continue
        secret = data[start:end].decode("ascii")
        match = identify_type(secret)
        if match is None:
            continue
        provider, key_type = match
        if not key_type.secret or not key_type.checksum_ok(secret):
            continue  # an identifier meant to be seen, or a near-miss: not a key
        random_part = secret[len(key_type.prefix) :]
        if stand_in(secret, random_part):
            continue
        # A checksum's published test vectors count up too: a typed value that passes one
        # is a specification's example. Without a checksum, the exact shape is still said.
        typed = looks_patterned(random_part)
        if typed and key_type.checksum:
            continue
        claimed.add(start, end)
        checked = ", checksum valid" if key_type.checksum else TYPED if typed else ""
        confidence: Confidence = "certain" if key_type.checksum else "low" if typed else "high"
        where = f" at {provider.keys_url}" if provider.keys_url else ""
        hits.append(
            Hit(
                codes.LEAKED_PROVIDER_KEY, start, end, secret, provider.id, provider.name,
                key_type.name + checked, confidence,
                mask_value(secret, key_type.prefix),
                f"revoke or rotate this {provider.name} {key_type.name}{where}, then read "
                "the new one from the environment or a secrets manager",
            )
        )
    return hits


def _rule_hits(data: bytes, lowered: bytes, claimed: Claims) -> list[Hit]:
    """Secrets of the shapes in ``rules.toml`` that no catalogued shape has claimed."""
    hits = []
    for found in sorted(rule_matches(data, lowered), key=lambda m: (m.start, -m.end)):
        rule = found.rule
        if claimed.overlaps(found.start, found.end):
            continue
        secret = found.secret.decode("utf-8", "replace")
        # A catalogued shape (GitHub's checksummed tokens) is the catalogue's call: its
        # checksum, not a peer's looser pattern, decides whether it is a key.
        specific = rule.provider != "generic" and (not rule.near or bool(rule.pattern))
        kind, confidence = rule.kind, rule.confidence
        known = identify_type(secret) if rule.identifier else None
        if known is not None and not known[1].secret:
            # The user half of a key (Twilio's API key SID), which a peer reports: no secret
            # itself, but where it is written its secret usually is too.
            kind, confidence = f"{known[1].name}, an identifier: {IDENTIFIER}", "low"
        elif rule.password:
            if _shape_decided(secret) or password_stand_in(secret):
                continue
            if not plausible_secret(secret):
                kind, confidence = kind + WEAK, "low"
        elif _shape_decided(secret, specific) or structured_stand_in(secret):
            continue
        elif typed_look(secret):
            if not specific:
                continue  # a keyword near a typed value: nothing says it is a key
            kind, confidence = kind + TYPED, "low"
        claimed.add(found.start, found.end)
        generic_rule = rule.provider == "generic" or rule.near
        hits.append(
            Hit(
                codes.POSSIBLE_SECRET if generic_rule else codes.LEAKED_PROVIDER_KEY,
                found.start, found.end, secret, rule.id, rule.provider,
                f"{kind} (rule {rule.source})", confidence, mask_value(secret),
                f"revoke or rotate this {rule.provider} {rule.kind} where it was issued, then "
                "read the new one from the environment or a secrets manager",
            )
        )
    return hits


def _keyturn_prefix(data: bytes, underscore: int, tail: str) -> str | None:
    """The prefix left of ``data[underscore]`` whose checksum verifies, longest first."""
    start = underscore
    while start > 0 and underscore - start < keys.MAX_PREFIX_LENGTH and (
        data[start - 1] in PREFIX_CHARS
    ):
        start -= 1
    body, given = tail[: keys.BODY_LENGTH], tail[keys.BODY_LENGTH :]
    for at in range(start, underscore):
        prefix = data[at:underscore].decode("ascii")
        if keys.checksum(f"{prefix}_{body}") == given:
            return prefix
    return None


def _keyturn_hits(data: bytes, claimed: Claims) -> list[Hit]:
    hits = []
    for match in KEYTURN_TAIL.finditer(data):
        underscore = match.start()
        tail = data[underscore + 1 : match.end()].decode("ascii")
        prefix = _keyturn_prefix(data, underscore, tail)
        if prefix is None:
            continue
        start, end = underscore - len(prefix), match.end()
        if claimed.overlaps(start, end) or not random_enough(prefix, tail[: keys.BODY_LENGTH]):
            continue
        claimed.add(start, end)
        secret = f"{prefix}_{tail}"
        hits.append(
            Hit(
                codes.LEAKED_KEYTURN_KEY, start, end, secret, "keyturn", "keyturn",
                f"key (prefix {prefix}_), checksum valid", "certain", keys.mask(secret),
                "rotate it (`keyturn keys rotate ID`) and read the new key from the "
                "environment or a secrets manager",
            )
        )
    return hits


def _shape_decided(value: str, specific: bool = False) -> bool:
    """A value with a distinctive shape is the shape detectors' call: if they did not report
    it, it is an identifier, a placeholder or a near-miss (a wrong checksum or length).

    ``specific``: the value fits a provider's own exact shape (Lob's ``live_`` and 35
    characters), which says more than its likeness to a keyturn key off by a character.
    """
    if specific:
        # A provider's rule stands unless the catalogue's own shape holds the value (and its
        # checksum failed, or it is a stand-in): Postman's documented form is stricter than
        # the keys trufflehog finds, and GitHub's tokens may grow past their 40 characters.
        return identify_type(value) is not None or near_miss_of_a_shape(value)
    if value.startswith(DECIDING_PREFIXES) or identify_type(value) is not None:
        return True
    prefix, sep, tail = value.rpartition("_")  # a keyturn key with a character too many or few
    return (
        bool(sep)
        and abs(len(tail) - keys.BODY_LENGTH - keys.CHECKSUM_LENGTH) <= 3
        and PREFIX_CHARS.issuperset(prefix.encode())
        and BASE62_CHARS.issuperset(tail)
    )


def _generic_hits(data: bytes, lowered: bytes, claimed: Claims, config_like: bool,
                  notes: bool) -> list[Hit]:
    hits = []
    for line_start, line_end in keyword_lines(data, lowered):
        for assigned in generic.assignments(data, line_start, line_end, config_like, notes):
            if claimed.overlaps(assigned.start, assigned.end) or _shape_decided(assigned.value):
                continue
            if not generic.value_fits_name(assigned.name, assigned.value):
                continue
            shaped = shapes_named(assigned.name)
            if shaped and not any(r.regex.fullmatch(assigned.value.encode()) for r in shaped):
                continue  # a value not of the named provider's shape: a near-miss
            provider, key_type = assigned.provider, assigned.key_type
            confidence: Confidence
            if key_type is not None and provider is not None:
                if not (key_type.secret and random_enough(assigned.value, assigned.value)):
                    continue
                code, confidence = codes.LEAKED_PROVIDER_KEY, "high"
                pid, pname, kind = provider.id, provider.name, f"{key_type.name} in {assigned.name}"
            elif plausible_secret(assigned.value):
                code, confidence = codes.POSSIBLE_SECRET, "medium"
                pid = provider.id if provider else "generic"
                pname = provider.name if provider else "unknown"
                kind = f"value of {assigned.name}"
            else:
                continue
            claimed.add(assigned.start, assigned.end)
            hits.append(
                Hit(
                    code, assigned.start, assigned.end, assigned.value, pid, pname, kind,
                    confidence, mask_value(assigned.value),
                    "if this is a real credential, rotate it and read it from the environment "
                    "or a secrets manager; if not, mark the line `keyturn: allow`",
                )
            )
    return hits


def find_hits(data: bytes, config_like: bool = False, notes: bool = False) -> list[Hit]:
    """Every secret in ``data``, in file order (``config_like``, ``notes``: the kind of
    file, see generic.config_like and generic.notes_like)."""
    claimed = Claims()
    # A verified keyturn checksum beats a provider's bare shape (`sk_live_` is a legal
    # keyturn prefix); a GitHub token fails keyturn's checksum and falls through.
    hits = _keyturn_hits(data, claimed)
    hits += _provider_hits(data, claimed)
    lowered = data.lower()
    hits += _rule_hits(data, lowered, claimed)
    hits += _generic_hits(data, lowered, claimed, config_like, notes)
    return sorted(hits, key=lambda h: h.start)


# (provider id, secret) -> the provider's verdict on it, or None where no one can be asked.
Verifier = Callable[[str, str], str | None]


def scan_bytes(
    data: bytes, path: str, *, config_like: bool = False, notes: bool = False,
    salt: str = DEFAULT_SALT,
    verifier: Verifier | None = None,
    min_confidence: Confidence = "low",
) -> list[Exposure]:
    """Findings for one file's content; lines marked ``keyturn: allow`` are skipped.
    With ``verifier`` (``--verify``), each finding carries its provider's verdict.
    A finding less sure than ``min_confidence`` is dropped before the verifier sees it: a
    key the scan will not report is sent to no one.

    A line ends at LF, CRLF or a lone CR (old Mac files): a lone CR becomes LF first, which
    keeps every offset, so ``keyturn: allow`` covers its own line whatever the line ends.
    Lines and columns are counted forward from the previous finding, once per file.
    """
    if b"\r" in data:
        data = _LONE_CR.sub(b"\n", data)
    findings = []
    line, counted, line_start, line_end, allowed = 1, 0, 0, -1, False
    at, column = 0, 1
    floor = CONFIDENCES.index(min_confidence)
    for hit in find_hits(data, config_like, notes):
        if CONFIDENCES.index(hit.confidence) > floor:
            continue  # lines and columns count on from the last finding kept
        if hit.start > line_end:  # a new line: count the breaks since the last hit
            breaks = data.count(b"\n", counted, hit.start)
            if breaks:
                line += breaks
                line_start = data.rfind(b"\n", counted, hit.start) + 1
            counted = hit.start
            line_end = data.find(b"\n", hit.start)
            line_end = len(data) if line_end == -1 else line_end
            allowed = ALLOW.search(data, line_start, line_end) is not None
            at, column = line_start, 1
        # Hits start on ASCII bytes, so each piece between them decodes on its own.
        column += len(data[at : hit.start].decode("utf-8", "replace"))
        at = hit.start
        if allowed:
            continue
        findings.append(exposure(hit, path, line, column, salt, verifier))
    return findings


def exposure(
    hit: Hit, path: str, line: int, column: int, salt: str, verifier: Verifier | None,
    commits: tuple[str, ...] = (),
) -> Exposure:
    """What is reported of ``hit``: never its secret (with ``verifier``, the provider's
    verdict on it)."""
    verdict = verifier(hit.provider_id, hit.secret) if verifier else None
    return Exposure(
        hit.code, path, line, column, hit.provider_id, hit.provider, hit.key_type,
        hit.masked, hit.confidence, fingerprint(hit.provider_id, hit.secret, salt),
        hit.fix, commits, verdict or "",
    )
