"""Settings for ``keyturn serve``: flags, then ``KEYTURN_*`` environment, then a TOML file.

Every setting has one name. The TOML file uses it as a top-level key, the environment as
``KEYTURN_<NAME>`` and the command line as a flag, so a reader of one knows the others. A
misspelt key or a bad value is an error naming where it came from: a server that silently
ignores ``alow_query = true`` is worse than one that refuses to start.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from keyturn._durations import parse_duration
from keyturn._path_rules import ScopeRule, parse_pattern
from keyturn._ratelimit import REDIS_SCHEMES, REDIS_URLS
from keyturn.credentials import DEFAULT_API_KEY_HEADERS, DEFAULT_QUERY_PARAMS
from keyturn.errors import InvalidValue
from keyturn.keys import DEFAULT_PREFIX, TEST_PREFIX, validate_prefix
from keyturn.scopes import SCOPE_TOKEN
from keyturn.store import DEFAULT_URL

ENV_PREFIX = "KEYTURN_"
CONFIG_ENV = "KEYTURN_CONFIG"
DEFAULT_SCOPES_HEADER = "X-Keyturn-Required-Scopes"
GITHUB_KEYS_URL = "https://api.github.com/meta/public_keys/secret_scanning"

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class SettingsError(InvalidValue):
    """A setting is unknown or its value is unusable; the message names its source."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = DEFAULT_URL
    realm: str = "api"
    # Prefixes the verifier accepts; the first is the default for new keys.
    prefixes: tuple[str, ...] = (DEFAULT_PREFIX, TEST_PREFIX)
    api_key_headers: tuple[str, ...] = DEFAULT_API_KEY_HEADERS
    allow_query: bool = False
    query_params: tuple[str, ...] = DEFAULT_QUERY_PARAMS
    # The header a proxy may set to demand scopes on /auth; "" turns the feature off.
    scopes_header: str = DEFAULT_SCOPES_HEADER
    rules: tuple[ScopeRule, ...] = ()
    access_log: bool = True
    log_level: str = "info"
    # uvicorn's HTTP stack: "h11" (pure Python, on asyncio), "httptools" (on uvloop: what
    # uvicorn[standard] installs), or "auto", the second when it is installed.
    http: str = "auto"
    cache_ttl: float = 1.0
    usage_flush_interval: float = 5.0
    shutdown_timeout: float = 30.0
    # Redis shared by every instance for rate limits (none: counted in this process only),
    # and the prefix of keyturn's keys in it (separates deployments sharing one Redis).
    redis_url: str | None = field(default=None, repr=False)
    redis_prefix: str = "keyturn"
    # The web dashboard at /ui: on or off, and how long a session lasts without a request.
    ui: bool = True
    ui_idle_timeout: float = 900.0
    # The customer portal at /portal (docs/portal.md): on or off, a session's idle timeout,
    # its branding, and the address its links start with (default: the request's own).
    portal: bool = True
    portal_idle_timeout: float = 900.0
    portal_title: str = "API keys"
    portal_logo_url: str | None = None
    public_url: str | None = None
    # Believe X-Forwarded-Proto (the dashboard's cookie is Secure when it says https); only
    # behind a proxy that sets it, since a client can send it too.
    trust_forwarded_proto: bool = False
    # Proxies (addresses, CIDR blocks) whose X-Forwarded-For / X-Real-IP name the client for
    # keys restricted by address; none by default: the connection's peer is the client.
    trusted_proxies: tuple[str, ...] = ()
    # The verification log (keyturn._verifications): on or off, and how long it keeps its
    # entries, in seconds.
    verification_log: bool = True
    verification_retention: float = 30 * 86_400.0
    # HMAC pepper for key hashes; set it from the environment or a secret file, never a flag.
    pepper: str | None = field(default=None, repr=False)
    # The server's edge (docs/security.md): the largest request body it reads (bytes), the
    # seconds a client has to send a request's headers (and again its body), and how many
    # connections it holds at once (never more than its descriptor limit allows).
    max_body_size: int = 64 * 1024
    read_timeout: float = 10.0
    max_connections: int = 1000
    # Webhooks (docs/webhooks.md): may they post to loopback and private addresses (the
    # deployment's own network)? Off, so an API caller cannot aim keyturn at it.
    webhook_allow_private: bool = False
    # Leak response (docs/leaks.md): what a reported leak does to the key (revoke, disable
    # or notify), and where GitHub's secret scanning publishes the keys it signs with.
    leak_action: str = "revoke"
    github_keys_url: str = GITHUB_KEYS_URL
    # Lifetime policy (docs/webhooks.md#lifetime-policy): the longest a key may live (None:
    # no limit), whether every key must expire, and after how long without a use a key is
    # disabled (None: never). Reminders: days before an expiry that key.expiring is sent,
    # and how often (seconds) the time-driven events are looked for.
    max_lifetime: timedelta | None = None
    require_expiry: bool = False
    disable_unused_after: timedelta | None = None
    expiry_warnings: tuple[int, ...] = (30, 7, 1)
    lifecycle_interval: float = 60.0

    @property
    def default_prefix(self) -> str:
        return self.prefixes[0]


