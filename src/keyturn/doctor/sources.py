"""Where the key comes from: explicit input, the environment, ``.env``, the OS keyring.

The doctor resolves the key the way a program does: an environment variable wins over the
same variable in ``.env`` (``load_dotenv()`` never overrides, not even an empty variable),
and the keyring is the last resort. It also looks at every other source, because the bug is
often that two of them disagree, and at ``~/.netrc``, which silently replaces the
``Authorization`` header in ``requests``.
"""

from __future__ import annotations

import netrc
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from keyturn._providers import identify
from keyturn._redact import holds_uuid, key_shaped
from keyturn.doctor.clean import clean
from keyturn.doctor.report import Finding, finding
from keyturn.doctor.scrub import masked
from keyturn.keys import holds_key

KEYRING_SERVICE = "keyturn"


def mask_found(value: str) -> str:
    """The mask (``scrub.masked``) of the key a raw value holds, quotes and whitespace
    aside."""
    return masked(clean(value, "").key)


# A stretch of text a key could be: no space, quote or path separator, 16 characters or more.
_RUN = re.compile(r"[^\s'\"/\\]{16,}")


def looks_like_key(text: str) -> bool:
    """Whether ``text`` has a key's shape: a catalogued provider's or keyturn's, or a
    random-looking run (``_redact.key_shaped``: a hex key too, where names, numbers and
    dates are not), or a UUID (Heroku's API keys are)."""
    return key_shaped(text) or holds_uuid(text) or identify(text) is not None or holds_key(text)


def without_keys(text: str) -> str:
    """``text`` (a usage error quoting what was typed) with whatever looks like a key
    masked: a key typed in the wrong place (``--key-file "$KEY"``, ``--timeout $KEY``)."""
    return _RUN.sub(lambda run: mask_found(run[0]) if looks_like_key(run[0]) else run[0], text)


GENERIC_NAME = "API_KEY"


@dataclass(frozen=True, slots=True)
class Found:
    """A value for the key and its provenance (``where`` is for people, never the value)."""

    value: str
    source: str  # argument, file, stdin, header, environment, dotenv, keyring
    where: str
    name: str | None = None

    def __repr__(self) -> str:
        return f"Found({mask_found(self.value)!r}, {self.where!r})"


@dataclass(slots=True)
class KeySearch:
    """Every place a key was looked for, what each held, and which value wins."""

    names: tuple[str, ...]
    chosen: Found | None = None
    others: list[Found] = field(default_factory=list)
    shadowed: list[tuple[Found | None, Found]] = field(default_factory=list)  # env, dotenv
    empty: list[str] = field(default_factory=list)
    dotenv_path: str | None = None
    dotenv_unreadable: str | None = None  # why the .env could not be read
    keyring_available: bool = False

    def findings(self) -> list[Finding]:
        found: list[Finding] = []
        if self.chosen is None:
            looked = ", ".join(self.names) or GENERIC_NAME
            places = ["the environment"]
            places.append(f".env ({self.dotenv_path})" if self.dotenv_path else "no .env file")
            if self.keyring_available:
                places.append(f"the OS keyring (service {KEYRING_SERVICE!r})")
            detail = f"looked for {looked} in {', '.join(places)}"
            if self.empty:
                detail += f"; set but empty: {', '.join(self.empty)}"
            found.append(finding("key_not_set", detail))
        else:
            found.append(
                finding("key_source", f"{self.chosen.where}: {mask_found(self.chosen.value)}")
            )
        if self.dotenv_unreadable:
            found.append(
                finding(
                    "dotenv_unreadable",
                    f"{self.dotenv_path}: {self.dotenv_unreadable}; load_dotenv() fails on it "
                    "(UnicodeDecodeError), so no variable in it is set",
                    "save the file as UTF-8 text (or remove the stray bytes the detail names)",
                )
            )
        for in_env, in_dotenv in self.shadowed:
            found.append(_shadowed(in_env, in_dotenv))
        if self.chosen is not None:
            for other in self.others:
                if other.value.strip() != self.chosen.value.strip():
                    found.append(
                        finding(
                            "key_shadowed",
                            f"{other.where} holds {mask_found(other.value)}, a different key "
                            f"than the one used ({mask_found(self.chosen.value)} from "
                            f"{self.chosen.where})",
                        )
                    )
        return found


def _shadowed(in_env: Found | None, in_dotenv: Found) -> Finding:
    name = in_dotenv.name
    if in_env is None:
        detail = (
            f"{name} is set but empty in the environment, so load_dotenv() keeps the empty "
            f"value and ignores {mask_found(in_dotenv.value)} in {in_dotenv.where}"
        )
    else:
        detail = (
            f"{name} is {mask_found(in_env.value)} in the environment but "
            f"{mask_found(in_dotenv.value)} in {in_dotenv.where}; load_dotenv() keeps the "
            "environment's value"
        )
    return finding(
        "dotenv_shadowed",
        detail,
        f"run `unset {name}` (and remove it from your shell profile) so .env is used, or call "
        "load_dotenv(override=True)",
    )


def candidate_names(key_env: str | None, provider_env: Sequence[str]) -> tuple[str, ...]:
    """The variables to read: the one named, else the provider's usual ones, then API_KEY."""
    if key_env:
        return (key_env,)
    return tuple(dict.fromkeys([*provider_env, GENERIC_NAME]))


