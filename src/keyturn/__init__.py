"""keyturn: API-key authentication that works, and explains itself when it does not.

What users import is listed in ``__all__`` (a test pins it): the manager and its admin
layer, the verifier and the answer it renders, the key format, the catalogue, the errors.
Everything else is an implementation detail that may change between releases.
"""

from __future__ import annotations

__version__ = "0.1.0"

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
