"""Start-up benchmark: what every pre-commit run of ``keyturn scan`` pays before scanning.

Times, in fresh interpreters, ``import keyturn``, ``keyturn scan --help`` and a scan of a
small folder (20 short files), for this checkout and for an older commit (``--baseline``,
extracted with ``git archive``), in paired rounds whose order alternates, so a loaded
machine slows both alike. Prints the median of each side and the median of the paired
ratios. Not run in CI.

Run: ``.venv/bin/python bench/startup.py [--rounds 15] [--baseline 9997de5~1]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = "import sys; from keyturn.cli import main; sys.argv[0] = 'keyturn'; main()"


def _cases(folder: Path) -> dict[str, list[str]]:
    return {
        "import keyturn": ["-c", "import keyturn"],
        "keyturn scan --help": ["-c", CLI, "scan", "--help"],
        "keyturn scan (20 files)": ["-c", CLI, "scan", "--jobs", "1", str(folder)],
    }


def _wall(src: Path, args: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-P", *args],
                          env={**os.environ, "PYTHONPATH": str(src)}, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"{args[-1]} exited {done.returncode}: {done.stderr.decode()}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--baseline", default="9997de5~1",
                        help="the commit to compare with (before the lazy package root)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="keyturn-startup-") as work:
        old, folder = Path(work) / "old", Path(work) / "small"
        old.mkdir()
        folder.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "src"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        for i in range(20):
            (folder / f"m{i}.py").write_text(f"import os\nX = {i}\nprint(os.getcwd())\n")
        sides = {args.baseline: old / "src", "this checkout": ROOT / "src"}
        for case, case_args in _cases(folder).items():
            times: dict[str, list[float]] = {name: [] for name in sides}
            for round_ in range(args.rounds):
                order = list(sides) if round_ % 2 == 0 else list(sides)[::-1]
                for name in order:
                    times[name].append(_wall(sides[name], case_args))
            then, now = times.values()
            ratio = statistics.median(t / n for t, n in zip(then, now, strict=True))
            print(f"{case:26s} {args.baseline} {statistics.median(then) * 1000:7.1f} ms  "
                  f"this checkout {statistics.median(now) * 1000:7.1f} ms  "
                  f"paired ratio {ratio:.2f}x")


if __name__ == "__main__":
    main()