MAX_KEY_BYTES = 64 * 1024  # far more than any key (a JWT is a few KiB); /dev/zero is not one


def read_bounded(stream: BinaryIO, what: str) -> str:
    """At most ``MAX_KEY_BYTES`` of a key source, less one final line break (as
    ``$(cat file)`` gives it); ``ValueError`` if there is more."""
    data = stream.read(MAX_KEY_BYTES + 1)
    if len(data) > MAX_KEY_BYTES:
        raise ValueError(
            f"{what} holds more than {MAX_KEY_BYTES // 1024} KiB: that is not a key "
            "(give the file or stream that holds only the key)"
        )
    return data.decode("utf-8", errors="replace").removesuffix("\n")


def read_key_file(path: str | Path) -> str:
    """A key file's text less one final line break, read with a size bound."""
    with Path(path).open("rb") as stream:
        return read_bounded(stream, f"key file {path}")


def find_dotenv_file(explicit: str | Path | None) -> str | None:
    if explicit is not None:
        if not Path(explicit).is_file():
            raise ValueError(f"no .env file at {explicit}")
        return str(explicit)
    from dotenv import find_dotenv

    return find_dotenv(usecwd=True) or None


def read_dotenv(path: str | None) -> tuple[dict[str, str], str | None]:
    """(the variables of the .env at ``path``, why it could not be read)."""
    if not path:
        return {}, None
    from dotenv import dotenv_values

    try:
        values = dotenv_values(path)
    except UnicodeDecodeError as exc:
        return {}, f"byte 0x{exc.object[exc.start]:02x} at offset {exc.start} is not UTF-8"
    except OSError as exc:
        return {}, exc.strerror or type(exc).__name__
    return {k: v for k, v in values.items() if v is not None}, None


def read_keyring(names: Sequence[str]) -> tuple[bool, dict[str, str]]:
    """(available, values) from the OS keyring; any backend failure means "not available"."""
    try:
        import keyring
        from keyring.backends import fail

        if isinstance(keyring.get_keyring(), fail.Keyring):
            return False, {}
        values = {}
        for name in names:
            value = keyring.get_password(KEYRING_SERVICE, name)
            if value:
                values[name] = value
    except Exception:  # a broken or locked backend must not stop the diagnosis
        return False, {}
    return True, values


def search_key(
    names: Sequence[str],
    *,
    given: Found | None = None,
    dotenv_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    use_keyring: bool = True,
) -> KeySearch:
    """Resolve the key: ``given`` (file, stdin, argument) first, then environment, ``.env``,
    keyring; record every other value met on the way."""
    env = os.environ if environ is None else environ
    dotenv, unreadable = read_dotenv(dotenv_path)
    search = KeySearch(tuple(names), dotenv_path=dotenv_path, dotenv_unreadable=unreadable)
    candidates: list[Found] = []
    if given is not None and given.value.strip():
        candidates.append(given)
    elif given is not None:
        search.empty.append(given.where)
    for name in names:
        in_env = env.get(name)
        in_dotenv = dotenv.get(name)
        env_found = (
            Found(in_env, "environment", f"environment variable {name}", name) if in_env else None
        )
        dotenv_found = (
            Found(in_dotenv, "dotenv", f"{name} in {dotenv_path}", name) if in_dotenv else None
        )
        if name in env and dotenv_found and in_env != in_dotenv:
            search.shadowed.append((env_found, dotenv_found))
        if name in env:  # set, even empty: load_dotenv() leaves it alone
            if env_found:
                candidates.append(env_found)
            else:
                search.empty.append(f"environment variable {name}")
        elif dotenv_found:
            candidates.append(dotenv_found)
        elif name in dotenv:
            search.empty.append(f"{name} in {dotenv_path}")
    search.keyring_available, stored = read_keyring(names) if use_keyring else (False, {})
    for name, value in stored.items():
        candidates.append(Found(value, "keyring", f"OS keyring ({KEYRING_SERVICE} / {name})", name))
    if candidates:
        search.chosen, search.others = candidates[0], candidates[1:]
    return search


def netrc_findings(host: str, environ: Mapping[str, str] | None = None) -> list[Finding]:
    """``netrc_override`` when ``~/.netrc`` (or ``$NETRC``) has credentials for ``host``."""
    env = os.environ if environ is None else environ
    if env.get("NETRC"):
        paths = [Path(env["NETRC"])]
    else:
        home = Path(env["HOME"]) if env.get("HOME") else Path.home()
        paths = [home / ".netrc", home / "_netrc"]
    for path in paths:
        try:
            if not path.is_file():
                continue
            entries = netrc.netrc(str(path))
        except (OSError, netrc.NetrcParseError):
            continue
        match = entries.authenticators(host)
        if match is None:
            continue
        entry = f"a 'machine {host}' entry" if host in entries.hosts else "a 'default' entry"
        login = f" (login {match[0]})" if match[0] else ""
        return [
            finding(
                "netrc_override",
                f"{path} has {entry}{login}: requests and `curl --netrc` send those Basic "
                f"credentials to {host} instead of the Authorization header your code sets",
            )
        ]
    return []
