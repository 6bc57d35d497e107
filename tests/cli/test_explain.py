"""``keyturn explain --search`` and codes in any case, through the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner, Result

from keyturn._outcome_search import search, words
from keyturn.cli import main
from keyturn.outcomes import CATALOGUE


def explain(*args: str) -> Result:
    return CliRunner().invoke(main, ["explain", *args])


def found(*args: str) -> list[str]:
    result = explain("--format", "json", "--search", *args)
    assert result.exit_code == 0, result.output
    return [entry["code"] for entry in json.loads(result.stdout)]


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_each_code_is_found_by_a_word_of_its_title(code: str) -> None:
    """Some word of the title puts the code among the first three (the word a reader
    remembers best is the rarest one), and every word of it finds the code."""
    title = words(CATALOGUE[code].title)
    ranks = {word: [o.code for o in search(word)] for word in title}
    assert any(code in ranked[:3] for ranked in ranks.values()), ranks
    rarest = min(title, key=lambda word: len(ranks[word]) or 999)
    assert code in found(rarest)[:3]


@pytest.mark.parametrize(
    ("query", "first"),
    [
        ("KEY_EXPIRED", "key_expired"),  # a whole code, in any case, comes first
        ("Key-Expired", "key_expired"),
        ("insuficient scope", "insufficient_scope"),  # typos
        ("revokd", "key_revoked"),
        ("checksum", "checksum_mismatch"),
        ("expir", "key_expired"),  # the start of a word
    ],
)
def test_search_ranks_and_tolerates_typos(query: str, first: str) -> None:
    assert found(query)[0] == first


def test_search_prints_text_and_markdown_and_says_when_nothing_matches() -> None:
    text = explain("--search", "rotated")
    assert text.exit_code == 0 and "key_rotated" in text.stdout
    markdown = explain("--search", "rotated", "--format", "markdown")
    assert markdown.stdout.startswith("### `key_rotated`")
    nothing = explain("--search", "zzzqqq")
    assert nothing.exit_code == 1 and "no code matches" in nothing.stderr
    assert explain("--search", "zzzqqq", "--format", "json").stdout.strip() == "[]"


@pytest.mark.parametrize("spelling", ["KEY_EXPIRED", "Key_Expired", " key_expired ", "key-expired"])
def test_a_code_is_explained_in_any_case(spelling: str) -> None:
    result = explain(spelling, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["code"] == "key_expired"


def test_code_list_and_search_are_one_at_a_time() -> None:
    result = explain("key_expired", "--search", "expired")
    assert result.exit_code == 2 and "one of them" in result.output
