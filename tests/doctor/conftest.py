"""Every doctor test runs in its own world: HOME, working directory, environment, keyring.

The doctor reads ~/.netrc, searches .env upward from the working directory, reads
environment variables and the OS keyring; each test gets a fresh temporary home and working
directory (with an empty .env so the search stops there), an environment without API keys or
proxies, and an in-memory keyring. Nothing leaks between tests or xdist workers.
"""

from __future__ import annotations

import os
import random
import string
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from keyturn.doctor.scrub import public_head
from tests.doctor.apis import Api, RawApi, RawRespond, Respond

_KEYISH = ("_KEY", "_TOKEN", "_SECRET", "PROXY", "_proxy", "NETRC", "KEY_CREATED_AT")


class MemoryKeyring(KeyringBackend):
    """A real keyring backend that keeps passwords in a dict (this process only)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.passwords.pop((service, username), None)


@pytest.fixture(autouse=True)
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (work / ".env").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    for name in list(os.environ):
        if name.endswith(_KEYISH) or name.upper() in ("API_KEY", "NO_PROXY", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(MemoryKeyring())
    yield work
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    backend = keyring.get_keyring()
    assert isinstance(backend, MemoryKeyring)
    return backend


@pytest.fixture
def serve() -> Iterator[Callable[[Respond], Api]]:
    """Start loopback APIs for one test; all are shut down after it."""
    started: list[Api] = []

    def start(respond: Respond) -> Api:
        api = Api(respond)
        started.append(api)
        return api

    yield start
    for api in started:
        api.close()


@pytest.fixture
def serve_raw() -> Iterator[Callable[..., RawApi]]:
    """Start raw loopback servers (any bytes, any pauses) for one test."""
    started: list[RawApi] = []

    def start(respond: RawRespond, host: str = "127.0.0.1", port: int = 0) -> RawApi:
        api = RawApi(respond, host, port)
        started.append(api)
        return api

    yield start
    for api in started:
        api.close()


def _random(alphabet: str, n: int) -> str:
    rng = random.SystemRandom()
    return "".join(rng.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits


def openai_key() -> str:
    return "sk-proj-" + _random(ALNUM + "-_", 48)


def anthropic_key() -> str:
    return "sk-ant-api03-" + _random(ALNUM + "-_", 93) + "AA"


def github_token(prefix: str = "ghp_") -> str:
    """A token in GitHub's published format: 30 random base62 characters, then their CRC32
    in 6 base62 digits (0-9A-Za-z), written here independently of keyturn's encoder."""
    body = _random(ALNUM, 30)
    number, digits = zlib.crc32(body.encode()), ""
    alphabet = string.digits + string.ascii_uppercase + string.ascii_lowercase
    for _ in range(6):
        number, digit = divmod(number, 62)
        digits = alphabet[digit] + digits
    return prefix + body + digits


def slack_token() -> str:
    return f"xoxb-{_random(string.digits, 12)}-{_random(string.digits, 12)}-{_random(ALNUM, 24)}"


def fragments(key: str, size: int = 8) -> set[str]:
    """Every run of ``size`` characters of ``key`` but those within its public prefix
    (``kt_live_``, ``sk_live_``), which the doctor shows."""
    head = public_head(key.strip())
    runs = (key[i : i + size] for i in range(len(key) - size + 1))
    return {run for run in runs if run not in head}


def assert_hidden(text: str, *keys: str) -> None:
    """No key, nor any 8 characters of one in a row, appears in ``text``."""
    for key in keys:
        assert key not in text
        shown = sorted(f for f in fragments(key) if f in text)
        assert not shown, f"pieces of the key in the output: {shown[:3]}"
