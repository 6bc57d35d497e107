"""The root key: made once, when a database has no keys at all.

Without it a fresh ``keyturn serve`` could not be administered over HTTP, since every admin
call needs a key. It holds ``*`` and never expires (an expiring root key would lock its
owner out), unless the deployment's lifetime policy says every key must (``max_lifetime``,
``require_expiry``): then it lives as long as the policy allows. The full key exists only
in the return value, to be shown once.
"""

from __future__ import annotations

from keyturn.admin import IssuedKey
from keyturn.manager import KeyManager

ROOT_NAME = "root"
ROOT_ACTOR = "keyturn:init"


def ensure_root_key(manager: KeyManager) -> IssuedKey | None:
    """A new root key if the store holds no key, else ``None`` (nothing secret to show)."""
    if manager.store.count():
        return None
    life = manager.admin.lifetime.longest()
    return manager.create_key(ROOT_NAME, scopes=["*"], expires_in=life, actor=ROOT_ACTOR)
