"""What a request typed, put back in a page's fields: keys masked, and a mask never stored.

A filter's value and a refused form's fields go back into their fields, so nothing has to
be typed again. One of them may be a key pasted into the wrong field, so what the request
typed is masked there (``kt_live_4fQz…9aB1``). What was read from storage is not: ids such
as ``svc_`` and 32 hex digits have the shape of a key, and an edit form showing them masked
would save the mask over them. The other half: a field that still holds a mask (the page
put it there) is refused where it would change a stored value, since saving it would store
the mask instead of what was typed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from keyturn._redact import mask_text

# What ``mask_text`` leaves of a key: four characters, an ellipsis, four characters.
_MASK = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]{4}…[0-9A-Za-z]{4}(?![0-9A-Za-z])")
MASKED_FIELD = (
    "This holds a masked value (like kt_live_4fQz…9aB1), which the page shows in place of "
    "text that looked like a key. Saving it would store the mask: type the value in full "
    "(or a key's id instead of its mask)."
)


def echo(
    typed: Mapping[str, object], stored: Mapping[str, object] | None = None
) -> dict[str, object]:
    """``typed`` fit to put back in the fields: each text that differs from its stored
    value (everything, for a filter or a new thing) with keys masked."""
    stored = stored or {}
    return {
        name: mask_text(value) if isinstance(value, str) and value != stored.get(name) else value
        for name, value in typed.items()
    }


def masked_fields(
    typed: Mapping[str, object], stored: Mapping[str, object] | None = None
) -> dict[str, str]:
    """A form error for each field holding a mask where its stored value (none, for a new
    thing) does not: an unchanged field is saved as it is stored."""
    stored = stored or {}
    return {
        name: MASKED_FIELD
        for name, value in typed.items()
        if isinstance(value, str) and value != stored.get(name) and _MASK.search(value)
    }
