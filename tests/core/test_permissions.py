"""Permission expressions: the parser against random text, and the evaluation against
Python's own ``and`` / ``or`` / ``not`` (the same precedence) as the reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyturn import KeyManager
from keyturn.errors import InvalidPermissions
from keyturn.permissions import MAX_DEPTH, Node, parse

SCOPES = ["orders:read", "orders:write", "admin", "billing:read", "x"]
GRANTS = st.frozensets(st.sampled_from([*SCOPES, "orders:*", "*"]), max_size=4)


def expressions(depth: int = 3) -> st.SearchStrategy[str]:
    """Valid expressions as text, with random case, spacing and redundant parentheses."""
    atom = st.sampled_from(SCOPES)
    space = st.sampled_from([" ", "  ", "\t", " \n "])

    def word(w: str) -> st.SearchStrategy[str]:
        return st.sampled_from([w, w.upper(), w.capitalize()])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        binary = st.tuples(inner, space, st.sampled_from(["and", "or"]).flatmap(word), space,
                           inner).map(lambda t: f"({t[0]}){t[1]}{t[2]}{t[3]}({t[4]})")  # fmt: skip
        negated = st.tuples(word("not"), space, inner).map(lambda t: f"{t[0]}{t[1]}({t[2]})")
        flat = st.lists(atom, min_size=2, max_size=4).flatmap(
            lambda atoms: st.sampled_from([" and ", " or ", " AND "]).map(lambda op: op.join(atoms))
        )
        return st.one_of(binary, negated, flat)

    return st.recursive(atom, extend, max_leaves=8)


def reference(text: str, granted: frozenset[str]) -> bool:
    """Python evaluates the same text, each scope replaced by whether it is granted."""

    def held(scope: str) -> bool:
        return "*" in granted or scope in granted or f"{scope.partition(':')[0]}:*" in granted

    words = []
    for token in text.replace("(", " ( ").replace(")", " ) ").split():
        low = token.lower()
        words.append(low if low in ("and", "or", "not", "(", ")") else str(held(token)))
    return bool(eval(" ".join(words), {"__builtins__": {}}))  # only True, False, and, or, not, ( )


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab:*() \tandortNOT\x00é\"\\"), max_size=40) | st.text())
def test_any_text_parses_or_is_a_clear_422(text: str) -> None:
    try:
        node = parse(text)
    except InvalidPermissions as exc:
        assert exc.status == 422 and exc.field == "permissions" and exc.code == (
            "invalid_permissions"
        )
        assert exc.message and "\n" not in exc.message
        return
    assert isinstance(node, Node)
    assert parse(str(node)) == node or str(parse(str(node))) == str(node)


@settings(max_examples=400, deadline=None)
@given(expressions(), GRANTS)
def test_valid_expressions_agree_with_the_reference(text: str, granted: frozenset[str]) -> None:
    node = parse(text)
    assert node.holds(granted) is reference(text, granted)
    unmet = node.unmet(granted)
    assert (unmet is None) is node.holds(granted)
    if unmet is not None:
        # What is named as missing does not hold either, and it reads back as itself.
        assert not unmet.holds(granted)
        assert parse(str(unmet)).holds(granted) is False
    # Rendering keeps the meaning.
    assert parse(str(node)).holds(granted) is node.holds(granted)


@settings(max_examples=200, deadline=None)
@given(expressions().filter(lambda t: "not" not in t.lower()), GRANTS)
def test_adding_what_is_named_missing_meets_a_positive_expression(
    text: str, granted: frozenset[str]
) -> None:
    node = parse(text)
    unmet = node.unmet(granted)
    if unmet is not None:
        assert node.holds(granted | frozenset(unmet.scopes()))


@pytest.mark.parametrize(
    ("text", "granted", "missing"),
    [
        ("orders:read and (orders:write or admin)", {"orders:read"}, "orders:write or admin"),
        ("orders:read and (orders:write or admin)", {"admin"}, "orders:read"),
        ("a and b and c", {"b"}, "a and c"),
        ("(a or b) and (c or d)", {"a"}, "c or d"),
        ("a and not b", {"a", "b"}, "not b"),
        ("not (a or b)", {"b"}, "not (a or b)"),
        ("orders:write", {"orders:*"}, None),
        ("anything and more", {"*"}, None),
    ],
)
def test_unmet_names_the_part_that_failed(
    text: str, granted: set[str], missing: str | None
) -> None:
    unmet = parse(text).unmet(frozenset(granted))
    assert (None if unmet is None else str(unmet)) == missing


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a and", "ends after 'and'"),
        ("(a or b", "never closed"),
        ("a or b)", "without its '('"),
        ("a b", "unexpected 'b' at character 3"),
        ("and a", "'and' at character 1"),
        ("a and or b", "'or' at character 7"),
        ("()", "')' at character 2"),
        ('a and "b"', "not a scope"),
        ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), "deeper"),
        ("not " * (MAX_DEPTH + 1) + "a", "deeper"),
        ("a " + "and a " * 2000, "longer"),
    ],
)
def test_malformed_expressions_say_where(text: str, says: str) -> None:
    with pytest.raises(InvalidPermissions, match=None) as caught:
        parse(text)
    assert says in caught.value.message


def test_verify_key_with_permissions(manager: KeyManager) -> None:
    from keyturn import Actor

    manager.roles.put(Actor.operator(), "writer", ["orders:write"])
    key = manager.create_key("k", scopes=["orders:read"]).key
    refused = manager.verify_key(key, permissions="orders:read and (orders:write or admin)")
    assert refused.code == "insufficient_scope" and refused.unmet == "orders:write or admin"
    assert "orders:write or admin" in refused.detail
    assert refused.required_scopes == ("orders:write", "admin")
    # Granted through a role, the expression holds.
    holder = manager.create_key("r", scopes=["orders:read"], roles=["writer"]).key
    assert manager.verify_key(holder, permissions="orders:read and (orders:write or admin)").ok
    assert manager.check_key(holder, permissions="admin").unmet == "admin"
    # Scopes and an expression together: both must hold.
    assert manager.verify_key(holder, scopes=["admin"], permissions="orders:read").unmet == "admin"
    with pytest.raises(InvalidPermissions):
        manager.verify_key(key, permissions="orders:read and")
