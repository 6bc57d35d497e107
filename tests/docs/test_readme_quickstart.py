"""The README's quickstart, run as written against a real `keyturn serve`.

It created a key and then sent `$KEY`, which nothing had set: the last request, the one
meant to show a key accepted, was refused as `missing_credentials`.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from tests.service.conftest import ServeProcess

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    block = README.split("## Quickstart: keys as a service", 1)[1]
    block = block.split("```sh\n", 1)[1].split("```", 1)[0]
    with ServeProcess("--db", f"sqlite:///{tmp_path / 'keyturn.db'}", cwd=tmp_path) as server:
        root_key = server.stderr.split("Store it in your secret manager now:", 1)[1].split()[0]
        script = block.replace("http://127.0.0.1:8080", server.url)
        done = subprocess.run(["sh", "-ec", script], env={**os.environ, "ROOT_KEY": root_key},
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert re.findall(r"HTTP/1\.1 (\d{3})", done.stdout) == ["401", "204"], done.stdout
    assert "unsupported_scheme" in done.stdout
