"""Every command's line in ``keyturn --help`` (and in each group's) is a whole sentence.

Click cuts a docstring's first sentence to fit the listing and ends it with ``...``; a user
reading ``keyturn --help`` in an 80-column terminal should see what each command does,
not half of it.
"""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from keyturn.cli import main
from tests.cli.command_tree import command_paths

GROUPS = command_paths(main, groups_only=True)


def _listing(path: tuple[str, ...], columns: int) -> dict[str, str]:
    """Command name -> its line in ``keyturn PATH --help`` at ``columns`` wide."""
    done = CliRunner().invoke(main, [*path, "--help"], env={"COLUMNS": str(columns)})
    assert done.exit_code == 0, done.output
    listing = done.output.split("\nCommands:\n", 1)[1]
    lines = {}
    for line in listing.splitlines():
        name, _, text = line.strip().partition(" ")
        if name:
            lines[name] = text.strip()
    return lines


@pytest.mark.parametrize("path", GROUPS, ids=[" ".join(("keyturn", *p)) for p in GROUPS])
def test_each_commands_help_line_is_a_whole_sentence(path: tuple[str, ...]) -> None:
    group = main
    for name in path:
        group = group.get_command(click.Context(group), name)  # type: ignore[assignment]
    lines = _listing(path, 80)
    assert sorted(lines) == sorted(group.list_commands(click.Context(group)))
    for name, text in lines.items():
        assert text.endswith(".") and not text.endswith("..."), f"{name}: {text!r}"
