"""Every catalogued API, emulated from the answers it documents, diagnosed through
`keyturn doctor --format json`.

For each provider: the right key sent the documented way is authorised (exit 0, no error);
a wrong key is `server_rejected_key`; a key sent in the wrong header or with the wrong scheme
is named as such, and the refusal is not blamed on the key; a missing version header is
named; each documented "valid key, but" answer gives its own finding, naming what the key
lacks, with a fix that keeps the key. The key never appears in the output, and only the
emulator (the target) receives it. There is no code for any one provider: the cases come
from providers.toml.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from click.testing import CliRunner

from keyturn._placeholders import is_placeholder
from keyturn._providers import KeyType, by_id, identify_type
from keyturn.cli import main
from tests.doctor import wire
from tests.doctor.apis import Api, Respond
from tests.doctor.conftest import assert_hidden
from tests.doctor.emulator import ENTRIES, Emulator
from tests.scan.keygen import make_key

Serve = Callable[[Respond], Api]
FIX_BLAMING_THE_KEY = ("new key", "create a key", "regenerate", "create one")


# -- the keys and the ways of each entry -----------------------------------------------------


def _usable(entry: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in entry["key_type"] if t.get("usable", True) and t.get("secret", True))


def _key_type(entry: dict[str, Any], name: str) -> KeyType:
    provider = by_id(entry["id"])
    assert provider is not None
    return next(t for t in provider.key_types if t.name == name)


def key_for(entry: dict[str, Any]) -> str:
    """A key of the entry's first usable type, which names no other provider (with its
    public checksum, when the type has one)."""
    kind = _key_type(entry, _usable(entry)["name"])
    for _ in range(50):
        key = make_key(kind)
        owner = identify_type(key)
        if (owner is None or owner[0].id == entry["id"]) and not is_placeholder(key):
            return key
    raise AssertionError(f"no key of {entry['id']}'s shape names only it")


def env_for(entry: dict[str, Any], key: str) -> dict[str, str]:
    """The key in the entry's usual variable, plus what else its documented way reads from
    the environment (a Basic user, an application id)."""
    answers = entry["answers"]
    env = {entry["env"][0]: key, **answers.get("env", {})}
    user = entry.get("basic_user", "")
    if user.startswith("$"):
        env[user[1:]] = answers.get("user") or make_key(_key_type(entry, answers["user_type"]))
    return env


def _accepted(entry: dict[str, Any]) -> set[str]:
    """The entry's ways in --send spelling (lower case), documented one included."""
    header, scheme = entry.get("header", "Authorization"), entry.get("scheme", "Bearer")
    ways = {a.partition(":")[0] if a.startswith("basic") else a.lower()
            for a in entry.get("also_accepts", ())}
    if header.lower() == "authorization":
        ways.add(scheme.lower() or "bare")
    else:
        ways.add("x-api-key" if header.lower() == "x-api-key" else f"header:{header.lower()}")
    return ways


def _query_params(entry: dict[str, Any]) -> set[str]:
    """The query parameters the entry documents for the key."""
    also = {a.partition(":")[2] for a in entry.get("also_accepts", ()) if a.startswith("query:")}
    return also | ({entry["query_param"]} if entry.get("query_param") else set())


def _required(entry: dict[str, Any]) -> list[str]:
    """The entry's required headers as -H options (a $NAME value from its test env)."""
    env = entry["answers"].get("env", {})
    return [a for n, v in entry.get("required_headers", {}).items()
            for a in ("-H", f"{n}: {env.get(v[1:], v) if v.startswith('$') else v}")]


def _documented_header(entry: dict[str, Any]) -> list[str]:
    """The documented way as a -H header (for an entry that documents a header)."""
    header, scheme = entry.get("header", "Authorization"), entry.get("scheme", "Bearer")
    return ["-H", f"{header}: {scheme} $KEY".replace(":  ", ": ")]


def wrong_header(entry: dict[str, Any]) -> list[str]:
    """--send a way the entry does not accept, in another header than its own."""
    accepted = _accepted(entry)
    documented = entry.get("header", "Authorization").lower()
    if documented != "x-api-key" and "x-api-key" not in accepted:
        return ["--send", "x-api-key", *_required(entry)]
    if documented != "authorization" and "bearer" not in accepted:
        return ["--send", "bearer", *_required(entry)]
    return ["--send", "header:X-Api-Token", *_required(entry)]


def wrong_scheme(entry: dict[str, Any]) -> list[str] | None:
    """The documented header with a scheme the entry does not accept."""
    header, scheme = entry.get("header", "Authorization"), entry.get("scheme", "Bearer")
    accepted = _accepted(entry)
    if header.lower() != "authorization":
        return ["-H", f"{header}: Bearer $KEY", *_required(entry)]
    for other in ("Token", "Bearer", "Key"):
        if other.lower() != scheme.lower() and other.lower() not in accepted:
            return ["-H", f"Authorization: {other} $KEY", *_required(entry)]
    return None


# -- the cases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    provider: str
    name: str

    @property
    def entry(self) -> dict[str, Any]:
        return ENTRIES[self.provider]


