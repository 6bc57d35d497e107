"""``python -m keyturn``: the same command line as ``keyturn``."""

from keyturn.cli import main

main()
