"""Text from elsewhere, made safe to print on a terminal.

File names from a scanned tree, paths and user agents clients sent (the verification
log), a webhook receiver's error: printed raw, such text could move the cursor, clear the
screen, retitle or recolour the terminal, reorder a line (bidirectional overrides) or
forge lines of a table (a new line, a tab in tab-separated output). ``printable`` escapes
every such character visibly (``\\x1b``, ``\\u202e``), so what is shown is what was sent.
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, bidirectional overrides and isolates, line and paragraph
# separators, and the lone surrogates that stand for bytes no encoding could decode.
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)


def _escape(match: re.Match[str]) -> str:
    char = match[0]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the byte that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: every control or undecodable character escaped."""
    return _UNPRINTABLE.sub(_escape, text)
