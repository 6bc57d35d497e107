"""The caller's identity as ``/auth`` hands it to the proxy, bounded so every proxy takes it.

nginx reads an ``auth_request`` answer's headers into one buffer (``proxy_buffer_size``, 4 KB
on most systems); an answer that does not fit is a 502 for every request with that key. A
key's owner and scopes have no such bound (the library and the CLI accept any length), so
the headers are cut to fit, by a rule an application can rely on:

- ``X-Keyturn-Key-Id`` is always whole: it is short, and it names the key exactly.
- ``X-Keyturn-Owner`` is whole when it takes at most ``OWNER_LIMIT`` bytes (after
  percent-encoding), and **left out** (empty) otherwise: a cut owner could read as another,
  shorter, real owner.
- ``X-Keyturn-Scopes`` holds whole scopes, in sorted order, as many as fit in what is left
  of ``IDENTITY_LIMIT``: always a subset of what the key holds, so an application reading it
  can refuse what the key may do, never allow what it may not.
- ``X-Keyturn-Truncated`` names what was left out (``owner``, ``scopes``), and is empty when
  nothing was. An application that needs the rest asks ``POST /v1/keys/verify``.

Every header is always sent, empty when there is nothing to say, so a proxy that copies them
overwrites any a client forged.
"""

from __future__ import annotations

from urllib.parse import quote

from keyturn.record import KeyRecord

KEY_ID_HEADER = b"x-keyturn-key-id"
OWNER_HEADER = b"x-keyturn-owner"
SCOPES_HEADER = b"x-keyturn-scopes"
TRUNCATED_HEADER = b"x-keyturn-truncated"

IDENTITY_LIMIT = 3584
"""Bytes the identity headers' values take together, at most: with the rest of a 204 (about
210 bytes) and the key's lifecycle headers (``keyturn.lifecycle_headers``, at most 110) it
stays inside nginx's smallest default buffer, 4 KB."""
OWNER_LIMIT = 2400
"""Bytes of a percent-encoded owner, at most: any owner the admin API accepts (200
characters, 12 bytes each at worst) fits."""

# Printable ASCII but "%" stays as it is in identity headers; the rest is percent-encoded
# UTF-8, so an owner like "Zoë" or a stray newline can never break the header block.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")
_SCOPE_SAFE = _HEADER_SAFE.replace(" ", "")


def identity_headers(record: KeyRecord) -> list[tuple[bytes, bytes]]:
    """The headers a proxy copies to the upstream (and ``Cache-Control: no-store``)."""
    key_id = quote(record.id, safe=_HEADER_SAFE)
    owner = quote(record.owner or "", safe=_HEADER_SAFE)
    left_out = []
    if len(owner) > OWNER_LIMIT:
        owner = ""
        left_out.append("owner")
    room = IDENTITY_LIMIT - len(key_id) - len(owner)
    scopes: list[str] = []
    for scope in sorted(record.granted):  # its own and its roles'
        encoded = quote(scope, safe=_SCOPE_SAFE)
        room -= len(encoded) + (1 if scopes else 0)
        if room < 0:
            left_out.append("scopes")
            break
        scopes.append(encoded)
    return [
        (KEY_ID_HEADER, key_id.encode("ascii")),
        (OWNER_HEADER, owner.encode("ascii")),
        (SCOPES_HEADER, " ".join(scopes).encode("ascii")),
        (TRUNCATED_HEADER, " ".join(left_out).encode("ascii")),
        (b"cache-control", b"no-store"),
    ]
