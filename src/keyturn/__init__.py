"""keyturn: API-key authentication that works, and explains itself when it does not."""

from __future__ import annotations

__version__ = "0.1.0"

from keyturn.answer import HttpAnswer, challenge, render
from keyturn.cache import KeyCache
from keyturn.credentials import CredentialReader, Presented, Rejection
from keyturn.keys import (
    KeyDefect,
    KeyProblem,
    ParsedKey,
    generate_key,
    hash_key,
    mask,
    parse_key,
)
from keyturn.manager import AsyncKeyManager, IssuedKey, KeyManager
from keyturn.outcomes import CATALOGUE, Outcome, lookup
from keyturn.record import KeyRecord
from keyturn.store import KeyFilter, KeyNotFound, KeyStore, StoreError, open_store
from keyturn.verifier import Candidate, Decision, Verifier

__all__ = [
    "CATALOGUE",
    "AsyncKeyManager",
    "Candidate",
    "CredentialReader",
    "Decision",
    "HttpAnswer",
    "IssuedKey",
    "KeyCache",
    "KeyDefect",
    "KeyFilter",
    "KeyManager",
    "KeyNotFound",
    "KeyProblem",
    "KeyRecord",
    "KeyStore",
    "Outcome",
    "ParsedKey",
    "Presented",
    "Rejection",
    "StoreError",
    "Verifier",
    "__version__",
    "challenge",
    "generate_key",
    "hash_key",
    "lookup",
    "mask",
    "open_store",
    "parse_key",
    "render",
]
