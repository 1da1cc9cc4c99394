"""Producer and consumer threads that keep decoding and writing off the model's thread.

* :class:`Prefetcher` iterates an iterable (the decoder) in its own thread and hands the items over through
  a bounded queue, so the next frames are decoded while the model works on the current window.
* :class:`BackgroundWriter` runs submitted calls (file appends, video encoding) in order in its own thread,
  behind a bounded queue, so the model does not wait for the disk or the encoder.

Both re-raise the worker's exception (the same object, so its type and traceback survive) in the thread
that uses them, stop and join their thread in ``close()`` whatever happened (also when the consumer stops
early), and are context managers. The bounded queues keep memory flat: a fast side blocks until the slow
side catches up. ``maxsize=0`` starts no thread and does the work inline, in the caller's thread
(the sequential mode, kept for comparison and debugging).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Generic, Iterable, Iterator, Optional, TypeVar

T = TypeVar("T")

POLL_S = 0.05  # how often a blocked put looks at the stop flag

_ITEM, _END, _ERROR = range(3)


class Prefetcher(Generic[T]):
    """Iterate ``iterable`` in a background thread, at most ``maxsize`` items ahead of the consumer.

    ``maxsize=0`` iterates inline (no thread). Iterate it once; exceptions raised by the iterable are
    re-raised by ``next()``. Call :meth:`close` (or use ``with``) to stop the thread early; a generator
    given as ``iterable`` is closed in the thread that ran it.
    """

    def __init__(self, iterable: Iterable[T], maxsize: int = 4, name: str = "vda-prefetch") -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self._source = iter(iterable)
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._finished = False
        self._thread: Optional[threading.Thread] = None
        if maxsize > 0:
            self._thread = threading.Thread(target=self._work, name=name, daemon=True)
            self._thread.start()

    def _put(self, entry: tuple[int, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for item in self._source:
                if not self._put((_ITEM, item)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put((_ERROR, exc))
        finally:
            _close_iterator(self._source)

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        if self._thread is None:
            try:
                return next(self._source)
            except BaseException:
                self._finished = True
                raise
        kind, value = self._queue.get()
        if kind == _ITEM:
            return value
        self._finished = True
        if kind == _ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop the producer (after the item it is working on) and wait for its thread to end."""
        self._finished = True
        self._stop.set()
        if self._thread is None:
            _close_iterator(self._source)
            return
        while self._thread.is_alive():
            _drain(self._queue)
            self._thread.join(POLL_S)
        _drain(self._queue)

    def __enter__(self) -> "Prefetcher[T]":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class BackgroundWriter:
    """Run ``fn(*args)`` calls in submission order in one background thread, at most ``maxsize`` queued.

    The first exception a call raises is kept; later calls are dropped, and :meth:`submit` and :meth:`close`
    re-raise it in the caller's thread. ``maxsize=0`` runs every call inline in :meth:`submit`.
    Several threads may submit; each one's calls run in the order it submitted them.
    """

    def __init__(self, maxsize: int = 4, name: str = "vda-writer") -> None:
        if maxsize < 0:
            raise ValueError(f"maxsize must be >= 0, got {maxsize}")
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._error: Optional[BaseException] = None
        self._discard = threading.Event()
        self._closed = False
        self._thread: Optional[threading.Thread] = None
        if maxsize > 0:
            self._thread = threading.Thread(target=self._work, name=name, daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            task = self._queue.get()
            if task is None:
                return
            if self._error is not None or self._discard.is_set():
                continue
            fn, args = task
            try:
                fn(*args)
            except BaseException as exc:  # re-raised by submit()/close() in the caller's thread
                self._error = exc

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)``; blocks while the queue is full; raises the error of an earlier call."""
        if self._closed:
            raise RuntimeError("submit() on a closed BackgroundWriter")
        self._raise_error()
        if self._thread is None:
            fn(*args)
            return
        while True:
            try:
                self._queue.put((fn, args), timeout=POLL_S)
                return
            except queue.Full:
                self._raise_error()

    def _stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(None)  # the worker keeps taking tasks (or dropping them), so this cannot block forever
            self._thread.join()

    def close(self) -> None:
        """Run every queued call, stop the thread, and raise the first error any call raised."""
        self._stop()
        self._raise_error()

    def abort(self) -> None:
        """Drop the queued calls (the one running finishes), stop the thread; raises nothing."""
        self._discard.set()
        self._stop()


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return


def _close_iterator(iterator: Iterator) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


__all__ = ["BackgroundWriter", "Prefetcher"]
