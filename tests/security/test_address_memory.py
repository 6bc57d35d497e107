"""Reading client addresses keeps a bounded memo of parsed addresses (peers repeat). An
unreadable hop a trusted proxy forwards can be as long as a header: remembering it would
hold up to a few thousand of them (a header each, hundreds of megabytes). Only what could
be an address is remembered."""

from __future__ import annotations

import gc
import tracemalloc

from keyturn._addresses import TrustedProxies


def test_long_unreadable_hops_are_not_kept() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(3000):
            hop = f"{n:05d}" + "x" * 20_000
            assert proxies.client("10.0.0.1", [("x-forwarded-for", f"{hop}, 10.0.0.2")]) is None
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 2_000_000, f"{held} bytes held after 3,000 long hops"
