"""The path-rule engine alone: the shared table, rule syntax, and the strictest-form property.

The faces (``/auth``, each framework) run the same table over HTTP in their own test modules;
here it runs without a server, with hypothesis looking for a path and a rule set where the
engine is laxer than an independent account of where upstreams route the path.
"""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyturn._path_rules import (
    PathRules,
    Requirement,
    ScopeRule,
    _case_folds,
    parse_pattern,
    path_forms,
)
from tests.path_cases import PATH_CASES, RULES, PathCase, oracle_forms, paths


@pytest.mark.parametrize("case", PATH_CASES, ids=[c.id for c in PATH_CASES])
def test_the_shared_table(case: PathCase) -> None:
    rules = PathRules(scopes=RULES)
    assert set(rules.requirement(case.method, case.path) or ()) == case.needs
    assert set(rules.requirement(case.method, case.path) or ()) == case.needs  # memo


@pytest.mark.parametrize("case", PATH_CASES, ids=[c.id for c in PATH_CASES])
def test_the_table_s_paths_are_judged_form_by_form(case: PathCase) -> None:
    """None of them is near the cut-off where a path gets every scope at once."""
    forms = path_forms(case.path)
    assert forms is not None and len(forms) <= 8


def test_no_rules_means_a_key_everywhere() -> None:
    assert PathRules().requirement("GET", "/anything/../at/all") == ()
    assert not PathRules()


def test_a_rule_covers_its_segment_and_below_whatever_its_trailing_slash() -> None:
    for spec in ("/health", "/health/"):
        rules = PathRules(open_paths=[spec])
        assert rules.requirement("GET", "/health") is None
        assert rules.requirement("GET", "/health/") is None
        assert rules.requirement("GET", "/health/db") is None
        assert rules.requirement("GET", "/healthz") == ()


def test_most_specific_wins() -> None:
    rules = PathRules(
        open_paths=["/docs"],
        scopes={
            "/": ["read"],
            "/docs/private": ["staff"],
            "/items": ["items:read"],
            "POST /items": ["items:write"],
        },
    )
    assert rules.requirement("GET", "/other") == ("read",)
    assert rules.requirement("GET", "/docs/index") is None
    assert rules.requirement("GET", "/docs/private/a") == ("staff",)
    assert rules.requirement("GET", "/items/1") == ("items:read",)
    assert rules.requirement("post", "/items/1") == ("items:write",)


def test_exact_rules_cover_one_path() -> None:
    rules = PathRules(open_paths=["GET = /docs", "= /openapi.json"], scopes={"/": ["read"]})
    assert rules.requirement("GET", "/docs") is None
    assert rules.requirement("GET", "/docs/") is None
    assert rules.requirement("HEAD", "/docs") is None  # GET covers HEAD
    assert rules.requirement("POST", "/docs") == ("read",)
    assert rules.requirement("GET", "/docs/42") == ("read",)
    # A rule naming a dotted path means it: no format-suffix reading of /openapi.json.
    assert rules.requirement("GET", "/openapi.json") is None
    assert rules.requirement("GET", "/openapi") == ("read",)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/health/../admin", ("admin",)),  # would borrow /health's openness
        ("/admin/../health", ("admin",)),  # the app may route it raw, to /admin
        ("/health/./db", None),  # open either way
        ("/health.json", ()),  # its format-suffix reading is open, the path is not
        ("/admin.json", ("admin",)),
    ],
)
def test_open_paths_get_the_stricter_answer(path: str, expected: Requirement) -> None:
    rules = PathRules(open_paths=["/health"], scopes={"/admin": ["admin"]})
    assert rules.requirement("GET", path) == expected


def test_head_needs_what_get_needs_and_its_own() -> None:
    rules = PathRules(scopes={"GET /a": ["g"], "HEAD /a": ["h"], "GET /b": ["b"]})
    assert rules.requirement("HEAD", "/a") == ("h", "g")
    assert rules.requirement("HEAD", "/b/1") == ("b",)
    assert rules.requirement("GET", "/a") == ("g",)


def test_several_scope_rules_for_one_pattern_add_up() -> None:
    rules = PathRules.from_scope_rules(
        [ScopeRule("/a", ("x",)), ScopeRule("/a/", ("y",)), ScopeRule("/a", ("z",), "GET")]
    )
    assert rules.requirement("POST", "/a/1") == ("x", "y")
    assert rules.requirement("GET", "/a/1") == ("z",)


