"""The rule table that decides which requests need a key and which scopes."""

from __future__ import annotations

import pytest

from keyturn.integrations import PathRules


def test_no_rules_means_a_key_everywhere() -> None:
    assert PathRules().requirement("GET", "/anything") == ()


def test_a_prefix_covers_itself_and_below_but_not_lookalikes() -> None:
    rules = PathRules(open_paths=["/health"])
    assert rules.requirement("GET", "/health") is None
    assert rules.requirement("GET", "/health/db") is None
    assert rules.requirement("GET", "/healthz") == ()


def test_longest_prefix_wins_and_a_method_rule_beats_a_plain_one() -> None:
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
    assert rules.requirement("POST", "/items/1") == ("items:write",)


def test_trailing_slash_in_a_rule_is_the_same_rule() -> None:
    assert PathRules(open_paths=["/static/"]).requirement("GET", "/static") is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/health/../admin", ("admin",)),  # would borrow /health's openness
        ("/admin/../health", ("admin",)),  # the app may route it raw, to /admin
        ("/health/./db", None),  # open either way
    ],
)
def test_dot_segments_get_the_stricter_answer(path: str, expected: object) -> None:
    rules = PathRules(open_paths=["/health"], scopes={"/admin": ["admin"]})
    assert rules.requirement("GET", path) == expected


def test_mistakes_in_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="start with '/'"):
        PathRules(open_paths=["health"])
    with pytest.raises(ValueError, match="both"):
        PathRules(open_paths=["/a"], scopes={"/a": ["x"]})
    with pytest.raises(TypeError, match="list of scopes"):
        PathRules(scopes={"/a": "admin"})


def test_a_flood_of_distinct_paths_keeps_memory_bounded() -> None:
    rules = PathRules(open_paths=["/health"])
    for i in range(10_000):
        rules.requirement("GET", f"/x/{i}")
    assert len(rules._memo) <= 4096
