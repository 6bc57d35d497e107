"""Path normalisation and rule matching for forward-auth, without a server."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyturn.config import ScopeRule
from keyturn.service.scope_rules import ScopeRules, normalize_path


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("/", "/"),
        ("", "/"),
        ("/a/b", "/a/b"),
        ("/a/b/", "/a/b/"),
        ("/a/./b", "/a/b"),
        ("/a/../b", "/b"),
        ("/../../etc", "/etc"),
        ("//a///b", "/a/b"),
        ("/a/%2e%2e/b", "/b"),
        ("/%61dmin/", "/admin/"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
    ],
)
def test_normalize_path(raw: str, normal: str) -> None:
    assert normalize_path(raw) == normal


@given(st.lists(st.sampled_from(["a", "b", ".", "..", ""]), max_size=8))
def test_normalize_agrees_with_posixpath(segments: list[str]) -> None:
    """Without the trailing-slash nuance, it is posixpath.normpath rooted at "/"."""
    raw = "/" + "/".join(segments)
    expected = posixpath.normpath(raw)
    expected = "/" + expected.lstrip("/") if expected != "." else "/"
    assert normalize_path(raw).rstrip("/") == expected.rstrip("/")


RULES = ScopeRules(
    [
        ScopeRule("/api", ("api",)),
        ScopeRule("/api/admin", ("admin",)),
        ScopeRule("/api", ("api:write",), "POST"),
        ScopeRule("/api/admin", ("admin:write",), "DELETE"),
    ]
)


@pytest.mark.parametrize(
    ("method", "path", "scopes"),
    [
        ("GET", "/", ()),
        ("GET", "/ap", ()),
        ("GET", "/api", ("api",)),
        ("get", "/api/things", ("api",)),
        ("POST", "/api/things", ("api:write",)),
        ("GET", "/api/admin/users", ("admin",)),
        ("POST", "/api/admin/users", ("admin",)),  # longer prefix beats the method rule
        ("DELETE", "/api/admin/users", ("admin:write",)),
        ("GET", "/api/x/../admin/y", ("admin",)),
    ],
)
def test_most_specific_rule_wins(method: str, path: str, scopes: tuple[str, ...]) -> None:
    assert RULES.required(method, path) == scopes
    assert RULES.required(method, path) == scopes  # and again, from the memo


def test_memo_is_bounded() -> None:
    rules = ScopeRules([ScopeRule("/a", ("a",))])
    for i in range(10_000):
        rules.required("GET", f"/a/{i}")
    assert len(rules._memo) <= 4096
    assert not ScopeRules([])
