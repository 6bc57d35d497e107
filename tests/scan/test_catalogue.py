"""The scanner's vocabulary stays in the outcome catalogue, and its shapes in providers.toml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from keyturn._providers import CHECKSUMS, PROVIDERS
from keyturn.outcomes import CATALOGUE
from keyturn.scan import codes, scanner
from keyturn.scan.shapes import SHAPES
from tests.scan import keygen

SCAN_SRC = Path(__file__).parents[2] / "src" / "keyturn" / "scan"
TESTS = Path(__file__).parent


@pytest.mark.parametrize("code", codes.CODES)
def test_every_scan_code_is_a_catalogued_finding(code: str) -> None:
    entry = CATALOGUE[code]
    assert entry.kind == "finding" and entry.status == 0
    assert entry.severity in ("error", "warning")
    assert entry.title and entry.explanation and entry.fix


def test_every_code_is_emitted_by_the_scanner_and_asserted_by_a_test() -> None:
    source = "\n".join(p.read_text() for p in SCAN_SRC.glob("*.py") if p.name != "codes.py")
    emitted = {
        getattr(codes, name) for name in re.findall(r"\b(?:codes\.)?([A-Z_]{8,})\b", source)
        if getattr(codes, name, None) in codes.CODES
    }
    assert emitted == set(codes.CODES)
    others = [p for p in TESTS.glob("test_*.py") if p.name != "test_catalogue.py"]
    tests = "\n".join(p.read_text() for p in others)
    for code in codes.CODES:
        assert code in tests, f"no test asserts {code}"


def test_the_scanner_uses_every_distinctive_secret_type_of_the_catalogue() -> None:
    wanted = {(p.id, t.name, t.pattern.pattern) for p in PROVIDERS for t in p.key_types
              if t.distinctive and t.secret}
    assert {(s.provider.id, s.key_type.name, s.key_type.pattern.pattern) for s in SHAPES} == wanted
    assert len(SHAPES) >= 50


def test_every_catalogued_checksum_has_a_verifier_and_keygen_knows_it() -> None:
    for provider in PROVIDERS:
        for key_type in provider.key_types:
            if key_type.checksum:
                assert key_type.checksum in CHECKSUMS
                key = keygen.make_key(key_type)
                assert key_type.checksum_ok(key)
                assert not key_type.checksum_ok(keygen.broken_checksum(key))


def test_the_progress_bar_is_drawn_only_on_a_terminal(monkeypatch) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert isinstance(scanner._progress(True, 10**9), scanner._NoProgress)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert isinstance(scanner._progress(False, 10**9), scanner._NoProgress)
    bar = scanner._progress(True, 100)
    assert isinstance(bar, scanner._Bar)
    with bar as advance:
        advance(60)
        advance(40)
