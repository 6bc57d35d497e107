"""The ``keyturn`` command line."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click
from click.exceptions import NoArgsIsHelpError

from keyturn import __version__
from keyturn.cli.check import check
from keyturn.cli.doctor import doctor
from keyturn.cli.explain import explain
from keyturn.cli.keys import keys
from keyturn.cli.scan import scan
from keyturn.cli.serve import init, serve


class KeyturnGroup(click.Group):
    """Click's own usage errors, from any command, become one ``error:`` line and exit 2,
    like keyturn's own; ``keyturn`` alone prints its help."""

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
            click.echo(f"error: {exc.format_message()}{hint}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=KeyturnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keyturn")
def main() -> None:
    """keyturn: API keys that work, and explain themselves when they do not."""


main.add_command(keys)
main.add_command(check)
main.add_command(explain)
main.add_command(serve)
main.add_command(init)
main.add_command(doctor)
main.add_command(scan)
