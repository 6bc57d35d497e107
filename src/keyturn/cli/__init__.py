"""The ``keyturn`` command line.

Exit codes, for every command: 0 success (``check``: the key is accepted), 1 refused (a key
rejected by ``check``, a change not permitted or conflicting with the key's state, findings
of ``scan`` and ``doctor``), 2 bad usage or an invalid value (one line on stderr, naming the
problem and the fix), 3 a dependency (database, Redis) did not answer, 4 ``serve`` could not
listen on its address, 130 interrupted.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any

import click
from click.exceptions import NoArgsIsHelpError

from keyturn import __version__
from keyturn.errors import KeyturnError

# Each command's module is imported only when that command runs: importing the server and
# the doctor's HTTP client for `keyturn scan` in a pre-commit hook cost a second per commit.
COMMANDS = {
    "keys": "keyturn.cli.keys:keys",
    "webhooks": "keyturn.cli.webhooks:webhooks",
    "owners": "keyturn.cli.owners:owners",
    "roles": "keyturn.cli.roles:roles",
    "check": "keyturn.cli.check:check",
    "explain": "keyturn.cli.explain:explain",
    "serve": "keyturn.cli.serve:serve",
    "init": "keyturn.cli.serve:init",
    "doctor": "keyturn.cli.doctor:doctor",
    "scan": "keyturn.cli.scan:scan",
}


class KeyturnGroup(click.Group):
    """Click's own usage errors, from any command, become one ``error:`` line and exit 2,
    like keyturn's own; every ``KeyturnError`` becomes one line and its class's exit code,
    here and nowhere else; ``keyturn`` alone prints its help; commands load lazily (and
    load without their extras: ``keyturn.cli.output.needs_extra``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
            sys.exit(0)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            click.echo(_masked(f"error: {exc.format_message()}{hint}"), err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(_masked(f"error: {exc.format_message()}"), err=True)
            sys.exit(exc.exit_code)
        except KeyturnError as exc:
            click.echo(_masked(f"error: {exc.message}"), err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


def _masked(message: str) -> str:
    """An error line with any key in it masked: an error may quote what was typed, and a
    key pasted as an id or an argument would otherwise be printed back whole."""
    from keyturn._redact import mask_text  # only when there is an error to print

    return mask_text(message)


@click.group(cls=KeyturnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keyturn")
def main() -> None:
    """keyturn: API keys that work, and explain themselves when they do not."""
