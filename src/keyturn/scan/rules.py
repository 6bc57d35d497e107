"""The rules of ``rules.toml`` (peers' published secret shapes, each cited), and the one
engine that runs them.

Hundreds of regular expressions cannot each read every file: Python's ``re`` would crawl.
Every rule names literal keywords, one of which is inside every match (``akia`` for an AWS
key id, ``adafruit`` for a keyword-then-value rule). One Aho-Corasick pass over the
lower-cased file finds every keyword at once (ahocorasick-rs, in Rust, at hundreds of MB/s);
a rule's pattern then runs only in a window around its keywords' occurrences, as wide as
the longest match the pattern can make. A file holding no keyword costs that one pass.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from ahocorasick_rs import BytesAhoCorasick, Implementation

from keyturn.scan.codes import Confidence
from keyturn.scan.gates import class_changes, plausible_secret, structured_secret_ok

# A window reaches this far from a keyword at most: a PEM block (-----BEGIN ...) of an
# 8192-bit RSA key fits; any other pattern's value sits within MAX_REACH of its keyword
# (an open-ended `[_\s.-]*` between them is not an invitation to read kilobytes).
MAX_WINDOW = 8192
MAX_REACH = 512
# A pattern that names a line break ([\s\S], \n, (?s)) may span lines; any other stays on
# the keyword's line, and its window is cut there (and at LINE_WINDOW either side).
_SPANS_LINES = re.compile(r"\\[nr]|\\s\\S|\(\?[a-z]*s")
LINE_WINDOW = 1024


@dataclass(frozen=True, slots=True, eq=False)  # compared and hashed by identity
class Rule:
    """One secret shape of ``rules.toml``."""

    id: str
    provider: str
    kind: str
    source: str
    confidence: Confidence
    keywords: tuple[bytes, ...]
    pattern: str
    anchored: bool = True
    secret_group: int = 0
    min_entropy: float = 0.0
    allow: tuple[str, ...] = ()
    allow_match: tuple[str, ...] = ()
    allow_line: tuple[str, ...] = ()
    stopwords: tuple[bytes, ...] = ()
    report: bool = True  # False: a helper other rules require nearby (a client id)
    requires: tuple[str, ...] = ()  # rule ids that must match within `within` lines too
    within: int = 0
    check: str = ""  # a format check of CHECKS the secret must pass
    password: bool = False  # a person's choice: weak is reported (low), a stand-in is not
    identifier: bool = False  # reports the user half of a key the catalogue calls public (low)
    multiline: bool = False  # the pattern names a line break: its window is not one line
    near: bool = False  # a provider's name near a random value ([near]), not a pattern
    companion: str = ""  # [near]: the other part of the credential, needed within 5 lines

    # Compiled on first use, once per process: a scan compiles only the rules whose
    # keywords it meets, so loading 500 rules costs a hook nothing.
    @property
    def regex(self) -> re.Pattern[bytes]:
        return compiled(self.pattern)

    @property
    def width(self) -> int:
        """The longest match the pattern can make, capped at ``MAX_WINDOW``."""
        return _width(self.pattern)

    def secret_span(self, match: re.Match[bytes]) -> tuple[int, int]:
        """Where the secret is in a match: its group, else the first non-empty group."""
        if self.secret_group:
            return match.span(self.secret_group)
        for index in range(1, (match.re.groups or 0) + 1):
            start, end = match.span(index)
            if end > start:
                return start, end
        return match.span()


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """A rule's secret at ``data[start:end]`` (the match runs from ``match_start``)."""

    rule: Rule
    start: int
    end: int
    secret: bytes


@functools.cache
def compiled(source: str) -> re.Pattern[bytes]:
    return re.compile(source.encode())


