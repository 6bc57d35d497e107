"""What the callgrind-driven benches share: a side of a measurement run in a process of
its own under callgrind, and its instruction count (which, unlike wall or CPU time, a
shared machine's load does not move)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def instructions(script: str, *args: str) -> int:
    """Instructions callgrind counts for ``python script *args --folder FOLDER``, FOLDER a
    temporary folder the run may write in (needs valgrind)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, script, *args, "--folder", folder],
            check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": "0"},
        )  # fmt: skip
        found = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
        assert found, "no summary in callgrind's output"
        return int(found.group(1))
