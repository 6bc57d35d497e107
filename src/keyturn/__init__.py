"""keyturn: API-key authentication that works, and explains itself when it does not.

What users import is listed in ``__all__`` (a test pins it): the manager and its admin
layer, the verifier and the answer it renders, the key format, the catalogue, the errors.
Everything else is an implementation detail that may change between releases.

The names are loaded on first use (PEP 562): ``import keyturn`` alone, which every
``keyturn scan`` in a pre-commit hook does, costs no more than the version, while
``from keyturn import KeyManager`` imports the manager as before. Type checkers read the
imports under ``TYPE_CHECKING``; ``_HOMES`` says the same for the interpreter, and a test
holds the two equal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from keyturn.actor import Actor, Allowance
    from keyturn.admin import UNSET, AsyncKeyAdmin, IssuedKey, KeyAdmin, KeyChange, NewKey
    from keyturn.answer import HttpAnswer, challenge, render, render_error
    from keyturn.cache import KeyCache
    from keyturn.compose import build_manager
    from keyturn.config import Settings, load_settings
    from keyturn.credentials import CredentialReader, Presented, Rejection
    from keyturn.errors import (
        Conflict,
        InvalidValue,
        KeyNotFound,
        KeyturnError,
        NotFound,
        NotPermitted,
        ScopeNotHeld,
        Unavailable,
    )
    from keyturn.keys import (
        KeyDefect,
        KeyProblem,
        ParsedKey,
        generate_key,
        hash_key,
        mask,
        parse_key,
    )
    from keyturn.manager import AsyncKeyManager, KeyManager
    from keyturn.outcomes import CATALOGUE, Outcome, lookup
    from keyturn.record import KeyRecord
    from keyturn.scopes import missing_scopes
    from keyturn.store import KeyFilter, KeyStore, open_store
    from keyturn.verifier import Candidate, Decision, Verifier

# Where each public name lives, read on first access by ``__getattr__``.
_HOMES: dict[str, str] = {
    "Actor": "keyturn.actor",
    "Allowance": "keyturn.actor",
    "AsyncKeyAdmin": "keyturn.admin",
    "IssuedKey": "keyturn.admin",
    "KeyAdmin": "keyturn.admin",
    "KeyChange": "keyturn.admin",
    "NewKey": "keyturn.admin",
    "UNSET": "keyturn.admin",
    "HttpAnswer": "keyturn.answer",
    "challenge": "keyturn.answer",
    "render": "keyturn.answer",
    "render_error": "keyturn.answer",
    "KeyCache": "keyturn.cache",
    "build_manager": "keyturn.compose",
    "Settings": "keyturn.config",
    "load_settings": "keyturn.config",
    "CredentialReader": "keyturn.credentials",
    "Presented": "keyturn.credentials",
    "Rejection": "keyturn.credentials",
    "Conflict": "keyturn.errors",
    "InvalidValue": "keyturn.errors",
    "KeyNotFound": "keyturn.errors",
    "KeyturnError": "keyturn.errors",
    "NotFound": "keyturn.errors",
    "NotPermitted": "keyturn.errors",
    "ScopeNotHeld": "keyturn.errors",
    "Unavailable": "keyturn.errors",
    "KeyDefect": "keyturn.keys",
    "KeyProblem": "keyturn.keys",
    "ParsedKey": "keyturn.keys",
    "generate_key": "keyturn.keys",
    "hash_key": "keyturn.keys",
    "mask": "keyturn.keys",
    "parse_key": "keyturn.keys",
    "AsyncKeyManager": "keyturn.manager",
    "KeyManager": "keyturn.manager",
    "CATALOGUE": "keyturn.outcomes",
    "Outcome": "keyturn.outcomes",
    "lookup": "keyturn.outcomes",
    "KeyRecord": "keyturn.record",
    "missing_scopes": "keyturn.scopes",
    "KeyFilter": "keyturn.store",
    "KeyStore": "keyturn.store",
    "open_store": "keyturn.store",
    "Candidate": "keyturn.verifier",
    "Decision": "keyturn.verifier",
    "Verifier": "keyturn.verifier",
}

__all__ = [
    "CATALOGUE",
    "UNSET",
    "Actor",
    "Allowance",
    "AsyncKeyAdmin",
    "AsyncKeyManager",
    "Candidate",
    "Conflict",
    "CredentialReader",
    "Decision",
    "HttpAnswer",
    "InvalidValue",
    "IssuedKey",
    "KeyAdmin",
    "KeyCache",
    "KeyChange",
    "KeyDefect",
    "KeyFilter",
    "KeyManager",
    "KeyNotFound",
    "KeyProblem",
    "KeyRecord",
    "KeyStore",
    "KeyturnError",
    "NewKey",
    "NotFound",
    "NotPermitted",
    "Outcome",
    "ParsedKey",
    "Presented",
    "Rejection",
    "ScopeNotHeld",
    "Settings",
    "Unavailable",
    "Verifier",
    "__version__",
    "build_manager",
    "challenge",
    "generate_key",
    "hash_key",
    "load_settings",
    "lookup",
    "mask",
    "missing_scopes",
    "open_store",
    "parse_key",
    "render",
    "render_error",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'keyturn' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once loaded, a plain attribute: no second lookup
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