@functools.cache
def required_literals(source: str) -> tuple[bytes, ...]:
    """Literals every match of ``source`` holds, made of characters case cannot change
    (``==`` closing an Azure storage key, the ``@`` of ``user:password@``): a window without
    one of them is skipped with a ``bytes.find`` instead of a regex search."""
    runs: list[bytes] = []

    def walk(parsed: Any) -> None:
        run = bytearray()
        for op, arg in parsed:
            if op is sre_constants.LITERAL and not chr(arg).isalpha():
                run.append(arg)
                continue
            if run:
                runs.append(bytes(run))
            run = bytearray()
            if op is sre_constants.SUBPATTERN:
                walk(arg[-1])  # a group is matched whole: its literals are required too
        if run:
            runs.append(bytes(run))

    walk(sre_parse.parse(source))
    return tuple(sorted(set(runs), key=len, reverse=True))


@functools.cache
def _width(source: str) -> int:
    cap = MAX_WINDOW if "-----BEGIN" in source else MAX_REACH
    return min(int(sre_parse.parse(source).getwidth()[1]), cap)


def _any(sources: Sequence[str], value: bytes) -> bool:
    return any(compiled(source).search(value) for source in sources)


def _rule(entry: dict[str, Any]) -> Rule:
    pattern = entry["pattern"]
    return Rule(
        id=entry["id"],
        provider=entry["provider"],
        kind=entry["kind"],
        source=entry["source"],
        confidence=entry["confidence"],
        keywords=tuple(k.encode() for k in entry["keywords"]),
        pattern=pattern,
        anchored=entry.get("anchored", True),
        secret_group=entry.get("secret_group", 0),
        min_entropy=entry.get("min_entropy", 0.0),
        allow=tuple(entry.get("allow", ())),
        allow_match=tuple(entry.get("allow_match", ())),
        allow_line=tuple(entry.get("allow_line", ())),
        stopwords=tuple(s.lower().encode() for s in entry.get("stopwords", ())),
        report=entry.get("report", True),
        requires=tuple(entry.get("requires", ())),
        within=entry.get("within", 0),
        check=entry.get("check", ""),
        password=entry.get("password", False),
        identifier=entry.get("identifier", False),
        multiline=_SPANS_LINES.search(pattern) is not None,
    )


@dataclass(frozen=True, slots=True)
class Near:
    """``[near]``: a provider's name, then within ``reach`` bytes a random-looking value."""

    reach: int
    min_length: int
    max_length: int
    min_entropy: float
    token: re.Pattern[bytes]


_KEY_CHARS = rb"A-Za-z0-9_+/.~\-"
# A value glued to one of these is part of something else (a URL query `?k=`, a `%`
# escape, `user@host`, a template `${`, `*`-masked or `!`-suffixed text), not a whole key.
_GLUE = rb"?%@#$!^*&\\"


def _near_rules(data: dict[str, Any], source: str) -> tuple[Near, tuple[Rule, ...]]:
    near = Near(
        data["reach"], data["min_length"], data["max_length"], data["min_entropy"],
        # `=` only as base64 padding at the end: `NAME=value` starts the value after it.
        re.compile(rb"(?<![%s%s])[%s]{%d,%d}={0,2}(?![%s=%s])" % (
            _KEY_CHARS, _GLUE, _KEY_CHARS, data["min_length"], data["max_length"], _KEY_CHARS,
            _GLUE)),
    )
    unknown = {k for entry in data["providers"] for k in entry} - _NEAR_FIELDS
    if unknown:
        raise ValueError(f"rules: unknown [near] provider fields {sorted(unknown)}")
    rules = tuple(
        Rule(
            id=f"near-{entry['name'].lower()}", provider=entry["name"], kind="value near its name",
            source=source, confidence="medium",
            keywords=tuple(k.encode() for k in entry["keywords"]),
            pattern=_bounded(entry["shape"]) if "shape" in entry else "", near=True,
            companion=_bounded(entry["companion"]) if "companion" in entry else "",
        )
        for entry in data["providers"]
    )
    return near, rules


