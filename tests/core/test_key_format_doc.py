"""docs/key-format.md is a public spec: its code and test vectors must match the library."""

from __future__ import annotations

import re
import zlib
from pathlib import Path

from keyturn.keys import ParsedKey, generate_key, parse_key

DOC = (Path(__file__).parents[2] / "docs" / "key-format.md").read_text()


def test_reference_implementation_agrees_with_the_library() -> None:
    code = re.search(r"```python\n(.*?)```", DOC, re.S)
    assert code
    namespace: dict[str, object] = {}
    exec(code.group(1), namespace)  # the doc's own code, as a third party would copy it
    is_well_formed = namespace["is_well_formed"]
    for _ in range(50):
        key = generate_key("acme_live")
        assert is_well_formed(key, {"acme_live"})  # type: ignore[operator]
        assert not is_well_formed(key[:-1] + ("0" if key[-1] != "0" else "1"), {"acme_live"})  # type: ignore[operator]


def test_vectors() -> None:
    rows = re.findall(r"\| `([a-z0-9_]+_[0-9A-Za-z]{36})` \| (\d+) \| `(\w{6})` \|", DOC)
    assert len(rows) == 2
    for key, crc, check in rows:
        parsed = parse_key(key)
        assert isinstance(parsed, ParsedKey)
        assert parsed.checksum == check
        assert zlib.crc32(f"{parsed.prefix}_{parsed.body}".encode()) == int(crc)
