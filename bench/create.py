"""Keys created per second in bulk, side by side with an earlier keyturn, in one run.

``KeyAdmin.create_many`` (an import, a bulk load: every key validated, audited and, since
the webhooks' outbox, announced by a ``key.created`` event in the same transaction) into a
fresh SQLite file, timed as the CPU seconds of the call in a child process. Three variants
run in interleaved rounds, so a loaded machine slows them alike:

- ``this``: this checkout;
- ``no-event``: this checkout with the outbox write skipped (what the event costs today);
- ``baseline``: the commit ``--baseline`` (default: the one before the outbox), from
  ``git archive``.

Printed: the median keys/s of each, and the medians of the per-round ratios to ``this``.
Run it from the repository: ``python bench/create.py --keys 20000 --rounds 7``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, tempfile, time
from pathlib import Path
from keyturn import KeyManager
from keyturn.actor import Actor
from keyturn.admin import NewKey
keys, skip_events = int(sys.argv[1]), sys.argv[2] == "1"
with tempfile.TemporaryDirectory() as folder:
    manager = KeyManager(f"sqlite:///{Path(folder) / 'create.db'}")
    if skip_events:
        manager.store._write_all_events = lambda conn, events: None
    news = [NewKey(f"b{i}", ["read"]) for i in range(keys)]
    cpu, wall = time.process_time(), time.perf_counter()
    manager.admin.create_many(Actor.operator("bench"), news)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    manager.close()
print(json.dumps({"cpu": cpu, "wall": wall}))
"""


def measure(src: Path, keys: int, skip_events: bool = False) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-P", "-c", CHILD, str(keys), "1" if skip_events else "0"],
        env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20_000, help="keys per bulk creation")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--baseline", default="4194a35^",
                        help="the commit to compare with (default: before the outbox)")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"this": [], "no-event": [], "baseline": []}
    with tempfile.TemporaryDirectory(prefix="keyturn-baseline-") as old:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "src"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", old], input=archive, check=True)
        for _ in range(args.rounds):
            runs["this"].append(measure(ROOT / "src", args.keys))
            runs["no-event"].append(measure(ROOT / "src", args.keys, skip_events=True))
            runs["baseline"].append(measure(Path(old) / "src", args.keys))
    print(f"create_many of {args.keys:,} keys, {args.rounds} interleaved rounds "
          f"(keys/s by CPU seconds of the call; wall-clock beside it)")
    for name, results in runs.items():
        cpu = statistics.median(args.keys / r["cpu"] for r in results)
        wall = statistics.median(args.keys / r["wall"] for r in results)
        ratio = statistics.median(
            r["cpu"] / t["cpu"] for r, t in zip(results, runs["this"], strict=True)
        )
        label = f"{name} ({args.baseline})" if name == "baseline" else name
        print(f"  {label:24s} {cpu:9,.0f} keys/s CPU  {wall:9,.0f} keys/s wall  "
              f"CPU time {ratio:5.2f}x this")


if __name__ == "__main__":
    main()
