"""The names one header goes by at a CGI-style server.

PHP behind FastCGI, Rack and uWSGI file a header under ``HTTP_`` and its name upper-cased
with '-' as '_', so ``X_Api_Key``, ``x-api_key`` and ``X-Api-Key`` are one header there,
while keyturn, like any HTTP parser, reads them as three. Caddy, Traefik and Envoy pass
such names on, so a header that decides something (a key, the original URI or method) is
looked for under each of them.
"""

from __future__ import annotations

import re

_MOST_WORDS = 9  # 256 spellings; no header keyturn reads has as many words


def spellings(name: str) -> frozenset[str]:
    """``name`` (lower case) with each '-' or '_' written either way, ``name`` included."""
    words = re.split("[-_]", name)
    if len(words) > _MOST_WORDS:
        return frozenset({name})
    found = {words[0]}
    for word in words[1:]:
        found = {f"{head}{sep}{word}" for head in found for sep in "-_"}
    return frozenset(found)


def spellings_b(*names: str) -> frozenset[bytes]:
    """Every spelling of each of ``names``, as an ASGI server gives header names."""
    return frozenset(s.encode("latin-1") for name in names for s in spellings(name))
