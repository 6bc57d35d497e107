"""What deciding a request's scopes costs: ``PathRules.requirement`` per kind of path.

``/auth`` and the integrations ask the path-rule engine once per request. A path that comes
again is a memo hit; a new plain path is matched once; any other path has its forms worked
out (see ``keyturn._path_rules``). This prints the best of several runs for each, in µs per
call (the best is the figure least disturbed by a shared machine), with the rules of a
typical deployment (20 prefixes, some per method).

Then paths built to cost the most under the 2 KB cap (many non-ASCII segments, escapes, dot
segments), each judged fresh (``_judge``, past the memo) in rounds alternating with a typical
new path with forms, and printed as the median ratio of the two: what one such request
costs in usual requests.

Run: ``.venv/bin/python bench/path_rules.py``. Not run in CI.
"""

from __future__ import annotations

import itertools
import statistics
import timeit
from collections.abc import Callable

from keyturn._path_rules import _LENGTH_LIMIT, PathRules, path_forms

RULES = {
    **{f"/api/v1/area{i}": [f"area{i}:read"] for i in range(16)},
    "POST /api/v1/orders": ["orders:write"],
    "/api/v1/orders": ["orders:read"],
    "/admin": ["admin"],
    "GET /reports": ["reports:read"],
}

# Paths found by a random search over the pieces that make forms: 16 forms, and more.
MOST = "/\u017f%61%c0%ae.%61K;{}"
PAST = "%5c;%00%23%3f%2f\\%2e%2f%2f%5c#?#a%23/%2f%3fx:{}"


def per_call(call: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=9)) / number * 1e6


def main() -> None:
    rules = PathRules(open_paths=["/health", "GET = /docs"], scopes=RULES)
    ids = itertools.count()

    def fresh(template: str) -> Callable[[], object]:
        return lambda: rules.requirement("GET", template.format(next(ids)))

    rows = [
        ("memo hit", lambda: rules.requirement("GET", "/api/v1/orders/17"), 200_000),
        ("new plain path (/api/v1/orders/N)", fresh("/api/v1/orders/{}"), 20_000),
        ("new dotted path (/api/v1/orders/N.json)", fresh("/api/v1/orders/{}.json"), 20_000),
        ("new upper-case path (/api/v1/orders/AB-N)", fresh("/api/v1/orders/AB-{}"), 20_000),
        ("new encoded path (/files/a%20b-N)", fresh("/files/a%20b-{}"), 10_000),
        ("new attack path (/x/%2e%2e/admin/N)", fresh("/x/%2e%2e/admin/{}"), 5_000),
        ("new 16-form path (the most before the cut-off)", fresh(MOST), 1_000),
        ("new path past the cut-off", fresh(PAST), 1_000),
    ]
    print(f"PathRules.requirement, {len(RULES) + 2} rules: best of 9 runs, µs per call")
    for name, call, number in rows:
        print(f"  {name:48s} {per_call(call, number):8.2f}")
    adversarial(rules)


TYPICAL = "/api/v1/orders/17.json"
# Pieces repeated up to the engine's length cap: the costliest paths it still reads.
PIECES = {
    "titlecase letters": "ǅ/",
    "dotless i": "ı/",
    "latin-1 bytes": "\xc9/",
    "fullwidth": "／Ａ",
    "trailing dots": "a./",
    "parameters": "x;y/",
    "dot segments": "./../",
    "escapes": "%41/",
    "overlong UTF-8": "%c0%ae/",
    "mixed": "É/%2e%2e/ǅ;x/",
}
ADVERSARIAL = {
    f"{name} ({piece!r} x{(_LENGTH_LIMIT - 1) // len(piece)})": "/"
    + piece * ((_LENGTH_LIMIT - 1) // len(piece))
    for name, piece in PIECES.items()
}


def adversarial(rules: PathRules, rounds: int = 15) -> None:
    def cost(path: str, number: int) -> float:
        def fresh() -> object:
            path_forms.cache_clear()  # the forms too, not only the answer, are worked out
            return rules._judge("GET", path)

        return timeit.timeit(fresh, number=number) / number

    print(f"\nFresh judgement at the cap vs {TYPICAL}: median of {rounds} paired rounds")
    print(f"  {'path':40s} {'µs':>9s} {'typical µs':>11s} {'ratio':>7s}")
    for name, path in ADVERSARIAL.items():
        pairs = [(cost(path, 20), cost(TYPICAL, 2000)) for _ in range(rounds)]
        slow = statistics.median(p[0] for p in pairs) * 1e6
        usual = statistics.median(p[1] for p in pairs) * 1e6
        ratio = statistics.median(p[0] / p[1] for p in pairs)
        print(f"  {name:40s} {slow:9.1f} {usual:11.2f} {ratio:7.1f}")


if __name__ == "__main__":
    main()
