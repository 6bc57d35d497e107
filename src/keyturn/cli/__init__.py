"""The ``keyturn`` command line."""

from __future__ import annotations

import click

from keyturn import __version__
from keyturn.cli.check import check
from keyturn.cli.doctor import doctor
from keyturn.cli.explain import explain
from keyturn.cli.keys import keys
from keyturn.cli.scan import scan
from keyturn.cli.serve import init, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
