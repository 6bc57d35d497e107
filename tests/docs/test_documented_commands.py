"""What the README and docs/*.md tell a user to type exists: every `keyturn ...` command and
flag they show, every `KEYTURN_*` variable they name, and the settings table of serve.md.

docs/portal.md told the reader to make a key with `keys create --scopes a,b` (the option is
`--scope`, repeated); docs/webhooks.md sent `$KEYTURN_ROOT_KEY`, a variable nothing sets
(the README's is `ROOT_KEY`), whose `KEYTURN_` prefix reads like a setting.
"""

from __future__ import annotations

import re
from dataclasses import fields
from difflib import get_close_matches
from pathlib import Path

import click
import pytest

from keyturn.cli import main
from keyturn.config import CONFIG_ENV, Settings, env_name

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Read by the test suite, not by keyturn (docs/ui.md says so where it names it).
TEST_VARIABLES = {"KEYTURN_UI_DOCS_SCREENSHOT"}
# `keyturn` followed by a command line, where a user would type one: at a line's start (a
# shell block or a prompt), after a backtick, `$ `, `| ` or `&& `.
COMMAND_LINE = re.compile(r"(?:^\s*(?:\$\s+)?|`|\|\s|&&\s)keyturn((?:\s+[^\s`|;#)]+)+)")
FLAG = re.compile(r"--?[a-zA-Z][-a-zA-Z0-9]*")


def command_of(words: list[str]) -> tuple[click.Command, list[str]]:
    """The deepest command the words name, and the words that named it."""
    command: click.Command = main
    path: list[str] = []
    for word in words:
        if not isinstance(command, click.Group):
            break
        sub = command.get_command(click.Context(command), word)
        if sub is None:
            break
        command, path = sub, [*path, word]
    return command, path


def options_of(command: click.Command) -> set[str]:
    names = {"--help", "-h"} | ({"--version"} if command is main else set())
    for param in command.params:
        names.update(param.opts)
        names.update(param.secondary_opts)
    return names


def command_lines() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            for match in COMMAND_LINE.finditer(line):
                found.append((f"{page.name}:{number}", match.group(1)))
    return found


LINES = command_lines()


def test_the_docs_show_command_lines() -> None:
    assert len(LINES) > 100  # the pattern still finds them


@pytest.mark.parametrize(("where", "line"), LINES, ids=[w for w, _ in LINES])
def test_each_documented_command_and_flag_exists(where: str, line: str) -> None:
    words = line.split()
    command, path = command_of(words)
    if not path and not words[0].startswith("-"):
        # Prose ("keyturn keeps ..."), unless the word is a command mistyped.
        near = get_close_matches(words[0], main.list_commands(click.Context(main)), cutoff=0.7)
        assert near == [], f"{where}: no command 'keyturn {words[0]}' (meant {near[0]}?)"
        return
    known = options_of(command)
    for word in words[len(path):]:
        flag = FLAG.fullmatch(word.strip("'\"[],.:").split("=", 1)[0])
        if flag:
            assert flag.group(0) in known, f"{where}: 'keyturn {' '.join(path)}' has no {word}"


def test_each_documented_variable_is_a_setting() -> None:
    settings = {env_name(f.name) for f in fields(Settings)} | {CONFIG_ENV}
    named = {
        (page.name, variable)
        for page in PAGES
        for variable in re.findall(r"\bKEYTURN_[A-Z0-9_]+", page.read_text())
    }
    unknown = sorted((p, v) for p, v in named if v not in settings | TEST_VARIABLES)
    assert unknown == []


def test_the_settings_table_is_the_settings() -> None:
    page = (ROOT / "docs" / "serve.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)` \|[^|]*\|([^|]*)\|", page, re.M)
    assert sorted(name for name, _ in rows) == sorted(f.name for f in fields(Settings))
    serve, _ = command_of(["serve"])
    flags = {flag for _, cell in rows for flag in re.findall(r"--[a-z-]+", cell)}
    assert flags and flags <= options_of(serve)