_NEAR_FIELDS = frozenset({"name", "keywords", "shape", "companion"})
COMPANION_LINES = 5


def _bounded(shape: str) -> str:
    """A provider's value shape as a whole value: not a piece of a longer run of key
    characters (trufflehog's ``\\b...\\b``, with ``+ / - =`` counted as key characters too:
    a base64 key one character too long is not a key of the right length)."""
    return rf"(?<![A-Za-z0-9_+/\-])(?:{shape})(?![A-Za-z0-9_+/=\-])"


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    allow: tuple[str, ...]
    stopwords: tuple[bytes, ...]
    keywords: tuple[bytes, ...]
    # For the keyword of each index: rules searched around it, and rules searched file-wide.
    windowed: tuple[tuple[Rule, ...], ...]
    whole_file: tuple[tuple[Rule, ...], ...]
    near_by: tuple[tuple[Rule, ...], ...]  # [near] providers named by each keyword
    # The same for helpers (`report = false`), searched only in a file where a rule that
    # requires one found something: most keywords of helpers (`https://`, `client`) are
    # common, and their spans would cost every file a step per occurrence.
    helpers: tuple[tuple[tuple[Rule, ...], ...], tuple[tuple[Rule, ...], ...]]
    near: Near | None
    automaton: BytesAhoCorasick
    verify: dict[str, str]  # provider id -> the URL `--verify` asks with a found key


_SECTIONS = frozenset({"allow", "rule", "near", "verify"})
_RULE_FIELDS = frozenset({
    "id", "provider", "kind", "source", "confidence", "keywords", "pattern", "anchored",
    "secret_group", "min_entropy", "allow", "allow_match", "allow_line", "stopwords", "report",
    "requires", "within", "check", "password", "identifier",
})


def load(text: str) -> RuleSet:
    """The rule set in ``text``; a misspelt field or section is an error, not a silent no-op."""
    data = tomllib.loads(text)
    unknown = set(data) - _SECTIONS | {k for e in data["rule"] for k in e} - _RULE_FIELDS
    if unknown:
        raise ValueError(f"rules: unknown fields or sections {sorted(unknown)}")
    rules = tuple(_rule(entry) for entry in data["rule"])
    near, near_rules = _near_rules(data["near"], data["near"]["source"]) if "near" in data else (
        None, ())
    keywords = sorted({k for rule in rules + near_rules for k in rule.keywords})
    index = {k: i for i, k in enumerate(keywords)}
    windowed: list[list[Rule]] = [[] for _ in keywords]
    whole_file: list[list[Rule]] = [[] for _ in keywords]
    helper_windowed: list[list[Rule]] = [[] for _ in keywords]
    helper_whole_file: list[list[Rule]] = [[] for _ in keywords]
    near_by: list[list[Rule]] = [[] for _ in keywords]
    for rule in rules:
        tables = (windowed, whole_file) if rule.report else (helper_windowed, helper_whole_file)
        for keyword in rule.keywords:
            tables[0 if rule.anchored else 1][index[keyword]].append(rule)
    for rule in near_rules:
        for keyword in rule.keywords:
            near_by[index[keyword]].append(rule)
    allow = data.get("allow", {})
    return RuleSet(
        rules, tuple(allow.get("secret", ())),
        tuple(s.lower().encode() for s in allow.get("stopwords", ())), tuple(keywords),
        tuple(map(tuple, windowed)), tuple(map(tuple, whole_file)), tuple(map(tuple, near_by)),
        (tuple(map(tuple, helper_windowed)), tuple(map(tuple, helper_whole_file))),
        near, BytesAhoCorasick(keywords, implementation=Implementation.DFA),  # fastest search
        dict(data.get("verify", {})),
    )


def _load_default() -> RuleSet:
    return load(resources.files(__package__).joinpath("rules.toml").read_text("utf-8"))


RULES: RuleSet = _load_default()


