"""The paths of keyturn's command tree, for tests that go through every command."""

from __future__ import annotations

import click


def command_paths(
    group: click.Group, path: tuple[str, ...] = (), *, groups_only: bool = False
) -> list[tuple[str, ...]]:
    """``path`` (``()``: ``keyturn`` itself) and the path of every command under ``group``,
    or of every group only."""
    ctx = click.Context(group)
    found = [path]
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += command_paths(command, (*path, name), groups_only=groups_only)
        elif not groups_only:
            found.append((*path, name))
    return found