def _cases() -> Iterator[Case]:
    for pid, entry in ENTRIES.items():
        yield from (Case(pid, name) for name in ("ok", "no_key", "bad_key", "wrong_header"))
        if wrong_scheme(entry) is not None:
            yield Case(pid, "wrong_scheme")
        if entry.get("header", "Authorization").lower() == "authorization" and (
            entry.get("scheme", "Bearer") not in ("", "Basic")
        ):
            yield Case(pid, "lowercase")
        if entry.get("required_headers"):
            yield Case(pid, "no_version")
        if "permission" in entry["answers"]:
            yield Case(pid, "permission")
        yield from (Case(pid, f"more:{name}") for name in entry["answers"].get("more", {}))


CASES = list(_cases())


@dataclass
class Run:
    data: dict[str, Any]
    output: str
    exit_code: int
    emulator: Emulator

    @property
    def codes(self) -> list[str]:
        return [f["code"] for f in self.data["findings"]]

    def finding(self, code: str) -> dict[str, Any]:
        return next(f for f in self.data["findings"] if f["code"] == code)

    @property
    def errors(self) -> list[str]:
        return [f["code"] for f in self.data["findings"] if f["severity"] == "error"]


def doctor(serve: Serve, case: Case, *args: str, valid: str | None = None,
           deny: str | None = None, unset: bool = False) -> tuple[Run, str]:
    """Run `keyturn doctor --format json` against the case's emulator; (run, the key).
    ``unset``: the key's variable is not set (the emulator still knows a valid key)."""
    entry = case.entry
    key = key_for(entry)
    env = env_for(entry, key)
    emulator = Emulator(case.provider, valid or key, env, deny)
    api = serve(emulator)
    url = api.url(entry["answers"]["path"])
    if unset:
        env = {name: value for name, value in env.items() if name != entry["env"][0]}
    with wire.watch() as opened:
        result = CliRunner().invoke(
            main, ["doctor", url, "--provider", case.provider, "--format", "json",
                   "--no-keyring", *args], env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    output = result.stdout + result.stderr
    assert_hidden(output, key)
    for seen in api.seen:  # in a URL only as a query parameter the API documents
        in_query = {n for n, v in parse_qsl(urlsplit(seen.path).query) if v == key}
        assert key not in seen.path or (in_query and in_query <= _query_params(entry)), seen.path
    # No origin but the target: every connection the process opened went to the emulator.
    target = urlsplit(url)
    assert set(opened.connected) <= {(target.hostname, target.port)}, opened.connected
    assert set(opened.looked_up) <= {target.hostname}, opened.looked_up
    return Run(json.loads(result.stdout), output, result.exit_code, emulator), key


@pytest.mark.parametrize("case", CASES, ids=[f"{c.provider}-{c.name}" for c in CASES])
def test_the_doctor_names_each_documented_answer(serve: Serve, case: Case) -> None:
    check = CHECKS[case.name.partition(":")[0]]
    check(serve, case)


def _ok(serve: Serve, case: Case) -> None:
    for args in ((), ("--try-variants",)):  # an accepted key needs no variant
        run, _ = doctor(serve, case, *args)
        assert run.exit_code == 0, run.output
        assert run.errors == [] and run.codes[-1] == "auth_ok"
        assert run.emulator.served == ["ok"]
        assert run.data["probe"]["variants"] == []


def _no_key(serve: Serve, case: Case) -> None:
    """No key anywhere: named (with the variable looked for), and nothing is sent."""
    run, _ = doctor(serve, case, "--try-variants", unset=True)
    assert run.exit_code == 1
    assert run.errors == ["key_not_set"], run.codes
    assert case.entry["env"][0] in run.finding("key_not_set")["detail"]
    assert run.emulator.served == []


def _variants_sent(run: Run) -> list[dict[str, Any]]:
    """The variants the report lists: each with the status it got, one request each."""
    variants: list[dict[str, Any]] = run.data["probe"]["variants"]
    assert all(v["status"] is not None for v in variants), variants
    assert len(run.emulator.served) == 1 + len(variants)
    assert run.data["probe"]["status"] is not None
    return variants


def _bad_key(serve: Serve, case: Case) -> None:
    other = key_for(case.entry)
    run, _ = doctor(serve, case, valid=other)
    assert run.exit_code == 1
    assert run.emulator.served == ["bad_key"]
    assert "server_rejected_key" in run.codes, run.codes
    assert "rejected_as_sent" not in run.codes
    # Every other way fails too: the key stays the one problem, no way is blamed.
    run, _ = doctor(serve, case, "--try-variants", valid=other)
    assert run.exit_code == 1 and "server_rejected_key" in run.codes, run.codes
    assert _variants_sent(run) and run.data["working_variant"] is None
    assert not {"header_wrong", "scheme_wrong", "variant_works", "rejected_as_sent"} & set(
        run.codes), run.codes


def _refused_as_sent(run: Run, expected: set[str]) -> None:
    assert run.exit_code == 1, run.output
    assert expected & set(run.codes), run.codes
    assert "rejected_as_sent" in run.codes, run.codes
    assert "server_rejected_key" not in run.codes  # the key is not the problem


def _wrong_header(serve: Serve, case: Case) -> None:
    run, _ = doctor(serve, case, *wrong_header(case.entry))
    assert run.emulator.served in (["no_key"], ["wrong_way"])  # its documented answer
    _refused_as_sent(run, {"header_wrong"})
    assert "scheme_wrong" not in run.codes, run.codes
    assert run.data["probe"]["variants"] == []
    # Told to, the doctor finds the documented way, and lists every variant it sent.
    run, _ = doctor(serve, case, *wrong_header(case.entry), "--try-variants")
    _refused_as_sent(run, {"header_wrong", "scheme_wrong"})
    variants = _variants_sent(run)
    assert run.data["working_variant"] == variants[-1]["way"]
    assert run.emulator.served[-1] == "ok" and "variant_works" in run.codes


def _wrong_scheme(serve: Serve, case: Case) -> None:
    args = wrong_scheme(case.entry)
    assert args is not None
    run, _ = doctor(serve, case, *args)
    _refused_as_sent(run, {"scheme_wrong"})
    assert "header_wrong" not in run.codes, run.codes


def _lowercase(serve: Serve, case: Case) -> None:
    scheme = case.entry.get("scheme", "Bearer")
    run, _ = doctor(serve, case, "-H", f"Authorization: {scheme.lower()} $KEY",
                    *_required(case.entry))
    assert "scheme_lowercase" in run.codes  # whatever the server does with it
    assert run.finding("scheme_lowercase")["severity"] == "warning"
    assert f"{scheme} <key>" in run.finding("scheme_lowercase")["fix"]


def _no_version(serve: Serve, case: Case) -> None:
    run, _ = doctor(serve, case, *_documented_header(case.entry))
    assert run.emulator.served == ["no_version"]
    _refused_as_sent(run, {"missing_required_header"})
    for name in case.entry["required_headers"]:
        assert name in run.finding("missing_required_header")["detail"]


def _denied(serve: Serve, case: Case) -> None:
    name = case.name.partition(":")[2] or "permission"
    answer = case.entry["answers"].get(name) or case.entry["answers"]["more"][name]
    run, _ = doctor(serve, case, deny=name)
    assert run.exit_code == 1
    assert run.emulator.served == [name]
    expected = answer.get("expect", "insufficient_permissions")
    assert expected in run.codes, run.codes
    assert not {"server_rejected_key", "rejected_as_sent"} & set(run.codes)
    found = run.finding(expected)
    assert found["severity"] == "error"
    if "names" in answer:
        assert answer["names"] in found["detail"] + found["fix"]
    assert not any(words in found["fix"].lower() for words in FIX_BLAMING_THE_KEY), found
    # Other ways of sending a valid key change nothing: the same verdict, nothing blamed.
    again, _ = doctor(serve, case, "--try-variants", deny=name)
    _variants_sent(again)
    assert again.errors == run.errors and again.data["working_variant"] is None, again.codes


CHECKS: dict[str, Callable[[Serve, Case], None]] = {
    "ok": _ok,
    "no_key": _no_key,
    "bad_key": _bad_key,
    "wrong_header": _wrong_header,
    "wrong_scheme": _wrong_scheme,
    "lowercase": _lowercase,
    "no_version": _no_version,
    "permission": _denied,
    "more": _denied,
}


@pytest.mark.parametrize(
    "code",
    ["insufficient_permissions", "resource_not_shared", "key_mode_mismatch", "resource_hidden"],
)
def test_every_kind_of_valid_key_denied_is_in_some_documented_answer(code: str) -> None:
    """Each "valid key, but" finding is exercised by at least one provider's answers."""
    expected = [
        answer.get("expect", "insufficient_permissions")
        for entry in ENTRIES.values()
        for answer in [entry["answers"].get("permission", {}),
                       *entry["answers"].get("more", {}).values()]
        if answer
    ]
    assert code in expected


MODES = [
    (entry["id"], kind["name"], host)
    for entry in ENTRIES.values()
    if entry.get("test_hosts")
    for kind in entry["key_type"]
    if kind.get("environment") and kind.get("usable", True)
    for host in (entry["hosts"][0], entry["test_hosts"][0])
    if (kind["environment"] == "test") != (host in entry["test_hosts"])
]


@pytest.mark.parametrize(("provider", "kind", "host"), MODES)
def test_a_key_of_the_other_mode_is_named_before_anything_is_sent(
    provider: str, kind: str, host: str
) -> None:
    """A sandbox key for the live host, or a live key for the sandbox host (APIs whose two
    environments have hosts of their own): key_mode_mismatch, offline."""
    key = make_key(_key_type(ENTRIES[provider], kind))
    result = CliRunner().invoke(main, ["doctor", f"https://{host}/", "--no-probe", "--format",
                                       "json", "--key-stdin"], input=key)
    data = json.loads(result.stdout)
    found = [f for f in data["findings"] if f["code"] == "key_mode_mismatch"]
    assert result.exit_code == 1 and found, data["findings"]
    assert host in found[0]["detail"]
    assert_hidden(result.output, key)


def test_modes_are_checked_for_some_api() -> None:
    assert MODES