def entropy(value: bytes) -> float:
    """Shannon bits per character of ``value``'s own character distribution."""
    size = len(value)
    return -sum(n / size * math.log2(n / size) for n in Counter(value).values()) if size else 0.0


def _merged(spans: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    spans.sort()
    start, end = spans[0]
    for s, e in spans[1:]:
        if s > end:
            yield start, end
            start = s
        end = max(end, e)
    yield start, end


def _window(rule: Rule, data: bytes, start: int, end: int) -> tuple[int, int]:
    """Where a match of ``rule`` holding ``data[start:end]`` can be, one byte to spare on
    each side (the pattern may look at its neighbours: ``\\b``, ``[^\\w]``)."""
    if rule.multiline:
        return max(0, start - rule.width - 1), min(len(data), end + rule.width + 1)
    reach = min(rule.width, LINE_WINDOW) + 1
    left = max(data.rfind(b"\n", max(0, start - reach), start), start - reach, 0)
    right = data.find(b"\n", end, end + reach)
    return left, min(len(data), end + reach) if right == -1 else right


def _covered(rule: Rule, data: bytes, last_end: int, start: int, end: int) -> bool:
    """Whether the last window already holds every match around this keyword: the same
    line, for a one-line pattern; the full reach, for one that spans lines."""
    if rule.multiline:
        return last_end >= end + rule.width
    return start < last_end and data[last_end : last_end + 1] == b"\n"


def _searches(ruleset: RuleSet, data: bytes, lowered: bytes,
              helpers: bool = False) -> dict[Rule, list[tuple[int, int]]]:
    """For each rule with a keyword in the file, the spans of the file to search (for the
    helpers, with ``helpers``).

    The hot loop of a scan: one step per keyword occurrence. A one-line rule's span is the
    keyword's line, computed once per line and added once per rule.
    """
    spans: dict[Rule, list[tuple[int, int]]] = {}
    size = len(data)
    line_start, line_end = -1, -1
    windowed, whole_file = ruleset.helpers if helpers else (ruleset.windowed, ruleset.whole_file)
    near_by = () if helpers else ruleset.near_by
    for index, start, end in ruleset.automaton.find_matches_as_indexes(lowered, overlapping=True):
        if near_by and near_by[index] and _starts_a_word(data, start):
            for rule in near_by[index]:
                spans.setdefault(rule, []).append((end, end))  # where the name ends
        for rule in whole_file[index]:
            spans[rule] = [(0, size)]
        rules = windowed[index]
        if not rules:
            continue
        if start >= line_end:  # a new line
            line_start = data.rfind(b"\n", 0, start) + 1
            line_end = data.find(b"\n", end)
            line_end = size if line_end == -1 else line_end
        for rule in rules:
            known = spans.get(rule)
            if rule.multiline or line_end - line_start > LINE_WINDOW:
                if known is None or not _covered(rule, data, known[-1][1], start, end):
                    spans.setdefault(rule, []).append(_window(rule, data, start, end))
            elif known is None:
                spans[rule] = [(line_start, line_end)]
            elif known[-1][0] != line_start:
                known.append((line_start, line_end))
    return spans


def _starts_a_word(data: bytes, at: int) -> bool:
    """Whether a provider's name found at ``data[at]`` begins a word (`okta_token`,
    `myOktaToken`, `OKTA`), not the inside of one (`rookTable`, `MAILBOX`)."""
    if at == 0 or not data[at - 1 : at].isalpha():
        return True
    return data[at - 1 : at].islower() and data[at : at + 1].isupper()


def _line(data: bytes, start: int, end: int) -> bytes:
    return data[data.rfind(b"\n", 0, start) + 1 : (data.find(b"\n", end) + 1 or len(data) + 1) - 1]


def _refused(ruleset: RuleSet, rule: Rule, data: bytes, match: re.Match[bytes],
             secret: bytes) -> bool:
    """The rule's and the shared filters: placeholders, low entropy, known non-secrets."""
    lowered = secret.lower()
    return (
        entropy(secret) < rule.min_entropy
        or (bool(rule.check) and not CHECKS[rule.check](secret))
        or any(word in lowered for word in rule.stopwords + ruleset.stopwords)
        or _any(rule.allow + ruleset.allow, secret)
        or _any(rule.allow_match, match[0])
        or (bool(rule.allow_line) and _any(rule.allow_line, _line(data, *match.span())))
    )


def jwt_header_decodes(secret: bytes) -> bool:
    """A JWT's first segment is base64url JSON naming its algorithm (RFC 7519, 7515): three
    dot-separated random runs that do not decode are some other string."""
    head = secret.split(b".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + b"=" * (-len(head) % 4)))
    except (ValueError, binascii.Error):
        return False
    return isinstance(header, dict) and ("alg" in header or "typ" in header)


def basic_auth_decodes(secret: bytes) -> bool:
    """HTTP Basic credentials and registry `auth` fields are base64 of ``user:password``
    (RFC 7617): a value that does not decode to printable text with a user and a password
    on either side of a colon is some other string."""
    try:
        text = base64.b64decode(secret + b"=" * (-len(secret) % 4), validate=True).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return False
    user, sep, password = text.partition(":")
    return bool(sep and user and password and text.isprintable())


# Published format checks a rule can name (`check = "jwt"`): offline, no network.
CHECKS: dict[str, Callable[[bytes], bool]] = {
    "jwt": jwt_header_decodes, "basic_auth": basic_auth_decodes,
}


def _near(data: bytes, at: int, others: list[RuleMatch], lines: int) -> bool:
    return any(data.count(b"\n", min(at, o.start), max(at, o.start)) <= lines for o in others)


def _matches(ruleset: RuleSet, rule: Rule, data: bytes,
             spans: list[tuple[int, int]]) -> list[RuleMatch]:
    found = []
    seen: set[int] = set()
    finditer = rule.regex.finditer
    required = required_literals(rule.pattern)
    for start, end in _merged(spans):
        if any(data.find(literal, start, end) == -1 for literal in required):
            continue
        for match in finditer(data, start, end):
            s, e = rule.secret_span(match)
            if s in seen or e <= s:
                continue
            seen.add(s)
            secret = data[s:e]
            if not _refused(ruleset, rule, data, match, secret):
                found.append(RuleMatch(rule, s, e, secret))
    return found


# `self._state.max_frame_size`, `dec_loop_generic_32`: words joined by `.`, `_` or `-` name
# something in code; a drawn key does not hold two lower-case words.
_SEPARATORS = re.compile(rb"[._-]+")
_WORD = re.compile(rb"[a-z]{3,}[0-9]*")


def _identifier(value: bytes) -> bool:
    return sum(1 for part in _SEPARATORS.split(value) if _WORD.fullmatch(part)) >= 2


def shaped_value_ok(value: bytes) -> bool:
    """A value of a provider's documented shape that a generator, not a person, wrote.

    The shape already pins the charset and length, so the gates are lighter than for a value
    of any shape: no identifier (two words joined), some entropy, and, for a value without
    a digit, the upper/lower-case switches of a random draw (``PSIYbVgf...``), not camelCase.
    """
    text = value.decode("ascii", "replace")
    if entropy(value) < 2.5 or _identifier(value) or not structured_secret_ok(text):
        return False
    if any(c.isdigit() for c in text):
        return True
    return text.lower() != text and text.upper() != text and class_changes(text) >= 0.3


def _shaped_near_matches(ruleset: RuleSet, rule: Rule, data: bytes,
                         spans: list[tuple[int, int]]) -> list[RuleMatch]:
    """Each mention's first value of the provider's shape within reach (trufflehog's
    ``PrefixRegex``: the name, then up to 40 bytes, then the key)."""
    near = ruleset.near
    assert near is not None
    found = []
    last = -1
    finditer = rule.regex.finditer
    for after, _ in spans:
        if after <= last:
            continue
        for match in finditer(data, after, after + near.reach + rule.width):
            if match.start() > after + near.reach:
                break
            value = match[0]
            if shaped_value_ok(value) and _accompanied(rule, data, match.start(), match.end()):
                last = match.end()
                found.append(RuleMatch(rule, match.start(), match.end(), value))
                break
    return found


def _accompanied(rule: Rule, data: bytes, start: int, end: int) -> bool:
    """Whether the credential's other part (Duo's integration key beside its secret key)
    is within COMPANION_LINES lines of the value: one part alone authenticates nothing."""
    if not rule.companion:
        return True
    low, high = start, end
    for _ in range(COMPANION_LINES):
        low = max(data.rfind(b"\n", 0, low), 0)
        found = data.find(b"\n", high + 1)
        high = len(data) if found == -1 else found
    return any(
        m.end() <= start or m.start() >= end
        for m in compiled(rule.companion).finditer(data, low, high)
    )


def _near_matches(ruleset: RuleSet, rule: Rule, data: bytes,
                  spans: list[tuple[int, int]]) -> list[RuleMatch]:
    """The first random-looking value within reach after each mention of the provider."""
    near = ruleset.near
    assert near is not None
    if rule.pattern:
        return _shaped_near_matches(ruleset, rule, data, spans)
    found = []
    last = -1
    for after, _ in spans:
        match = near.token.search(data, after, after + near.reach + near.max_length + 1)
        if match is None or match.start() > after + near.reach or match.start() <= last:
            continue
        value = match[0].rstrip(b".")
        if (entropy(value) >= near.min_entropy and not _identifier(value)
                and plausible_secret(value.decode("ascii"))):
            last = match.start()
            found.append(RuleMatch(rule, match.start(), match.start() + len(value), value))
    return found


def shapes_named(name: str, ruleset: RuleSet = RULES) -> list[Rule]:
    """The [near] providers with a documented shape that ``name`` (``IP2LOCATION_API_KEY``,
    ``satismeterToken``) starts a word with: their shape, not the generic gates, decides
    whether a value assigned to it is their key."""
    lowered = name.lower().encode()
    found = ruleset.automaton.find_matches_as_indexes(lowered, overlapping=True)
    return [
        rule
        for index, start, _end in found
        if start == 0 or not lowered[start - 1 : start].isalpha()
        for rule in ruleset.near_by[index]
        if rule.pattern
    ]


def rule_matches(data: bytes, lowered: bytes, ruleset: RuleSet = RULES) -> list[RuleMatch]:
    """Every reported rule's secrets in ``data`` (``lowered`` is ``data.lower()``).

    Helpers (``report = false``) run only for a rule that found something and needs them.
    """
    searches = _searches(ruleset, data, lowered)
    by_id = {rule.id: rule for rule in searches}
    found: list[RuleMatch] = []
    helpers: dict[str, list[RuleMatch]] = {}
    helper_spans: dict[Rule, list[tuple[int, int]]] | None = None  # searched when needed
    for rule, spans in searches.items():
        if rule.near:
            found += _near_matches(ruleset, rule, data, spans)
            continue
        matches = _matches(ruleset, rule, data, spans)
        for needed in rule.requires if matches else ():
            if needed in helpers:
                continue
            if needed not in by_id and helper_spans is None:
                helper_spans = _searches(ruleset, data, lowered, helpers=True)
                by_id |= {helper.id: helper for helper in helper_spans}
            helper = by_id.get(needed)
            where = searches.get(helper) or (helper_spans or {}).get(helper) if helper else None
            helpers[needed] = _matches(ruleset, helper, data, where) if helper and where else []
        found += [
            m for m in matches
            if all(_near(data, m.start, helpers[n], rule.within) for n in rule.requires)
        ]
    return found