@pytest.mark.parametrize(
    ("pattern", "parsed"),
    [
        ("/a", (None, "/a", False)),
        ("POST /a/", ("POST", "/a/", False)),
        ("= /docs", (None, "/docs", True)),
        ("GET  =  /docs", ("GET", "/docs", True)),
    ],
)
def test_patterns(pattern: str, parsed: tuple[str | None, str, bool]) -> None:
    assert parse_pattern(pattern) == parsed


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("health", "must start with '/'"),
        ("GET", "must start with '/'"),
        ("GET POST /a", "write it as"),
        ("G3T /a", "write it as"),
        ("post /a", "in capitals"),
        ("/a/../b", "plain path"),
        ("/a?x=1", "plain path"),
        ("/a//b", "plain path"),
    ],
)
def test_mistakes_in_rules_are_named(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_pattern(pattern)


def test_mistakes_in_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="both"):
        PathRules(open_paths=["/a"], scopes={"/a/": ["x"]})
    with pytest.raises(TypeError, match="list of scopes"):
        PathRules(scopes={"/a": "admin"})  # type: ignore[dict-item]


def test_memory_stays_bounded() -> None:
    rules = PathRules(open_paths=["/health"])
    for i in range(10_000):
        rules.requirement("GET", f"/x/{i}")
    assert len(rules._memo) <= 4096
    # A path built to have a great many forms costs no more than a few: it gets every scope.
    built = "%5c;%00%23%3f%2f\\%2e%2f%2f%5c#?#a%23/%2f%3fx:%2f%252e"
    rules = PathRules(scopes={"/a": ["a"], "/b": ["b"]})
    assert path_forms(built) is None
    assert rules.requirement("GET", built) == ("a", "b")
    long = "/b/" + "x/" * 3000 + "..%2f"
    assert path_forms(long) is None
    assert rules.requirement("GET", long) == ("a", "b")
    assert rules.requirement("GET", "/b/" + "x/" * 3000) == ("b",)  # plain: matched as it is


def test_a_path_whose_forms_are_too_much_text_gets_every_scope() -> None:
    """Each form of a long path is decoded, resolved and cleaned in turn: past 12,288
    characters of forms together, the path is not read but gets the strictest answer (a
    dozen forms of a path at the length cap would be milliseconds of CPU time)."""
    rules = PathRules(scopes={"/a": ["a"], "/b": ["b"]})
    piece = "É/%2e%2e/ǅ;x/"  # non-ASCII letters, escapes, dot segments and parameters
    read = "/b/" + piece * 100
    assert len(path_forms(read) or ()) == 12
    assert rules.requirement("GET", read) == ("b",)
    built = "/b/" + piece * 156  # the same twelve forms, each longer: past the limit
    assert len(built) <= 2048 and path_forms(built) is None
    assert rules.requirement("GET", built) == ("a", "b")


# Each step an upstream may take (resolving dot segments, decoding, folding case) applied
# after the others, whichever came first: a proxy may resolve the raw path and its backend
# decode it and fold case. '/./adm%C4%B1n/%2e%2e' is '/adm%C4%B1n/%2e%2e' resolved, then
# '/admın/..' decoded, then '/admin/..' folded (a dotless i, as Java and .NET compare),
# which a catch-all route below /admin serves.
STEP_RULES = {"/": ["s1"], "/admin": ["s2"], "/k": ["s3"], "/items": ["s4"]}
RESOLVED_THEN_DECODED = [
    ("/./adm%C4%B1n/%2e%2e", "s2"),
    ("/./%61dmin/%2e%2e", "s2"),  # no fold needed: the same order with ASCII only
    ("/./ADM%C4%B0N/%2e%2e", "s2"),  # a dotted capital I
    ("//adm%C4%B1n/%2e%2e", "s2"),  # '//' merged instead of '/./' dropped
    ("/.//adm%C4%B1n/%2e%2e", "s2"),
    ("/x/../adm%C4%B1n/%2e%2e", "s2"),
    ("/./adm%C4%B1n%2f%2e%2e", "s2"),  # an encoded slash
    ("/./adm%C4%B1n%5c%2e%2e", "s2"),  # an encoded backslash
    ("/./adm%C4%B1n/%2e%2e/", "s2"),  # a trailing slash
    ("/./adm%C4%B1n/%2e%2e.", "s2"),  # a trailing dot (Windows)
    ("/./adm%C4%B1n/%2E%2e;x", "s2"),  # a ;parameter
    ("/./adm%25C4%25B1n/%252e%252e", "s2"),  # decoded twice
    ("/./%E2%84%AA/%2e%2e", "s3"),  # the Kelvin sign K, 'k' lower-cased
    ("//%E2%84%AA/%2e%2e", "s3"),
    ("/./item%C5%BF/%2e%2e", "s4"),  # a long s, 's' upper-cased
    ("/./ITEM%C5%BF%2f%2e%2e", "s4"),
    # A last segment resolved with the query after it is no dot segment ('/./admin/..?q=1'
    # resolved as one string is '/admin/..?q=1'), and /auth judges the path without its query.
    ("/./admin/..", "s2"),
    ("/./adm%C4%B1n/..", "s2"),
    ("/x/../%E2%84%AA/.", "s3"),
]


