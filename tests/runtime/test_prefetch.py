"""Prefetch: an iterator run ahead in a background thread through a bounded queue."""

from __future__ import annotations

import threading
import time

import pytest

from milmer.runtime.prefetch import Prefetch


def _wait_for(condition, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


class Source:
    """A generator that counts what was pulled from it and whether it was closed."""

    def __init__(self, n: int | None, fail_at: int | None = None, error: BaseException | None = None) -> None:
        self.n, self.fail_at, self.error = n, fail_at, error
        self.pulled = 0
        self.closed = False
        self.threads: set[str] = set()

    def __call__(self):
        try:
            i = 0
            while self.n is None or i < self.n:
                self.threads.add(threading.current_thread().name)
                if i == self.fail_at:
                    raise self.error
                self.pulled += 1
                yield i
                i += 1
        finally:
            self.closed = True


def test_items_come_in_order_and_the_thread_ends():
    source = Source(100)
    stream = Prefetch(source(), depth=3, name="test-prefetch")
    assert list(stream) == list(range(100))
    assert not stream.running and source.closed
    assert source.threads == {"test-prefetch"}  # produced in the background thread only
    assert next(stream, "end") == "end"


def test_error_surfaces_unchanged_after_the_items_before_it():
    error = ValueError("Invalid value for 'video': decoding failed at 4.5 s.")
    source = Source(10, fail_at=4, error=error)
    stream = Prefetch(source(), depth=2)
    got = []
    with pytest.raises(ValueError, match=r"^Invalid value for 'video': decoding failed at 4\.5 s\.$") as info:
        for item in stream:
            got.append(item)
    assert info.value is error
    assert got == [0, 1, 2, 3]
    assert not stream.running


def test_reads_at_most_depth_plus_one_ahead_and_close_stops_it():
    source = Source(None)  # endless
    stream = Prefetch(source(), depth=3)
    assert next(stream) == 0
    # The producer fills the queue (3) and holds one more it cannot put: 1 + 3 + 1 pulled.
    assert _wait_for(lambda: source.pulled == 5)
    time.sleep(0.1)
    assert source.pulled == 5
    stream.close()
    assert not stream.running and source.closed
    stream.close()  # idempotent
    assert next(stream, "end") == "end"


def test_with_block_stops_the_thread_on_a_consumer_error():
    source = Source(None)
    with pytest.raises(RuntimeError, match="consumer failed"):
        with Prefetch(source(), depth=1) as stream:
            next(stream)
            raise RuntimeError("consumer failed")
    assert not stream.running and source.closed


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth must be >= 1, got 0"):
        Prefetch(iter(()), depth=0)
