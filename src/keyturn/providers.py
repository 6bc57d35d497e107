"""The provider catalogue: whose key is this, and how does that API want it sent?

Loaded from ``providers.toml`` (data, one file). The verifier uses it to tell a caller that
the value they sent is, say, an OpenAI key rather than one of ours.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    name: str
    hosts: tuple[str, ...]
    env: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    header: str
    scheme: str

    def matches(self, key: str) -> bool:
        return any(p.fullmatch(key) for p in self.patterns)


def _load() -> tuple[Provider, ...]:
    text = resources.files(__package__).joinpath("providers.toml").read_text("utf-8")
    return tuple(
        Provider(
            id=entry["id"],
            name=entry["name"],
            hosts=tuple(entry.get("hosts", ())),
            env=tuple(entry.get("env", ())),
            patterns=tuple(re.compile(p) for p in entry.get("key_patterns", ())),
            header=entry.get("header", "Authorization"),
            scheme=entry.get("scheme", "Bearer"),
        )
        for entry in tomllib.loads(text)["provider"]
    )


PROVIDERS: tuple[Provider, ...] = _load()


def identify(key: str) -> Provider | None:
    """The first catalogued provider whose key shape ``key`` has, if any."""
    for provider in PROVIDERS:
        if provider.matches(key):
            return provider
    return None
