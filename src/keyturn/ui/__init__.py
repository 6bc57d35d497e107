"""The web dashboard at ``/ui`` on ``keyturn serve``: manage keys and see their use.

Server-rendered HTML (Jinja2) with a little htmx, both shipped in the package; no CDN, no
build step. Read ``app.py`` first (the gate every page passes), then a page module:
``key_pages`` (list, one key), ``key_actions`` (changes), ``check_page`` ("why was it
rejected?"), ``audit_page``, ``signin``. See ``docs/ui.md``.
"""

from __future__ import annotations

from keyturn._extras import require

require("serve", "keyturn.ui")

from keyturn.ui.app import build_dashboard
from keyturn.ui.render import MOUNT

__all__ = ["MOUNT", "build_dashboard"]
