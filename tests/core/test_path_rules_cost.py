"""What judging a path costs grows with its length only in C passes, never in Python steps.

A path up to the length cap made of many non-ASCII segments, trailing dots,
``;parameters`` or empty segments once cost a Python call per character or per segment (a
hundred times a usual path's time, per ``/auth`` request). Here the work is counted, not
timed: the Python calls the engine makes for a path are the same for ten repetitions of a
piece as for five hundred. The fast fold and the whole-path segment trimming are checked
against the per-character and per-segment readings they replaced.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from types import FrameType
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyturn._path_rules import PathRules, _case_folds, _cleaned, _trimmed, path_forms
from tests.path_cases import RULES


def per_character_fold(form: str) -> tuple[str, ...]:
    """The fold as it was written first: each character's upper case's lower case."""

    def fold(char: str) -> str:
        upper = char.upper()
        return ((upper if len(upper) == 1 else char).lower() or char)[0]

    lower = form.lower()
    simple = "".join(fold(char) for char in form)
    return (lower,) if form.isascii() or simple == lower else (lower, simple)


def test_the_fold_agrees_with_the_per_character_fold_at_every_code_point() -> None:
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code < 0xE000:
            continue
        char = chr(code)
        for form in (f"/{char}", f"/A{char}", f"/A{char}/b"):  # 'Σ' reads as final in two
            assert _case_folds(form) == per_character_fold(form), hex(code)


@settings(max_examples=2000, deadline=None)
@given(st.text(st.characters(exclude_categories=("Cs",)), max_size=24))
def test_the_fold_agrees_with_the_per_character_fold(form: str) -> None:
    assert _case_folds(form) == per_character_fold(form)


def per_segment(path: str, windows_only: bool) -> str:
    """Segments trimmed one at a time, as the engine first did."""

    def trimmed(segment: str) -> str:
        if re.fullmatch(r"\.+[. ]*", segment):
            return ".." if segment.startswith("..") else "."
        return segment.rstrip(". ")

    return "/".join(trimmed(s if windows_only else s.partition(";")[0]) for s in path.split("/"))


@settings(max_examples=2000, deadline=None)
@given(st.text(st.sampled_from(list("/. ;a.b")), max_size=30).map(lambda text: "/" + text))
def test_whole_path_trimming_reads_each_segment_as_before(path: str) -> None:
    assert _trimmed(path) == per_segment(path, windows_only=True)
    assert _cleaned(path) == per_segment(path, windows_only=False)


def python_calls(judge: Callable[[], object]) -> int:
    """How many Python functions and C functions called from Python ``judge`` runs, with
    no path's forms, nor the standard library's reading of one as a URI, remembered from
    before (what earlier tests left there would change the count)."""
    path_forms.cache_clear()
    urlsplit.cache_clear()
    calls = 0

    def count(frame: FrameType, event: str, arg: object) -> None:
        nonlocal calls
        calls += event in ("call", "c_call")

    sys.setprofile(count)
    try:
        judge()
    finally:
        sys.setprofile(None)
    return calls


# Characters beyond latin-1 (a latin-1 one is also read as a raw byte, escaped, and a
# percent-escape still costs a step of the standard library's decoder).
PIECES = ["ǅ/", "ı/", "Σ/", "／Ａ", "ǅ;x/", "a./", "a /", "x;y/", "a.b./", "a//"]


@pytest.mark.parametrize("piece", PIECES)
def test_a_long_path_costs_the_python_steps_of_a_short_one(piece: str) -> None:
    rules = PathRules(scopes=RULES)
    short, long = "/admin/" + piece * 10, "/admin/" + piece * 300
    assert len(long) <= 2048
    forms = path_forms(long)
    assert forms is not None, "judged form by form, not cut off"
    # A step per piece would be 290 calls more; a cache of the standard library's that
    # fills up on the way (and is cleared: a few calls) is not one.
    assert python_calls(lambda: rules._judge("GET", long)) <= python_calls(
        lambda: rules._judge("GET", short)
    ) + 10
    assert rules.requirement("GET", long) == ("admin",)