@pytest.mark.parametrize(("path", "scope"), RESOLVED_THEN_DECODED)
def test_each_step_is_applied_to_what_the_others_make(path: str, scope: str) -> None:
    rules = PathRules(scopes=STEP_RULES)
    assert set(rules.requirement("GET", path) or ()) == {"s1", scope}
    # with its query (a face that judges the target whole): at least as much
    assert {"s1", scope} <= set(rules.requirement("GET", path + "?q=1") or ())


@pytest.mark.parametrize(
    "path", ["/./adm%C4%B1nx/%2e%2e", "/./%E2%84%AAx/%2e%2e", "/./x/adm%C4%B1n/%2e%2e", "/./x/.."]
)
def test_a_fold_that_names_no_rule_adds_nothing(path: str) -> None:
    """The same steps, where no order reaches a rule of its own: only '/' is asked."""
    assert PathRules(scopes=STEP_RULES).requirement("GET", path) == ("s1",)


def test_no_case_fold_makes_or_removes_a_character_the_other_steps_read() -> None:
    """Why case is folded only when matching, after every other step: a fold changes no
    '/', '.', '%', '\\', ';', '?', '#', NUL or space, so it commutes with them all."""
    read = set("/.%\\;?#\x00 \t\n\r")
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code < 0xE000:
            continue
        char = chr(code)
        for folded in _case_folds("/" + char):
            assert (set(folded) & read) == ({"/"} | ({char} & read)), hex(code)


@pytest.mark.parametrize("path", ["//[", "\\[", "http://[/a", "%2f%2f[/b"])
def test_a_path_whose_host_no_parser_reads_gets_every_scope(path: str) -> None:
    """Read as a URI, these name an unclosed IPv6 host: the answer is the strictest, not an
    error (which a face would turn into a 500)."""
    rules = PathRules(scopes={"/a": ["a"], "/b": ["b"]})
    assert path_forms(path) is None
    assert rules.requirement("GET", path) == ("a", "b")


# -- the property ------------------------------------------------------------------------

RULE_PATHS = st.lists(st.sampled_from(["a", "b", "admin", "x", "k"]), max_size=3).map(
    lambda segments: "/" + "/".join(segments)
)
SCOPES = st.lists(st.sampled_from(["s1", "s2", "s3", "s4"]), min_size=1, max_size=2, unique=True)


@st.composite
def rule_tables(draw: st.DrawFn) -> tuple[list[str], dict[str, list[str]]]:
    """Open paths and scope rules, as an integration configures them."""
    specs = draw(st.dictionaries(
        st.tuples(st.sampled_from(["", "GET ", "POST "]), RULE_PATHS).map("".join),
        st.one_of(st.none(), SCOPES), max_size=6,
    ))
    open_paths = [spec for spec, scopes in specs.items() if scopes is None]
    return open_paths, {spec: scopes for spec, scopes in specs.items() if scopes is not None}


def oracle_rule(
    open_paths: list[str], scopes: dict[str, list[str]], method: str, form: str
) -> Requirement:
    """The most specific rule for one routed path, as the documentation states the rules."""
    best: tuple[tuple[int, bool], Requirement] = ((-1, False), ())
    for spec, required in [*((s, None) for s in open_paths), *scopes.items()]:
        rule_method, _, path = spec.rpartition(" ")
        path = path.rstrip("/") or "/"
        if rule_method and rule_method not in (method, "GET" if method == "HEAD" else method):
            continue
        if path != "/" and form.rstrip("/") != path and not form.startswith(path + "/"):
            continue
        rank = (0 if path == "/" else path.count("/"), bool(rule_method))
        if rank > best[0]:
            best = (rank, None if required is None else tuple(required))
    return best[1]


@settings(max_examples=400, deadline=None)
@given(rule_tables(), paths(), st.sampled_from(["GET", "POST", "HEAD"]))
def test_no_form_is_laxer_than_its_rule(
    table: tuple[list[str], dict[str, list[str]]], path: str, method: str
) -> None:
    """For any rules and any path: wherever an upstream may route the path, the engine asks
    at least what the rule covering that place asks."""
    open_paths, scopes = table
    answer = PathRules(open_paths, scopes).requirement(method, path)
    for form in oracle_forms(path):
        needed = oracle_rule(open_paths, scopes, method, form)
        if needed is not None:
            assert answer is not None, (form, needed)
            assert set(needed) <= set(answer), (form, needed)


@settings(max_examples=400, deadline=None)
@given(paths(), st.sampled_from(["GET", "POST", "HEAD"]))
def test_no_form_is_laxer_than_the_shared_tables_rules(path: str, method: str) -> None:
    """The same, for the one table every face is held to: its ``/admin`` rule meets the
    pieces above often (overlong escapes, a dotless i, a skipped NUL), which random tables
    rarely name."""
    answer = PathRules(scopes=RULES).requirement(method, path)
    for form in oracle_forms(path):
        needed = oracle_rule([], RULES, method, form)
        if needed:
            assert answer is not None and set(needed) <= set(answer), (form, needed)
