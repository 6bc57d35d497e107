"""The background writer behind the usage counts and the verification log."""

from __future__ import annotations

import logging
import time

from keyturn._flusher import Flusher


def test_a_failing_write_is_retried_after_the_interval_however_often_woken() -> None:
    """A store that refuses writes is asked again once an interval, not at every wake (an
    overloaded verification log wakes its writer on every request)."""
    calls: list[float] = []

    def flush() -> None:
        calls.append(time.monotonic())
        raise RuntimeError("the store does not answer")

    writer = Flusher(flush, 0.3, "keyturn-test", logging.getLogger("keyturn.test"), "test")
    writer.start()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        writer.wake()
        time.sleep(0.001)
    writer.stop()
    assert 1 <= len(calls) <= 5  # the first wake, then an interval apart


def test_a_woken_writer_writes_at_once_and_stops_when_asked() -> None:
    written: list[float] = []
    writer = Flusher(lambda: written.append(time.monotonic()), 3600, "keyturn-test",
                     logging.getLogger("keyturn.test"), "test")  # fmt: skip
    writer.start()
    woken = time.monotonic()
    writer.wake()
    while not written:
        assert time.monotonic() < woken + 10, "the writer was not woken"
        time.sleep(0.005)
    writer.stop()
    assert writer.thread is not None and not writer.thread.is_alive()
    assert len(written) == 1


def test_a_failing_write_is_retried_an_interval_later_unwoken() -> None:
    """Not woken (the usage recorder never is), a write that failed is tried again an
    interval after the failure, as before writers could be woken: not two intervals."""
    calls: list[float] = []

    def flush() -> None:
        calls.append(time.monotonic())
        raise RuntimeError("the store does not answer")

    writer = Flusher(flush, 0.5, "keyturn-test", logging.getLogger("keyturn.test"), "test")
    writer.start()
    deadline = time.monotonic() + 10
    while len(calls) < 2:
        assert time.monotonic() < deadline, "the failed write was not retried"
        time.sleep(0.01)
    writer.stop()
    assert calls[1] - calls[0] < 0.85  # an interval (0.5 s), not two
