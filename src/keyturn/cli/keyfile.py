"""Where the root key can go instead of the terminal: a new file only its owner can read.

Printed on stderr (``keyturn serve``) the root key lands wherever the service's logs are
collected (journald, Docker, Kubernetes), and they keep it. ``--output`` /
``--root-key-file`` write it to a file instead: created ``0600`` whatever the umask, never
an existing file (a key file another process reads must not be replaced under it), and
removed again when no key was made for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from keyturn.cli.output import UsageFailure


@contextmanager
def private_file(path: str) -> Iterator[TextIO]:
    """A new file at ``path``, readable and writable by its owner only; removed on the way
    out if nothing was written to it (or writing failed)."""
    refuse_existing(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made since the check
        refuse_existing(path)
        raise
    except OSError as exc:
        raise UsageFailure(f"cannot create {path!r}: {exc.strerror}") from None
    os.fchmod(fd, 0o600)  # the umask may have taken the owner's bits too
    handle = os.fdopen(fd, "w", encoding="ascii")
    written = False
    try:
        yield handle
        written = handle.tell() > 0
    finally:
        handle.close()
        if not written:
            Path(path).unlink()


def refuse_existing(path: str) -> None:
    """Stop (exit 2) if ``path`` exists: a key file is never overwritten."""
    if os.path.lexists(path):
        raise UsageFailure(
            f"{path!r} already exists, and keyturn never overwrites a key file: "
            "move it away or name another file"
        )
