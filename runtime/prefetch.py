"""Run an iterator ahead in a background thread, through a bounded queue.

The pipeline uses it so that the video is decoded and the faces are detected and cropped for
the next windows while the model scores the current batch (PyAV, OpenCV and ONNX Runtime release
the GIL while they work). What comes out is exactly what the iterator yields, in its order; an
exception the iterator raises is raised again, unchanged, by :func:`next` in the consuming
thread, after the items yielded before it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["Prefetch"]

T = TypeVar("T")

_ITEM, _END, _ERROR = 0, 1, 2
#: How often (s) a producer blocked on a full queue looks whether it was told to stop.
_POLL_S = 0.05


class Prefetch(Generic[T]):
    """Iterate ``source`` in a background thread, at most ``depth`` items ahead of the consumer.

    source: any iterator; it is advanced, and closed (``source.close()`` when it has one), only
            in the background thread
    depth:  items held in the queue, at most (>= 1); the thread holds one more while it waits

    :meth:`close` (also on ``with`` exit) stops the thread and waits for it: the item being
    produced is finished, then ``source`` is closed. Close it, or iterate it to the end; both
    leave no thread running.
    """

    def __init__(self, source: Iterator[T], depth: int, *, name: str = "milmer-prefetch") -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._source = iter(source)
        self._queue: queue.Queue[tuple[int, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ background thread
    def _put(self, kind: int, payload: object) -> bool:
        """Queue one message unless told to stop meanwhile; False when stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put((kind, payload), timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            # Told to stop (close), pull nothing more from the source.
            while not self._stop.is_set():
                try:
                    item = next(self._source)
                except StopIteration:
                    self._put(_END, None)
                    return
                if not self._put(_ITEM, item):
                    return
                del item  # the queue (then the consumer) holds it now, not this frame
        except BaseException as err:  # handed to the consumer, raised there
            self._put(_ERROR, err)
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()

    # ------------------------------------------------------------------ consumer
    def __iter__(self) -> Prefetch[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        kind, payload = self._queue.get()
        if kind == _ITEM:
            return payload  # type: ignore[return-value]
        self._done = True
        self._thread.join()
        if kind == _ERROR:
            assert isinstance(payload, BaseException)
            raise payload
        raise StopIteration

    def close(self) -> None:
        """Stop the background thread and wait for it (idempotent)."""
        self._done = True
        self._stop.set()
        while True:  # let go of queued items (and unblock a producer waiting to put)
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()

    @property
    def running(self) -> bool:
        """The background thread is still alive."""
        return self._thread.is_alive()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