# -- value parsers: each takes a TOML value or an environment string ---------------------


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _integer(value: Any) -> int:
    if isinstance(value, str):
        value = value.strip()
        if not re.fullmatch(r"-?\d+", value):
            raise ValueError("expected an integer")
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected an integer")
    return value


def _bounded(low: int, high: int, what: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        number = _integer(value)
        if not low <= number <= high:
            raise ValueError(f"expected {what} from {low} to {high}")
        return number

    return parse


_port = _bounded(0, 65535, "a port number")


def _seconds(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError("expected a number of seconds") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a number of seconds")
    if not 0 <= value <= 86_400:
        raise ValueError("expected seconds from 0 to 86400")
    return float(value)


def _idle(value: Any) -> float:
    seconds = _seconds(value)
    if seconds < 1:
        raise ValueError("expected at least 1 second")
    return seconds


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("expected true or false")


def _names(value: Any) -> tuple[str, ...]:
    """A list in TOML; comma-separated in the environment."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise ValueError("expected a list of strings")
    return tuple(items)


def _header_names(value: Any) -> tuple[str, ...]:
    names = _names(value)
    for name in names:
        _header_name(name)
    return tuple(n.lower() for n in names)


def _header_name(value: Any) -> str:
    name = _text(value).strip()
    if name and not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid HTTP header name")
    return name


def _prefixes(value: Any) -> tuple[str, ...]:
    prefixes = _names(value)
    if not prefixes:
        raise ValueError("expected at least one key prefix")
    for prefix in prefixes:
        validate_prefix(prefix)
    return prefixes


def _log_level(value: Any) -> str:
    level = _text(value).strip().lower()
    if level not in ("critical", "error", "warning", "info", "debug"):
        raise ValueError("expected one of critical, error, warning, info, debug")
    return level


def _http(value: Any) -> str:
    stack = _text(value).strip().lower()
    if stack not in ("auto", "h11", "httptools"):
        raise ValueError("expected one of auto, h11, httptools")
    if stack == "httptools" and not all(map(_installed, ("httptools", "uvloop"))):
        raise ValueError("httptools needs httptools and uvloop: pip install 'uvicorn[standard]'")
    return stack


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _database_url(value: Any) -> str:
    url = _text(value).strip()
    if "://" not in url:
        raise ValueError("expected a database URL such as sqlite:///keyturn.db")
    return url


def _redis_url(value: Any) -> str | None:
    """Checked here so the error names the flag or variable typed (the URL itself is not
    repeated: it may hold a password)."""
    url = _optional_text(value)
    if url is None:
        return None
    url = url.strip()
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in REDIS_SCHEMES:
        raise ValueError(f"expected a Redis URL: {REDIS_URLS}")
    return url


def parse_scopes(value: Any) -> tuple[str, ...]:
    """Scopes as a TOML list or a string separated by spaces or commas."""
    if isinstance(value, str):
        items = [s for s in re.split(r"[\s,]+", value) if s]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise ValueError("expected a list of scopes")
    for scope in items:
        if not SCOPE_TOKEN.fullmatch(scope):
            raise ValueError(f"{scope!r} is not a valid scope (printable ASCII, no spaces)")
    return tuple(items)


def parse_rule(pattern: str, scopes: Any) -> ScopeRule:
    """``"/admin/"``, ``"POST /orders"`` or ``"= /exact"`` mapped to the scopes it needs."""
    method, prefix, exact = parse_pattern(pattern)
    return ScopeRule(prefix, parse_scopes(scopes), method, exact)


def _rules(value: Any) -> tuple[ScopeRule, ...]:
    """A TOML table, or a JSON object in the environment: ``{"/admin/": ["admin"]}``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError('expected a JSON object like {"/admin/": ["admin"]}') from None
    if not isinstance(value, dict):
        raise ValueError("expected a table of 'path prefix' = [scopes]")
    return tuple(parse_rule(pattern, scopes) for pattern, scopes in value.items())


def _read_timeout(value: Any) -> float:
    seconds = _seconds(value)
    if not 0.1 <= seconds <= 3600:
        raise ValueError("expected seconds from 0.1 to 3600")
    return seconds


def _networks(value: Any) -> tuple[str, ...]:
    from keyturn._addresses import checked_networks

    try:
        return checked_networks(_names(value), "trusted_proxies")
    except InvalidValue as exc:
        raise ValueError(exc.message) from None


def _retention(value: Any) -> float:
    """A duration such as ``30d`` or ``12h`` (or a number of seconds), at least a minute and
    at most what ``parse_duration`` takes: a number from a TOML file may be ``nan``, ``inf``
    or any size, none of which a purge can count back from."""
    from keyturn._durations import LONGEST, parse_duration

    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value <= LONGEST.total_seconds():  # False for nan, too
            longest = int(LONGEST.total_seconds())
            raise ValueError(f"expected seconds from 60 to {longest}, or a duration like 30d")
        seconds = float(value)
    else:
        try:
            seconds = parse_duration(_text(value).strip()).total_seconds()
        except InvalidValue as exc:
            raise ValueError(exc.message) from None
    if seconds < 60:
        raise ValueError("expected at least a minute, like 30d")
    return seconds


def _optional_text(value: Any) -> str | None:
    return _text(value) or None


def _title(value: Any) -> str:
    text = _text(value).strip()
    if not 1 <= len(text) <= 100 or not text.isprintable():
        raise ValueError("expected 1 to 100 printable characters")
    return text


def _web_address(value: Any) -> str | None:
    """An absolute http(s) URL (or nothing)."""
    text = _text(value).strip()
    if not text:
        return None
    parts = urlsplit(text)  # a ValueError of its own is the same message's cause
    if parts.scheme not in ("http", "https") or not parts.netloc or not text.isprintable():
        raise ValueError("expected an absolute http:// or https:// URL")
    return text


def _leak_action(value: Any) -> str:
    action = _text(value).strip().lower()
    if action not in ("revoke", "disable", "notify"):
        raise ValueError("expected revoke, disable or notify")
    return action


def _http_url(value: Any) -> str:
    url = _text(value).strip()
    if not re.match(r"https?://[^\s/]+", url):
        raise ValueError("expected an http or https URL")
    return url


def _optional_duration(value: Any) -> timedelta | None:
    """``366d``, ``12h``, ``2w``; ``""`` or ``none`` for no limit."""
    text = _text(value).strip().lower()
    if text in ("", "none", "never", "off"):
        return None
    try:
        return parse_duration(text)
    except InvalidValue as exc:
        raise ValueError(str(exc)) from None


def _days(value: Any) -> tuple[int, ...]:
    """Whole days, most first: ``[30, 7, 1]`` in TOML, ``30,7,1`` in the environment."""
    items = value if isinstance(value, list) else _names(value)
    days = sorted({_bounded(1, 3660, "days")(item) for item in items}, reverse=True)
    return tuple(days)


def _interval(value: Any) -> float:
    seconds = _seconds(value)
    if seconds < 0.1:
        raise ValueError("expected at least 0.1 seconds")
    return seconds


def public_url(value: Any) -> str | None:
    """``public_url`` checked as ``keyturn serve`` checks it (for integrations given it in
    code): an absolute http(s) URL, or None."""
    return _parse("public_url", value, "public_url") if value is not None else None


_PARSERS: Mapping[str, Callable[[Any], Any]] = {
    "host": _text,
    "port": _port,
    "database_url": _database_url,
    "realm": _text,
    "prefixes": _prefixes,
    "api_key_headers": _header_names,
    "allow_query": _flag,
    "query_params": _names,
    "scopes_header": _header_name,
    "rules": _rules,
    "access_log": _flag,
    "log_level": _log_level,
    "http": _http,
    "cache_ttl": _seconds,
    "usage_flush_interval": _seconds,
    "shutdown_timeout": _seconds,
    "redis_url": _redis_url,
    "redis_prefix": _text,
    "ui": _flag,
    "ui_idle_timeout": _idle,
    "portal": _flag,
    "portal_idle_timeout": _idle,
    "portal_title": _title,
    "portal_logo_url": _web_address,
    "public_url": _web_address,
    "trust_forwarded_proto": _flag,
    "trusted_proxies": _networks,
    "verification_log": _flag,
    "verification_retention": _retention,
    "pepper": _optional_text,
    "max_body_size": _bounded(1024, 64 * 1024 * 1024, "a size in bytes"),
    "read_timeout": _read_timeout,
    "max_connections": _bounded(1, 1_000_000, "a number of connections"),
    "webhook_allow_private": _flag,
    "leak_action": _leak_action,
    "github_keys_url": _http_url,
    "max_lifetime": _optional_duration,
    "require_expiry": _flag,
    "disable_unused_after": _optional_duration,
    "expiry_warnings": _days,
    "lifecycle_interval": _interval,
}
assert set(_PARSERS) == {f.name for f in fields(Settings)}


def env_name(setting: str) -> str:
    return ENV_PREFIX + setting.upper()


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with Path(path).expanduser().open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path!r} is not valid TOML: {exc}") from None


def _parse(name: str, value: Any, source: str) -> Any:
    try:
        return _PARSERS[name](value)
    except ValueError as exc:
        raise SettingsError(f"{source}: {exc}") from None


# The command-line flags whose names are not the setting's (errors name the flag typed).
_FLAGS = {"database_url": "--db", "redis_url": "--redis", "rules": "--rule"}


def load_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    config_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the three sources; ``flags`` holds only the options given on the command line.

    ``config_file`` (or ``$KEYTURN_CONFIG``) names the TOML file; without one, only flags,
    environment and defaults count.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or environ.get(CONFIG_ENV)
    if path:
        for name, value in _read_toml(path).items():
            if name not in _PARSERS:
                raise SettingsError(
                    f"config file {path!r}: unknown setting {name!r} "
                    f"(known: {', '.join(sorted(_PARSERS))})"
                )
            values[name] = _parse(name, value, f"config file {path!r}, setting {name!r}")
    for name in _PARSERS:
        text = environ.get(env_name(name))
        if text is not None:
            values[name] = _parse(name, text, env_name(name))
    for name, value in (flags or {}).items():
        if value is not None:
            values[name] = _parse(name, value, _FLAGS.get(name, f"--{name.replace('_', '-')}"))
    return replace(Settings(), **values)
