"""Every command but ``serve`` takes ``--format json``, as the README says: a script can read
any command's answer. ``keyturn webhooks delete`` had no ``--format``."""

from __future__ import annotations

import click
import pytest

from keyturn.cli import main
from tests.cli.command_tree import command_paths


def command_at(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None
        command = found
    return command


COMMANDS = [
    p for p in command_paths(main)
    if p and p != ("serve",) and not isinstance(command_at(p), click.Group)
]


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) for p in COMMANDS])
def test_every_command_but_serve_takes_format_json(path: tuple[str, ...]) -> None:
    option = next((p for p in command_at(path).params if "--format" in p.opts), None)
    assert option is not None, f"keyturn {' '.join(path)} has no --format"
    assert isinstance(option.type, click.Choice) and "json" in option.type.choices
