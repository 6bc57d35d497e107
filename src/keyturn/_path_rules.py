"""Which requests need a key and which scopes: the one path-rule engine of every face.

``keyturn serve``'s ``/auth`` (rules from the settings) and the framework integrations
(``open_paths`` and ``scopes``) both decide here, with one meaning:

- **A rule names a path, optionally after a method** (``"/admin"``, ``"POST /items"``). It
  covers that path and everything below it, segment by segment: ``/admin`` covers
  ``/admin``, ``/admin/`` and ``/admin/users``, not ``/administrators``. A trailing slash in a
  rule changes nothing. ``"= /docs"`` (as in nginx) covers exactly ``/docs`` (and ``/docs/``).
- **The most specific rule wins**: an exact rule, else the longest path; at equal length a
  rule naming the method beats one that does not. A ``GET`` rule covers ``HEAD`` too, since
  every framework answers ``HEAD`` with the ``GET`` handler.
- **A path no rule covers** needs a key and no particular scope.

The path a proxy forwards, or a framework hands a middleware, is not the only path the
request can end up at: an upstream may percent-decode it (once, or twice; ``%u0061`` and
overlong UTF-8 too), normalise Unicode compatibility forms (``／``), resolve ``.`` and
``..``, merge ``//``, read ``\\`` as ``/``, drop ``;parameters``, stop at a ``#`` or a NUL,
drop tabs and newlines and trim spaces (as WHATWG URL parsers do), take the path out of an
absolute URI, match case-insensitively, or route ``/items.json`` to
``/items`` (Django REST framework's format suffixes); and one upstream may do some of that
before another does the rest, in any order. So the engine works out every *form* the path
can take that way, each step applied to what the others make until no new form comes, and
the request needs the **strictest** answer any form gets:
the union of their scopes, and a key whenever any form needs one. Only a format suffix
yields to a rule naming the dotted path itself (``/openapi.json``), so such a rule means
what it says.

What it costs: a plain path (lower-case ASCII letters, digits and ``-_~!$&'()*+,=:@``
between single slashes) has one form and is matched once; any other path costs a few
microseconds per form; an answer is remembered per method and path (``_MEMO_LIMIT``), so
the forms are worked out once for a path that comes again; and a path built to have more
than ``_FORM_LIMIT`` forms (or ``_TEXT_LIMIT`` characters of them), or forms still changing
after ``_ROUNDS`` rounds, or longer than ``_LENGTH_LIMIT`` and not plain, gets at once every
scope any rule names.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from keyturn.errors import InvalidValue

Requirement = tuple[str, ...] | None
"""The scopes a request needs (``()``: a key, any scopes), or ``None``: no key needed."""

_MEMO_LIMIT = 4096  # distinct (method, path) answers remembered; a path flood only resets it
# Forms of one path worth working out, and the longest path they are worked out for. Real
# paths have a handful of forms and stay far below nginx's 8 KB request line; a path built
# past either limit gets the strictest answer of the table at once, instead of costing
# CPU time per form (some µs each, so no request costs more than a few usual ones).
_FORM_LIMIT = 16
_LENGTH_LIMIT = 2048
# ... and the text of all its forms together: what working them out costs grows with it (a
# real path's forms are a few hundred characters; 16 forms of a path at the length cap,
# each decoded, resolved and cleaned in turn, would be milliseconds).
_TEXT_LIMIT = 6 * _LENGTH_LIMIT
# Rounds of transforms applied to the forms found so far: enough for a path decoded three
# times with a cut, a separator change and a resolution on the way; no common upstream does
# more, and a path whose forms still change after that gets the strictest answer.
_ROUNDS = 6
_METHOD = re.compile(r"[A-Z]{1,16}")
# A path every upstream reads the same way: lower-case ASCII segments of characters no
# upstream decodes, splits on or folds. Anything else has forms (see the module doc).
_PLAIN_CHARACTERS = re.compile(r"/[a-z0-9_~!$&'()*+,=:@/-]*")
_TAB_NEWLINE = dict.fromkeys(map(ord, "\t\n\r"))
_C0_SPACE = "".join(map(chr, range(0x21)))
# What some transform changes (a shortcut past them all for most paths), or what makes a
# leading '//' once a ';parameter' is dropped.
_TRANSFORMED = re.compile(r"[?#%\\\x00-\x20\x7f-\U0010ffff]|^(?:[^/]|//|/;)")
# IIS's %uXXXX, and overlong UTF-8: two bytes (%c0%ae), three (%e0%80%ae) or four
# (%f0%80%80%ae), the last byte unchecked as lenient decoders leave it (%c0%2e, and IIS's
# %c1%1c, a backslash), and sent raw after the escaped lead (%c0.: the same bytes).
_LEGACY_ESCAPE = re.compile(
    r"%u(?P<u>[0-9a-f]{4})"
    r"|(?P<lead>%(?:c[01]|e0%[89][0-9a-f]|f0%8[0-9a-f]%[0-9a-f]{2}))"
    r"(?:%(?P<cont>[0-9a-f]{2})|(?P<raw>[\x21-\x24\x26-\x7e]))",
    re.IGNORECASE,
)
# A raw byte beyond ASCII, as a header's latin-1 reading holds it, escaped.
_ESCAPES = {byte: f"%{byte:02X}" for byte in range(0x80, 0x100)}
# A segment made only of dots (or dots and spaces, which Windows drops) is a dot segment:
# '..' if it starts with two dots, else '.'. Any other segment loses its trailing dots and
# spaces (one made of spaces first, all of it). Each a regular expression over the whole
# path, so that a path of many segments costs C passes, not a Python call per segment.
_DOUBLE_DOT = re.compile(r"(?<![^/])\.\.[. ]*(?![^/])")
_SINGLE_DOT = re.compile(r"(?<![^/])\.(?: [. ]*)?(?![^/])")
_TRAILING = re.compile(r"(?<=[^/. ])[. ]+(?![^/])|(?<![^/]) [. ]*(?![^/])")
# A ';parameter' up to the end of its segment.
_PARAMETER = re.compile(r";[^/]*")


@dataclass(frozen=True, slots=True)
class ScopeRule:
    """Requests to ``prefix`` (and below it, unless ``exact``), by ``method`` if set, need
    ``scopes``. What ``keyturn serve`` reads from its ``rules`` setting."""

    prefix: str
    scopes: tuple[str, ...]
    method: str | None = None
    exact: bool = False

    @property
    def pattern(self) -> str:
        where = f"= {self.prefix}" if self.exact else self.prefix
        return f"{self.method} {where}" if self.method else where


def parse_pattern(pattern: str) -> tuple[str | None, str, bool]:
    """``"/admin"``, ``"POST /items"``, ``"= /docs"`` or ``"GET = /docs"`` as
    ``(method, path, exact)``; a ``ValueError`` naming the mistake otherwise. Methods are
    case-sensitive in HTTP, so a rule names them as requests do: in capitals."""
    words = pattern.split()
    method = words.pop(0) if len(words) > 1 and words[0] != "=" else None
    exact = len(words) == 2 and words[0] == "="
    if exact:
        words.pop(0)
    usage = (
        "write it as '/path/prefix', 'METHOD /path/prefix' (METHOD in capitals, as HTTP "
        "has it) or '= /exact/path'"
    )
    if len(words) != 1 or (method is not None and not _METHOD.fullmatch(method)):
        raise InvalidValue(f"path rule {pattern!r}: {usage}")
    path = words[0]
    if not path.startswith("/"):
        raise InvalidValue(f"path rule {pattern!r} must start with '/' (optionally after a method)")
    if "?" in path or "#" in path or "//" in path or _has_dot_segment(path):
        raise InvalidValue(
            f"path rule {pattern!r}: name a plain path (no query, fragment, '//' or dot segments)"
        )
    return method, path, exact


def _has_dot_segment(path: str) -> bool:
    return any(segment in (".", "..") for segment in path.split("/"))


# -- the forms of a path ----------------------------------------------------------------


def _plain(path: str) -> bool:
    """Whether every upstream reads ``path`` as it is (see ``_PLAIN_CHARACTERS``)."""
    return not path or (_PLAIN_CHARACTERS.fullmatch(path) is not None and "//" not in path)


def _transforms(text: str) -> Iterator[str]:
    """One step of what some upstream does to a path before routing it."""
    for stop in ("?", "#", "\x00"):
        if stop in text:
            yield text.partition(stop)[0]
    if "\x00" in text:
        yield text.replace("\x00", "")  # C string handling that skips NULs
    if "\\" in text:
        yield text.replace("\\", "/")
    if _whatwg_drops(text):  # as a WHATWG URL parser reads it (Node.js, browsers)
        yield text.translate(_TAB_NEWLINE).strip(_C0_SPACE)
    if not text.startswith("/"):
        yield urlsplit(text).path  # an absolute URI
        yield "/" + text
    else:
        if text.startswith("//"):
            yield urlsplit(text).path  # '//host/path' read as a URI with a host
        yield from _normalisations(text)
    if not text.isascii():
        yield unicodedata.normalize("NFKC", text)  # fullwidth and other compatibility forms
        if max(text) <= "\xff":  # raw UTF-8 a proxy passed as latin-1
            yield text.encode("latin-1").decode("utf-8", "replace")
            # ... and the same bytes escaped, which decode as the raw ones do: so raw
            # overlong UTF-8 (\xc0\xae), alone or beside escaped bytes, gets every reading
            # the escaped form gets (an old decoder's '.')
            yield text.translate(_ESCAPES)
    # Decoding last, as the dearest step: a path built to have too many forms is cut off
    # with as few of them worked out as can be.
    if "%" in text:
        yield unquote(text)
        if _LEGACY_ESCAPE.search(text):  # IIS's %u0061, and overlong UTF-8 such as %c0%ae
            yield _LEGACY_ESCAPE.sub(_legacy_character, text)


def _normalisations(text: str) -> Iterator[str]:
    """``text`` (a path: it starts with ``/``) with its dot segments resolved, and as a
    servlet container or Windows reads it, as one step of the others: an upstream may do
    it before it decodes (a proxy that resolves the raw path, ahead of a backend that
    decodes and folds case: ``/./adm%C4%B1n/%2e%2e`` is ``/adm%C4%B1n/%2e%2e`` to the
    proxy and ``/admin/..`` to the backend), so the decoded forms of each of these are
    worked out too."""
    # what _resolved changes, besides a trailing slash (which no rule tells apart)
    if "//" in text or "/." in text:
        yield _resolved(text)
        # A last segment read with the query after it ('/./admin/..?q=1' resolved as one
        # string is '/admin/..?q=1') is no dot segment: the rest is resolved, it stays.
        head, _, last = text.rpartition("/")
        if head and last in (".", ".."):
            yield _resolved(head).rstrip("/") + "/" + last
    # what _cleaned changes: a ';', a segment ending in '.' or ' ' (dot segments too); each
    # is resolved in turn as a text of its own
    if ";" in text or "./" in text or " /" in text or text.endswith((".", " ")):
        yield _cleaned(text)
        if ";" in text:
            yield _trimmed(text)


def _whatwg_drops(text: str) -> bool:
    """Whether a WHATWG URL parser drops something of ``text``: a tab or newline anywhere,
    a control character or space at either end (``str.find`` speed, not a regex's)."""
    if "\t" in text or "\n" in text or "\r" in text:
        return True
    return bool(text) and (text[0] <= " " or text[-1] <= " ")


def _legacy_character(escape: re.Match[str]) -> str:
    """The character an old decoder reads from ``%uXXXX`` or an overlong UTF-8 escape
    (``%c0%ae``, ``%e0%80%ae`` and ``%f0%80%80%ae`` are ``.`` to it): the lead's payload
    bits, then six from each following byte."""
    if escape["u"]:
        return chr(int(escape["u"], 16))
    lead, *rest = (int(byte, 16) for byte in escape["lead"][1:].split("%"))
    rest.append(int(escape["cont"], 16) if escape["cont"] else ord(escape["raw"]))
    value = lead & (0x1F, 0x0F, 0x07)[len(rest) - 1]
    for byte in rest:
        value = value << 6 | byte & 0x3F
    return chr(value)


def _texts(path: str) -> set[str] | None:
    """``path`` and every string the transforms make of it, each transform applied to what
    every other made, to a fixed point: so each order of decoding, resolving, cutting and
    the rest is covered (case is folded when matching: no fold makes or removes a character
    any transform reads). ``None`` when that is more than ``_FORM_LIMIT`` strings, or more
    than ``_TEXT_LIMIT`` characters, or takes more than ``_ROUNDS`` rounds (only a path
    built so does)."""
    # No escape, cut, host or character beyond ASCII: only resolving and cleaning apply,
    # and they only drop characters, so what they make holds none of those either.
    transforms = _transforms if _TRANSFORMED.search(path) else _normalisations
    found = {path}
    frontier = [path]
    size = len(path)
    for _ in range(_ROUNDS):
        step = []
        for made in (t for text in frontier for t in transforms(text)):
            if made not in found:
                size += len(made)
                if len(found) == _FORM_LIMIT or size > _TEXT_LIMIT:
                    return None
                found.add(made)
                step.append(made)
        if not step:
            return found
        frontier = step
    return None


def _resolved(text: str) -> str:
    """RFC 3986 dot-segment removal with empty segments merged (as nginx does)."""
    segments = [s for s in text.split("/") if s and s != "."]
    if ".." not in segments:
        return "/" + "/".join(segments)
    kept: list[str] = []
    for segment in segments:
        if segment != "..":
            kept.append(segment)
        elif kept:
            kept.pop()
    return "/" + "/".join(kept)


def _cleaned(text: str) -> str:
    """A path as a servlet container (``;jsessionid=``) and Windows (trailing dots and
    spaces) read it; a dot segment stays one (``..;`` is ``..`` to Tomcat)."""
    return _trimmed(_PARAMETER.sub("", text))


def _trimmed(text: str) -> str:
    """A path as Windows alone reads it: trailing dots and spaces of each segment dropped,
    a ``;`` kept (``..;`` is a name there, so ``/a./..;`` is below ``/a``)."""
    text = _SINGLE_DOT.sub(".", _DOUBLE_DOT.sub("..", text))
    return _TRAILING.sub("", text)


# The forms of a path do not depend on the method: a request judged for several methods (a
# proxy's and a client's account of it, as /auth reads them) works them out once.
@functools.lru_cache(maxsize=64)
def path_forms(path: str) -> frozenset[str] | None:
    """Every path ``path`` can be routed as, by some common upstream (see the module doc),
    or ``None`` when there are more than ``_FORM_LIMIT``, the path is longer than
    ``_LENGTH_LIMIT`` (only a path built so is), or one of its forms is a URI whose host no
    parser reads.

    Forms start with ``/``; a form may keep empty and dot segments (an upstream that routes
    the raw string sees them) or have them resolved. Case is kept: matching folds it.
    """
    if _plain(path):
        return frozenset((path or "/",))
    if len(path) > _LENGTH_LIMIT:
        return None
    try:
        texts = _texts(path)
    except ValueError:  # urlsplit refuses a host it cannot read ('//[', an unclosed IPv6
        return None  # address): what an upstream makes of it is unknown, so the strictest
    if texts is None:
        return None
    return frozenset([text for text in texts if text.startswith("/")] or ("/",))


def _without_suffix(form: str) -> str | None:
    """``/items.json`` -> ``/items``: the path a format-suffix router resolves it to."""
    head, _, last = form.rstrip("/").rpartition("/")
    stem = last.partition(".")[0]
    if not stem or stem == last:
        return None
    return f"{head}/{stem}"


# -- matching ---------------------------------------------------------------------------


def _case_folds(form: str) -> tuple[str, ...]:
    """``form`` as case-insensitive matchers read it: lower-cased, and, when it is not
    ASCII, folded a character at a time to one character as Java's ``equalsIgnoreCase``
    and .NET's ordinal comparisons do: ``ı`` (dotless) and ``ſ`` (long s) upper-case to
    ``I`` and ``S``, ``İ`` lower-cases to ``i``, so ``/admın`` is ``/admin`` to them.

    The per-character fold equals ``str.lower`` but at the few characters of
    ``_SIMPLE_FOLDS``, so it costs two C passes over the path, whatever its characters."""
    lower = form.lower()
    if form.isascii() or not _FOLDS_APART.search(form):
        return (lower,)
    simple = form.translate(_SIMPLE_FOLDS).lower()
    return (lower,) if simple == lower else (lower, simple)


# Where folding a character at a time (its upper case's lower case, when both are one
# character) differs from ``str.lower``: these characters, and ``Σ``, which ``str.lower``
# makes a final ``ς`` at the end of a word. Each maps to a lower-case character, so
# lower-casing the rest of the path afterwards leaves it. A test checks the table against
# the per-character fold at every code point (it depends on the Unicode version).
_SIMPLE_FOLDS = {
    ord(char): folded
    for char, folded in (
        ("\u00b5", "\u03bc"),  # µ micro sign: μ
        ("\u0130", "i"),  # İ
        ("\u0131", "i"),  # ı
        ("\u017f", "s"),  # ſ
        ("\u0345", "\u03b9"),  # combining ypogegrammeni: ι
        ("\u03a3", "\u03c3"),  # Σ: σ wherever it stands
        ("\u03c2", "\u03c3"),  # ς
        ("\u03d0", "\u03b2"),  # ϐ
        ("\u03d1", "\u03b8"),  # ϑ
        ("\u03d5", "\u03c6"),  # ϕ
        ("\u03d6", "\u03c0"),  # ϖ
        ("\u03f0", "\u03ba"),  # ϰ
        ("\u03f1", "\u03c1"),  # ϱ
        ("\u03f5", "\u03b5"),  # ϵ
        ("\u1c80", "\u0432"),  # Cyrillic small letter rounded ve: в
        ("\u1c81", "\u0434"),  # long-legged de: д
        ("\u1c82", "\u043e"),  # narrow o: о
        ("\u1c83", "\u0441"),  # wide es: с
        ("\u1c84", "\u0442"),  # tall te: т
        ("\u1c85", "\u0442"),  # three-legged te: т
        ("\u1c86", "\u044a"),  # tall hard sign: ъ
        ("\u1c87", "\u0463"),  # tall yat: ѣ
        ("\u1c88", "\ua64b"),  # unblended uk: ꙋ
        ("\u1e9b", "\u1e61"),  # ẛ: ṡ
        ("\u1fbe", "\u03b9"),  # Greek prosgegrammeni: ι
    )
}
_FOLDS_APART = re.compile("[" + "".join(map(chr, _SIMPLE_FOLDS)) + "]")


def _stricter(a: Requirement, b: Requirement) -> Requirement:
    if a is None:
        return b
    if b is None or a == b:
        return a
    return a + tuple(s for s in b if s not in a)


_Rule = tuple[str | None, str, str, bool, Requirement, int]
"""(method, path without its trailing slash, path + "/", exact, requirement, segments):
a plain tuple, since matching unpacks it for every rule on a memo miss."""


def _rule(method: str | None, path: str, exact: bool, required: Requirement, fold: bool) -> _Rule:
    path = path.rstrip("/") or "/"
    if fold:
        path = path.lower()
    below = path if path == "/" else path + "/"
    depth = 0 if path == "/" else path.count("/")
    return method, path, below, exact, required, depth


def _ordered(rules: Iterable[_Rule]) -> tuple[_Rule, ...]:
    """Most specific first: exact rules, then longer paths, then those naming a method."""
    return tuple(sorted(rules, key=lambda r: (r[3], len(r[1]), r[0] is not None), reverse=True))


def _match(rules: tuple[_Rule, ...], method: str, form: str) -> tuple[Requirement, int]:
    """The most specific rule covering ``form``: its requirement and depth (-1: none)."""
    for rule_method, path, below, exact, required, depth in rules:
        if rule_method is not None and rule_method != method:
            continue
        if form == path or (form == below if exact else form.startswith(below)):
            return required, depth
    return (), -1


class PathRules:
    """A rule table, and the answer for a request's method and path.

    ``open_paths`` need no key; ``scopes`` maps a pattern (``"/admin"``, ``"POST /items"``,
    ``"= /docs"``) to the scopes it needs. ``keyturn serve`` builds one from its settings
    with ``from_scope_rules``.
    """

    __slots__ = ("_case_rules", "_folded", "_memo", "_methods", "_rules", "_strictest")

    def __init__(
        self,
        open_paths: Iterable[str] = (),
        scopes: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        table: dict[tuple[str | None, str, bool], Requirement] = {}
        for spec in open_paths:
            table[_key(spec)] = None
        for spec, required in (scopes or {}).items():
            if isinstance(required, str):
                raise TypeError(f"scopes for {spec!r} must be a list of scopes, not a string")
            where = _key(spec)
            if where in table and table[where] is None:
                raise InvalidValue(f"{spec!r} is listed both as an open path and with scopes")
            table[where] = _stricter(table.get(where, ()), tuple(required))
        _cover_head(table)
        self._rules = _ordered(_rule(*where, req, False) for where, req in table.items())
        self._folded = _ordered(_rule(*where, req, True) for where, req in table.items())
        self._case_rules = self._folded != self._rules  # a rule with upper case in its path
        self._strictest: Requirement = ()
        for needed in table.values():
            self._strictest = _stricter(self._strictest, needed or ())
        self._memo: dict[tuple[str, str], Requirement] = {}
        self._methods = frozenset(method for method, _, _ in table if method is not None)

    @property
    def strictest(self) -> Requirement:
        """What every rule's scopes together need: the answer for a path not worth reading
        (too long, or one of too many)."""
        return self._strictest

    def judged_as(self, method: str) -> str:
        """``method`` as the rules tell methods apart: as written if a rule names it, else
        ``""``, as every method no rule names needs the same. A request with a thousand
        accounts of its method (``X-Forwarded-Method: M1,M2,...``) is judged once per
        method a rule names, not once per account and path."""
        method = method.strip().upper()
        return method if method in self._methods else ""

    @classmethod
    def from_scope_rules(cls, rules: Iterable[ScopeRule]) -> PathRules:
        """The table ``keyturn serve`` applies on ``/auth``: every rule needs its scopes
        (and several rules for one pattern, all of them)."""
        table: dict[str, tuple[str, ...]] = {}
        for rule in rules:
            pattern = rule.pattern
            table[pattern] = tuple(dict.fromkeys((*table.get(pattern, ()), *rule.scopes)))
        return cls(scopes=table)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def requirement(self, method: str, path: str) -> Requirement:
        """What a ``method`` request to ``path`` needs: the strictest answer of every form
        of the path."""
        if not self._rules:
            return ()
        memo_key = (method, path)
        try:
            return self._memo[memo_key]
        except KeyError:
            pass
        found = self._judge(method.strip().upper(), path)
        if len(self._memo) >= _MEMO_LIMIT:
            self._memo.clear()
        self._memo[memo_key] = found
        return found

    def _judge(self, method: str, path: str) -> Requirement:
        if not self._case_rules and _plain(path):
            return _match(self._rules, method, path or "/")[0]  # the one form, as it is
        forms = path_forms(path)
        if forms is None:
            return self._strictest
        found: Requirement = None  # the identity of _stricter
        for form in forms:
            found = _stricter(found, self._form(self._rules, method, form))
            for folded in _case_folds(form):
                if folded != form or self._case_rules:
                    found = _stricter(found, self._form(self._folded, method, folded))
        return found

    @staticmethod
    def _form(rules: tuple[_Rule, ...], method: str, form: str) -> Requirement:
        """One form's answer, and its format-suffix reading's unless a rule names the dotted
        segment itself."""
        found, depth = _match(rules, method, form)
        bare = _without_suffix(form)
        if bare is not None and depth < form.rstrip("/").count("/"):
            found = _stricter(found, _match(rules, method, bare)[0])
        return found


def _cover_head(table: dict[tuple[str | None, str, bool], Requirement]) -> None:
    """A ``GET`` rule holds for ``HEAD`` too (frameworks answer ``HEAD`` with the ``GET``
    handler); beside a ``HEAD`` rule of its own, the path needs both."""
    for (method, path, exact), required in list(table.items()):
        if method == "GET":
            head = ("HEAD", path, exact)
            table[head] = _stricter(table[head], required) if head in table else required


def _key(spec: str) -> tuple[str | None, str, bool]:
    method, path, exact = parse_pattern(spec)
    return method, path.rstrip("/") or "/", exact
