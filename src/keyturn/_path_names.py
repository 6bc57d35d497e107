"""Free-form names in URL paths: one path segment each, percent-encoded.

An owner is free text and may hold a ``/`` (``team/payments``). In a URL it is one path
segment, with its slash sent as ``%2F`` (as GitLab addresses a namespaced project,
``/projects/group%2Fproject``). Servers decode the path before routing, so an encoded
slash would split the name in two, and ``/v1/owners/acme%2Frevoke`` would read as "revoke
``acme``"; with the slash taken as a separator instead, the name ``acme/revoke`` and the
action on ``acme`` could not be told apart at all.

So routing sees the path decoded except for ``%2F`` (a slash inside a segment) and ``%25``
(a percent sign, so that a name holding the text ``%2F`` stays that text):
``routing_path``, applied by the service before any router (``keyturn.service.app``); and a
route reads such a name with the ``name`` URL convertor (``{owner:name}``), which decodes
those two. A name is then exactly one segment on every face (the API, the dashboard), and
every other path means what it meant. Refusing ``/`` in owner names would have stranded
the keys that already carry one.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

# A percent-encoded slash or percent sign: kept encoded while routing.
_KEPT = re.compile(rb"%(2[fF]|25)")


def routing_path(raw: bytes) -> str:
    """The path routers match: ``raw`` percent-decoded as UTF-8, except ``%2F`` and
    ``%25``, which stay (upper-cased) inside their segment."""
    pieces = _KEPT.split(raw)
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if index % 2:
            out.append(f"%{piece.decode('ascii').upper()}")
        else:
            out.append(unquote(piece.decode("latin-1"), errors="replace"))
    return "".join(out)


def needs_routing_path(raw: bytes | None) -> bool:
    """Whether ``raw`` holds anything ``routing_path`` keeps encoded (cheap: most paths
    hold no ``%2``; ``find``, because ``in`` on bytes first tries the operand as an
    integer and builds and drops a ``TypeError`` on every call)."""
    return raw is not None and raw.find(b"%2") >= 0 and _KEPT.search(raw) is not None


def segment(name: str) -> str:
    """A name as one path segment: everything but unreserved characters encoded."""
    return quote(name, safe="")


def register() -> None:
    """Make ``{param:name}`` available to Starlette routes: one segment, decoded. Called by
    each face that routes on names before it builds its routes (idempotent)."""
    from starlette.convertors import CONVERTOR_TYPES, StringConvertor, register_url_convertor

    if "name" in CONVERTOR_TYPES:
        return

    class NameConvertor(StringConvertor):
        def convert(self, value: str) -> str:
            return unquote(value)

        def to_string(self, value: str) -> str:
            return segment(value)

    register_url_convertor("name", NameConvertor())
